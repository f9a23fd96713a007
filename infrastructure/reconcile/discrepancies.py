"""Discrepancies (`reconcile_discrepancy_events` and `reconcile_discrepancies`, created by
migration 0004): the `Discrepancy` aggregate's events, and the list the review API reads, kept
from them in the same transaction. The only module that writes or reads either table.

A SKU has at most one open discrepancy per channel: a second one detected while the first is open
is not saved (`save` answers False), so repeated runs do not pile up the same drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)
from psycopg import Connection, Cursor, errors
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from domain.discrepancy import Discrepancy
from domain.errors import InvsyncError
from infrastructure.transcoder import OrjsonTranscoder


class DiscrepancyChanged(InvsyncError):
    """Raised when a discrepancy was changed by someone else since it was read (its next event
    is stored already): read it again."""


@dataclass(frozen=True)
class DiscrepancyRow:
    """A discrepancy as the review API lists it."""

    id: UUID
    channel_id: str
    sku: str
    observed: int
    expected: int
    state: str  # open | resolved
    read_at: datetime
    detected_at: datetime
    evidence: dict[str, Any]
    action: str | None
    reason: str | None
    resolved_by: str | None
    resolved_at: datetime | None

    @property
    def difference(self) -> int:
        return self.observed - self.expected


_COLUMNS = (
    "id, channel_id, sku, observed, expected, state, read_at, detected_at, evidence, action, "
    "reason, resolved_by, resolved_at"
)
_UPSERT = (
    f"INSERT INTO reconcile_discrepancies ({_COLUMNS}) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
    "state = EXCLUDED.state, action = EXCLUDED.action, reason = EXCLUDED.reason, "
    "resolved_by = EXCLUDED.resolved_by, resolved_at = EXCLUDED.resolved_at"
)


@cache
def _mapper() -> Mapper[UUID]:
    transcoder = OrjsonTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


def save(conn: Connection[Any], discrepancy: Discrepancy) -> bool:
    """Store the discrepancy's new events and its list row, in one transaction; False (nothing
    stored) when it is new and its SKU has an open discrepancy on the channel already.

    Raises `DiscrepancyChanged` when another writer stored its next event first."""
    stored = [_mapper().to_stored_event(event) for event in discrepancy.collect_events()]
    try:
        with conn.transaction(), conn.cursor() as curs:
            _insert_events(curs, stored)
            curs.execute(_UPSERT, _row(discrepancy))
    except errors.UniqueViolation as error:
        if error.diag.constraint_name == "reconcile_discrepancies_open_idx":
            return False
        raise DiscrepancyChanged(f"discrepancy {discrepancy.id} changed meanwhile") from error
    return True


def _insert_events(curs: Cursor[Any], stored: Sequence[StoredEvent]) -> None:
    curs.executemany(
        "INSERT INTO reconcile_discrepancy_events (discrepancy_id, version, topic, state) "
        "VALUES (%s, %s, %s, %s)",
        [(e.originator_id, e.originator_version, e.topic, e.state) for e in stored],
    )


def _row(d: Discrepancy) -> tuple[Any, ...]:
    resolved_at = None if d.is_open else d.modified_on
    action = None if d.resolution is None else d.resolution.value
    state = "open" if d.is_open else "resolved"
    return (
        *(d.id, d.channel_id, d.sku, d.observed, d.expected, state, d.read_at, d.created_on),
        *(Jsonb(d.evidence), action, d.reason or None, d.resolved_by or None, resolved_at),
    )


def load(conn: Connection[Any], discrepancy_id: UUID) -> Discrepancy | None:
    """The discrepancy as its events tell it; None if there is no such discrepancy."""
    rows = conn.execute(
        "SELECT discrepancy_id, version, topic, state FROM reconcile_discrepancy_events "
        "WHERE discrepancy_id = %s ORDER BY version",
        [discrepancy_id],
    ).fetchall()
    events = [_mapper().to_domain_event(StoredEvent(*row)) for row in rows]
    return cast(Discrepancy | None, project_aggregate(None, events)) if events else None


def listed(
    conn: Connection[Any],
    *,
    state: str | None = None,
    channel_id: str | None = None,
    sku: str | None = None,
    limit: int = 100,
) -> list[DiscrepancyRow]:
    """Discrepancies newest first, of `state`, `channel_id` and `sku` when given."""
    with conn.cursor(row_factory=class_row(DiscrepancyRow)) as curs:
        return curs.execute(
            f"SELECT {_COLUMNS} FROM reconcile_discrepancies WHERE "
            "(%(state)s::text IS NULL OR state = %(state)s) AND "
            "(%(channel)s::text IS NULL OR channel_id = %(channel)s) AND "
            "(%(sku)s::text IS NULL OR sku = %(sku)s) ORDER BY detected_at DESC LIMIT %(limit)s",
            {"state": state, "channel": channel_id, "sku": sku, "limit": limit},
        ).fetchall()


def row(conn: Connection[Any], discrepancy_id: UUID) -> DiscrepancyRow | None:
    """One discrepancy as the review API shows it; None if there is no such discrepancy."""
    with conn.cursor(row_factory=class_row(DiscrepancyRow)) as curs:
        return curs.execute(
            f"SELECT {_COLUMNS} FROM reconcile_discrepancies WHERE id = %s", [discrepancy_id]
        ).fetchone()


def open_ones(conn: Connection[Any], channel_id: str, skus: Sequence[str]) -> dict[str, UUID]:
    """The open discrepancy of each of `skus` on the channel that has one."""
    rows = conn.execute(
        "SELECT sku, id FROM reconcile_discrepancies "
        "WHERE state = 'open' AND channel_id = %s AND sku = ANY(%s)",
        [channel_id, list(skus)],
    ).fetchall()
    return dict(rows)


def open_showing_less(conn: Connection[Any], limit: int = 1000) -> list[DiscrepancyRow]:
    """Open discrepancies of channels that showed less than they should (oldest first)."""
    with conn.cursor(row_factory=class_row(DiscrepancyRow)) as curs:
        return curs.execute(
            f"SELECT {_COLUMNS} FROM reconcile_discrepancies "
            "WHERE state = 'open' AND observed < expected ORDER BY detected_at LIMIT %s",
            [limit],
        ).fetchall()


def open_count(conn: Connection[Any], channel_id: str | None = None) -> int:
    """How many discrepancies of the channel (of every channel: None) wait for review."""
    row = conn.execute(
        "SELECT count(*) FROM reconcile_discrepancies WHERE state = 'open' "
        "AND (%(channel)s::text IS NULL OR channel_id = %(channel)s)",
        {"channel": channel_id},
    ).fetchone()
    return int(row[0]) if row else 0


def open_by_channel(conn: Connection[Any]) -> dict[str, tuple[int, datetime]]:
    """Per channel with discrepancies waiting for review: how many, and when the oldest was
    detected."""
    rows = conn.execute(
        "SELECT channel_id, count(*), min(detected_at) FROM reconcile_discrepancies "
        "WHERE state = 'open' GROUP BY channel_id"
    ).fetchall()
    return {channel_id: (count, oldest) for channel_id, count, oldest in rows}
