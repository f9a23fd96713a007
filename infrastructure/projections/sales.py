"""The pushers' reads of the availability projection's sales per (SKU, channel, day) (the live
`availability_sales`, which `availability.py` writes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from psycopg import Connection

from application.availability import VELOCITY_DAYS


def units_sold_since(
    conn: Connection[Any], channel_id: str, since: Sequence[tuple[str, date | None]]
) -> dict[str, int]:
    """The channel's units sold of each `(sku, day)`'s SKU on days from `day` on (absent: 0)."""
    rows = conn.execute(
        "SELECT u.sku, coalesce(sum(a.units), 0) FROM unnest(%s::text[], %s::date[]) "
        "AS u(sku, day) LEFT JOIN availability_sales a ON a.sku = u.sku "
        "AND a.channel_id = %s AND a.day >= u.day GROUP BY u.sku",
        [[sku for sku, _ in since], [day for _, day in since], channel_id],
    ).fetchall()
    return {sku: int(units) for sku, units in rows}


def velocities(conn: Connection[Any]) -> dict[str, float]:
    """Units sold a day of each SKU that sold over the velocity window (all channels)."""
    rows = conn.execute(
        "SELECT sku, sum(units) FROM availability_sales WHERE day > current_date - %s "
        "GROUP BY sku HAVING sum(units) > 0",
        [VELOCITY_DAYS],
    ).fetchall()
    return {sku: float(units) / VELOCITY_DAYS for sku, units in rows}
