"""Level readings a run has taken (`reconcile_readings`, created by migrations 0005 and 0006): the
only module that writes or reads the table. A step `put`s the readings of its page; a later
step (or the run's last, once they settled) `take`s those read before a time, marking them
judged in the transaction that judges them. A judged reading stays until its run is done
(`discard`), so a page read again by a worker that resumed a step adds nothing for its SKUs:
each SKU of a run is judged once however many workers resume it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection

from infrastructure.channels.base import LevelReading


def put(conn: Connection[Any], run_id: int, readings: Sequence[LevelReading]) -> None:
    """Keep the run's `readings` until they are judged; a SKU read again keeps its newer one
    while it is not judged, and a judged one stays judged (a page read again by a worker that
    took over the step)."""
    if not readings:
        return
    with conn.cursor() as curs:
        curs.executemany(
            "INSERT INTO reconcile_readings (run_id, sku, quantity, read_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (run_id, sku) DO UPDATE "
            "SET quantity = excluded.quantity, read_at = excluded.read_at "
            "WHERE NOT reconcile_readings.judged AND reconcile_readings.read_at < excluded.read_at",
            [(run_id, r.sku, r.quantity, r.read_at) for r in readings],
        )


def take(conn: Connection[Any], run_id: int, read_before: datetime) -> list[LevelReading]:
    """Mark judged and return the run's readings taken at or before `read_before` and not judged
    yet. Another worker taking them at once waits for this transaction, then finds them
    judged."""
    rows = conn.execute(
        "UPDATE reconcile_readings SET judged = true "
        "WHERE run_id = %s AND read_at <= %s AND NOT judged "
        "RETURNING sku, quantity, read_at",
        [run_id, read_before],
    ).fetchall()
    return sorted((LevelReading(*row) for row in rows), key=lambda r: r.sku)


def last_read_at(conn: Connection[Any], run_id: int) -> datetime | None:
    """When the newest of the run's readings still to judge was taken (None: there are none)."""
    row = conn.execute(
        "SELECT max(read_at) FROM reconcile_readings WHERE run_id = %s AND NOT judged", [run_id]
    ).fetchone()
    return None if row is None else row[0]


def discard(conn: Connection[Any], run_id: int) -> int:
    """Drop the readings of a run that is done or failed (nothing will judge them); how many."""
    return conn.execute("DELETE FROM reconcile_readings WHERE run_id = %s", [run_id]).rowcount
