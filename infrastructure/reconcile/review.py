"""The review of discrepancies: listing them, and resolving one as a person decides. Accepting
the channel's quantity records a count at the channel's location that moves the ledger by the
difference, so the channel's share becomes what it showed; pushing the ledger's sets the channel
back (the outbox row goes out again, compared against what the channel showed). A channel that
showed less, left for review, and whose SKU a push has since set over what it showed is closed
as superseded by invsync (`supersede_overridden`, each tick of a reconciling process; and
when someone resolves it), so nobody accepts a reading the channel no longer shows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from domain.discrepancy import (
    Discrepancy,
    DiscrepancyResolved,
    Resolution,
    count_location,
    overridden,
)
from domain.errors import InvsyncError
from domain.stock import LIMITS, ChangeKind, StockChange
from infrastructure import outbox
from infrastructure.channels.config import ChannelConfig
from infrastructure.reconcile import discrepancies
from infrastructure.reconcile.discrepancies import DiscrepancyChanged, DiscrepancyRow
from infrastructure.reconcile.levels import AUTO, Connect


class UnknownDiscrepancy(InvsyncError):
    """Raised when a discrepancy id names none that was recorded."""


class Review:
    """Discrepancies as a person reviews them (the API's `/api/v1/discrepancies`)."""

    def __init__(
        self, connect: Connect, ledger: Ledger, channels: Mapping[str, ChannelConfig]
    ) -> None:
        self._connect, self._ledger, self._channels = connect, ledger, channels

    def listed(self, **filters: Any) -> list[DiscrepancyRow]:
        """As `discrepancies.listed` filters them (`state`, `channel_id`, `sku`, `limit`)."""
        with self._connect() as conn:
            return discrepancies.listed(conn, **filters)

    def open_count(self) -> int:
        """How many discrepancies wait for review, on every channel."""
        with self._connect() as conn:
            return discrepancies.open_count(conn)

    def resolve(self, discrepancy_id: UUID, action: str, reason: str, by: str) -> DiscrepancyRow:
        """Resolve the discrepancy by `action`; its row as resolved.

        Raises:
            UnknownDiscrepancy: no such discrepancy.
            DiscrepancyResolved: resolved already, or superseded now: a push set the channel
                over what it showed less of, after the reading (`overridden`).
            InvalidResolution: as `Discrepancy.resolve`.
            DiscrepancyChanged: another person resolved it meanwhile.
        """
        with self._connect() as conn:
            found = discrepancies.load(conn, discrepancy_id)
            if found is None:
                raise UnknownDiscrepancy(f"no discrepancy {discrepancy_id}")
            pushed = outbox.pushed(conn, found.channel_id, [found.sku]).get(found.sku)
            if not _superseded(conn, found, pushed):
                return self._resolved(conn, found, action, reason, by)
        raise DiscrepancyResolved(f"discrepancy {discrepancy_id} was {found.reason}")

    def _resolved(
        self, conn: Any, found: Discrepancy, action: str, reason: str, by: str
    ) -> DiscrepancyRow:
        found.resolve(action, reason, by)
        if found.resolution is Resolution.ACCEPT_CHANNEL:
            self._count(found)  # first: it is keyed by the discrepancy, so a retry is one
        with conn.transaction(), conn.cursor() as curs:
            self._apply(curs, found)
            discrepancies.save(conn, found)
        resolved = discrepancies.row(conn, found.id)
        assert resolved is not None  # saved just above, in this transaction
        return resolved

    def _apply(self, curs: Any, found: Discrepancy) -> None:
        if found.resolution is Resolution.ACCEPT_CHANNEL:
            outbox.channel_shows(curs, found.channel_id, found.sku, found.observed)
        else:
            outbox.push_again(curs, found.channel_id, found.sku, found.observed)

    def _count(self, found: Discrepancy) -> None:
        item = LedgerQueries(self._ledger).get_item(found.sku)
        location = self._location(found.channel_id, list(item.locations))
        on_hand = item.levels_at(location).on_hand
        self._ledger.record(
            StockChange(
                kind=ChangeKind.COUNT,
                sku=found.sku,
                location=location,
                quantity=max(on_hand + found.difference, 0),
                expected=on_hand,
                business_key=f"discrepancy:{found.id}",
                source=found.channel_id,
                occurred_at=datetime.now(UTC),
                reference=f"invsync://discrepancies/{found.id}",
                reason=f"accepted {found.channel_id}'s quantity: {found.reason}"[
                    : LIMITS["reason"]
                ],
            )
        )

    def _location(self, channel_id: str, held: list[str]) -> str:
        """Where the channel's stock lives (`count_location`: a channel no longer configured
        maps nothing); raises `CountLocationUnclear`."""
        channel = self._channels.get(channel_id)
        if channel is None:
            return count_location(channel_id, None, held, None)
        feeding, mapped = channel.rules.locations, channel.stock_location()
        return count_location(channel_id, feeding, held or [channel.default_location], mapped)


def supersede_overridden(conn: Connection[Any]) -> int:
    """Close as superseded the open discrepancies of channels that showed less which a push
    has since set over what they showed (`domain.discrepancy.overridden`); returns how many."""
    waiting: dict[str, list[DiscrepancyRow]] = {}
    for row in discrepancies.open_showing_less(conn):
        waiting.setdefault(row.channel_id, []).append(row)
    closed = 0
    for channel_id, rows in waiting.items():
        pushes = outbox.pushed(conn, channel_id, [row.sku for row in rows])
        shut = [row for row in rows if _overridden(row, pushes.get(row.sku))]
        closed += sum(_supersede_row(conn, row.id, pushes[row.sku]) for row in shut)
    return closed


def _overridden(found: Discrepancy | DiscrepancyRow, pushed: outbox.Pushed | None) -> bool:
    if pushed is None:
        return False
    acknowledged, at = pushed.acknowledged_quantity, pushed.acknowledged_at
    return overridden(found.observed, found.expected, found.read_at, acknowledged, at)


def _supersede_row(conn: Connection[Any], discrepancy_id: UUID, pushed: outbox.Pushed) -> bool:
    found = discrepancies.load(conn, discrepancy_id)
    try:
        return found is not None and _superseded(conn, found, pushed)
    except DiscrepancyChanged:
        return False  # another process closed it first


def _superseded(conn: Connection[Any], found: Discrepancy, pushed: outbox.Pushed | None) -> bool:
    """Close `found` as superseded if it is open and `pushed` overrode it; whether it did."""
    if pushed is None or pushed.acknowledged_at is None or not found.is_open:
        return False
    if not _overridden(found, pushed):
        return False
    found.supersede(pushed.acknowledged_quantity, pushed.acknowledged_at, by=AUTO)
    discrepancies.save(conn, found)
    return True
