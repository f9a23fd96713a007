"""Consistency windows (`push_windows`, created by migration 0001): one row per ledger event
whose result an acknowledged push carried, from when the event was recorded to the channel's
answer, per kind of event. Kept for `WINDOW_KEPT`; read back as percentiles per channel and
kind. The only module that writes or reads the table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import dict_row

from domain.inventory import inventory_item_id
from infrastructure.outbox import Pending

WINDOW_KEPT = timedelta(hours=1)

# The carried events are read from the ledger's receipts (by item and version range); a push
# that carried no new event counts once, from its change.
_RECORD = (
    "INSERT INTO push_windows (channel_id, kind, seconds, acknowledged_at) "
    "SELECT %(channel)s, r.kind, extract(epoch FROM %(answered)s - r.recorded_at), "
    "%(answered)s FROM unnest(%(items)s::uuid[], %(after)s::bigint[], "
    "%(upto)s::bigint[], %(since)s::timestamptz[]) "
    "AS a(item_id, after, upto, since) JOIN ledger_receipts r "
    "ON r.item_id = a.item_id AND r.last_version > a.after "
    "AND r.last_version <= a.upto AND r.recorded_at >= a.since "
    "UNION ALL SELECT %(channel)s, k, extract(epoch FROM %(answered)s - t), "
    "%(answered)s FROM unnest(%(kinds)s::text[], %(changed)s::timestamptz[]) "
    "AS c(k, t) RETURNING kind, seconds"
)


def record(
    curs: Cursor[Any], channel_id: str, applied: Sequence[Pending], answered_at: datetime
) -> list[tuple[str, float]]:
    """Keep, and return as `(kind, seconds)`, the windows of the events `applied` pushes
    carried. Events recorded before a row's first change since the push before had their result
    on the channel already, and are not counted."""
    carried = [p for p in applied if p.version > p.pushed_version]
    uncarried = [p for p in applied if p.version <= p.pushed_version]
    curs.execute(
        _RECORD,
        {
            "channel": channel_id,
            "answered": answered_at,
            "items": [inventory_item_id(p.sku) for p in carried],
            "after": [p.pushed_version for p in carried],
            "upto": [p.version for p in carried],
            "since": [p.first_changed_at for p in carried],
            "kinds": [p.kind for p in uncarried],
            "changed": [p.first_changed_at for p in uncarried],
        },
    )
    return [(kind, seconds) for kind, seconds in curs.fetchall()]


def summary(conn: Connection[Any], channel_id: str) -> dict[str, dict[str, float]]:
    """Windows of the last `WINDOW_KEPT` per kind of change: count, p50, p99 (seconds)."""
    with conn.cursor(row_factory=dict_row) as curs:
        curs.execute(
            "SELECT kind, count(*) AS pushes, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50, "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds) AS p99 "
            "FROM push_windows WHERE channel_id = %s AND acknowledged_at > now() - %s "
            "GROUP BY kind",
            [channel_id, WINDOW_KEPT],
        )
        return {r.pop("kind"): r for r in curs.fetchall()}


def forget_old(conn: Connection[Any]) -> None:
    conn.execute("DELETE FROM push_windows WHERE acknowledged_at < now() - %s", [WINDOW_KEPT])
