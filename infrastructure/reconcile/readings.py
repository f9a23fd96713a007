"""Level readings a run has taken and not judged yet (`reconcile_readings`, created by migration
0005): the only module that writes or reads the table. A step `put`s the readings of its page;
a later step (or the run's last, once they settled) `take`s those read before a time, deleting
them in the transaction that judges them, so a reading is judged once however many workers
resume the run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection

from infrastructure.channels.base import LevelReading


def put(conn: Connection[Any], run_id: int, readings: Sequence[LevelReading]) -> None:
    """Keep the run's `readings` until they are judged; a SKU read again keeps its newer one
    (a page read again by a worker that took over the step)."""
    if not readings:
        return
    with conn.cursor() as curs:
        curs.executemany(
            "INSERT INTO reconcile_readings (run_id, sku, quantity, read_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (run_id, sku) DO UPDATE "
            "SET quantity = excluded.quantity, read_at = excluded.read_at "
            "WHERE reconcile_readings.read_at < excluded.read_at",
            [(run_id, r.sku, r.quantity, r.read_at) for r in readings],
        )


def take(conn: Connection[Any], run_id: int, read_before: datetime) -> list[LevelReading]:
    """Delete and return the run's readings taken at or before `read_before`. Another worker
    taking them at once waits for this transaction, then finds them gone."""
    rows = conn.execute(
        "DELETE FROM reconcile_readings WHERE run_id = %s AND read_at <= %s "
        "RETURNING sku, quantity, read_at",
        [run_id, read_before],
    ).fetchall()
    return sorted((LevelReading(*row) for row in rows), key=lambda r: r.sku)


def last_read_at(conn: Connection[Any], run_id: int) -> datetime | None:
    """When the newest of the run's readings still to judge was taken (None: there are none)."""
    row = conn.execute(
        "SELECT max(read_at) FROM reconcile_readings WHERE run_id = %s", [run_id]
    ).fetchone()
    return None if row is None else row[0]


def discard(conn: Connection[Any], run_id: int) -> int:
    """Drop the readings of a run that failed (nothing will judge them); how many."""
    return conn.execute("DELETE FROM reconcile_readings WHERE run_id = %s", [run_id]).rowcount
