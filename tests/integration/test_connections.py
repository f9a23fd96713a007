"""A process's pools keep one connection each while idle, and grow only under load."""

from __future__ import annotations

import threading

import psycopg

from application.ledger import Ledger
from domain.stock import ChangeKind
from infrastructure.postgres import eventsourcing_env
from tests.helpers import change, random_sku


def _connections(database: str) -> int:
    with psycopg.connect(database) as conn:
        name = conn.info.dbname
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_an_idle_ledger_keeps_one_connection_a_pool_and_a_busy_one_ten(scratch_database):
    """The ledger holds two pools (events, snapshots): 2 connections idle, 20 at most busy;
    the library's defaults kept 10 open idle and allowed 30."""
    ledger = Ledger(env=eventsourcing_env(scratch_database))
    try:
        ledger.record(change(ChangeKind.RECEIPT, random_sku(), 1))
        assert _connections(scratch_database) == 2
        start = threading.Barrier(16)

        def write() -> None:
            start.wait()
            for _ in range(5):
                ledger.record(change(ChangeKind.RECEIPT, random_sku(), 1))

        threads = [threading.Thread(target=write) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 2 <= _connections(scratch_database) <= 20
    finally:
        ledger.close()
