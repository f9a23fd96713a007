"""How far each channel's orders have been listed (`reconcile_watermarks`, created by migration
0003). The only module that writes or reads the table: the orders poll reads where to start and
moves the mark on once what it found is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection


def orders_listed_to(conn: Connection[Any], channel_id: str) -> datetime | None:
    """Until when the channel's orders were listed and stored; None before its first poll."""
    row = conn.execute(
        "SELECT orders_listed_to FROM reconcile_watermarks WHERE channel_id = %s", [channel_id]
    ).fetchone()
    return None if row is None else row[0]


def advance(conn: Connection[Any], channel_id: str, to: datetime) -> datetime:
    """Move the channel's mark on to `to`, never back (two polls may finish out of order);
    the mark it holds after."""
    row = conn.execute(
        "INSERT INTO reconcile_watermarks (channel_id, orders_listed_to) VALUES (%s, %s) "
        "ON CONFLICT (channel_id) DO UPDATE SET orders_listed_to = GREATEST("
        "reconcile_watermarks.orders_listed_to, excluded.orders_listed_to), updated_at = now() "
        "RETURNING orders_listed_to",
        [channel_id, to],
    ).fetchone()
    assert row is not None  # an upsert with RETURNING answers one row
    mark: datetime = row[0]
    return mark
