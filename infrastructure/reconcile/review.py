"""The review of discrepancies: listing them, and resolving one as a person decides. Accepting
the channel's quantity records a count at the channel's location that moves the ledger by the
difference, so the channel's share becomes what it showed; pushing the ledger's sets the channel
back (the outbox row goes out again, compared against what the channel showed)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from domain.discrepancy import Discrepancy, Resolution
from domain.errors import InvsyncError
from domain.stock import LIMITS, ChangeKind, StockChange
from infrastructure import outbox
from infrastructure.channels.config import ChannelConfig
from infrastructure.reconcile import discrepancies
from infrastructure.reconcile.discrepancies import DiscrepancyRow
from infrastructure.reconcile.levels import Connect, count_open


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

    def resolve(self, discrepancy_id: UUID, action: str, reason: str, by: str) -> DiscrepancyRow:
        """Resolve the discrepancy by `action`; its row as resolved.

        Raises:
            UnknownDiscrepancy: no such discrepancy.
            DiscrepancyResolved, InvalidResolution: as `Discrepancy.resolve`.
            DiscrepancyChanged: another person resolved it meanwhile.
        """
        with self._connect() as conn:
            found = discrepancies.load(conn, discrepancy_id)
            if found is None:
                raise UnknownDiscrepancy(f"no discrepancy {discrepancy_id}")
            found.resolve(action, reason, by)
            if found.resolution is Resolution.ACCEPT_CHANNEL:
                self._count(found)  # first: it is keyed by the discrepancy, so a retry is one
            with conn.transaction(), conn.cursor() as curs:
                self._apply(curs, found)
                discrepancies.save(conn, found)
            count_open(conn, found.channel_id)
            resolved = discrepancies.row(conn, found.id)
        assert resolved is not None  # saved just above, in this transaction
        return resolved

    def _apply(self, curs: Any, found: Discrepancy) -> None:
        if found.resolution is Resolution.ACCEPT_CHANNEL:
            outbox.channel_shows(curs, found.channel_id, found.sku, found.observed)
        else:
            outbox.push_again(curs, found.channel_id, found.sku, found.observed)

    def _count(self, found: Discrepancy) -> None:
        channel = self._channels.get(found.channel_id)
        location = channel.default_location if channel is not None else "main"
        on_hand = LedgerQueries(self._ledger).get_item(found.sku).levels_at(location).on_hand
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
