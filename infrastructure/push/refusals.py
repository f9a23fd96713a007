"""Refused pushes (`push_refusals`, created by migration 0001), by the code the channel gave
(CHANGE_FROM_QUANTITY_STALE, ...): kept for `WINDOW_KEPT` and counted beside the consistency
windows, which only accepted pushes close. The only module that writes or reads the table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection

from infrastructure.push.windows import WINDOW_KEPT


def record(conn: Connection[Any], channel_id: str, refusals: Sequence[tuple[str, str]]) -> None:
    """Count `(sku, code)` refusals of the channel's."""
    with conn.cursor() as curs:
        curs.executemany(
            "INSERT INTO push_refusals (channel_id, sku, code) VALUES (%s, %s, %s)",
            [(channel_id, sku, code) for sku, code in refusals],
        )


def counts(conn: Connection[Any], channel_id: str) -> dict[str, dict[str, Any]]:
    """Refused pushes of the last `WINDOW_KEPT` per code: how many, and the last one's time."""
    rows: list[tuple[str, int, datetime]] = conn.execute(
        "SELECT code, count(*), max(refused_at) FROM push_refusals "
        "WHERE channel_id = %s AND refused_at > now() - %s GROUP BY code",
        [channel_id, WINDOW_KEPT],
    ).fetchall()
    return {code: {"refusals": n, "last_at": last.isoformat()} for code, n, last in rows}


def forget_old(conn: Connection[Any]) -> None:
    conn.execute("DELETE FROM push_refusals WHERE refused_at < now() - %s", [WINDOW_KEPT])
