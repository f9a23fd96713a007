"""One setting bounds every PostgreSQL pool of a process (`INVSYNC_DB_POOL_MAX`), and the ledger's
and the API's statements are cancelled by PostgreSQL after `INVSYNC_DB_STATEMENT_TIMEOUT_SECONDS`,
so a database that does not answer gives a 503 in time instead of a request waiting for ever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from application.ledger import Ledger
from domain.stock import ChangeKind
from infrastructure.idempotency import IdempotencyStore
from infrastructure.inbox import PostgresInbox
from infrastructure.postgres import connection_options, eventsourcing_env
from infrastructure.push.store import PushStore
from infrastructure.reservation_store import PostgresReservations
from tests.helpers import change, migrated_database, random_sku
from tests.integration.intake_fixtures import free_port

POOL_MAX = 2


def _connections(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [conn.info.dbname],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_ledgers_pool_is_bounded_by_pool_max_and_its_statements_by_the_timeout(
    scratch_database,
):
    env = eventsourcing_env(scratch_database, pool_max=POOL_MAX, statement_timeout_ms=300)
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"]) == ("1", str(POOL_MAX - 1))
    ledger = Ledger(env=env)
    try:
        datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
        assert datastore.pool.max_size == POOL_MAX
        with datastore.get_connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone()["statement_timeout"] == "300ms"
            started = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT pg_sleep(5)")
            assert time.monotonic() - started < 2
        ledger.record(change(ChangeKind.RECEIPT, random_sku(), 1))  # and it works
    finally:
        ledger.close()


def test_a_ledger_write_blocked_in_postgresql_fails_in_time(scratch_database):
    """A write that PostgreSQL cannot carry out (a lock held elsewhere, as a frozen session
    holds it) is cancelled after the timeout and fails, instead of waiting for ever."""
    ledger = Ledger(env=eventsourcing_env(scratch_database, statement_timeout_ms=300))
    try:
        sku = random_sku()
        ledger.record(change(ChangeKind.RECEIPT, sku, 1))
        with psycopg.connect(scratch_database) as blocker:
            blocker.execute("LOCK TABLE ledger_receipts IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(OperationalError):
                ledger.record(change(ChangeKind.RECEIPT, sku, 1))
            assert time.monotonic() - started < 15
            blocker.rollback()
        ledger.record(change(ChangeKind.RECEIPT, sku, 1))
    finally:
        ledger.close()


def test_an_unset_timeout_adds_no_connection_option():
    assert connection_options(None) == {}
    assert connection_options(0) == {}
    assert connection_options(1500) == {"options": "-c statement_timeout=1500"}
    assert "INVSYNC_STATEMENT_TIMEOUT_MS" not in eventsourcing_env("postgresql://h/db")
    with pytest.raises(ValueError, match="pool_max"):
        eventsourcing_env("postgresql://h/db", pool_max=0)


@pytest.mark.parametrize(
    "store", [PostgresInbox, IdempotencyStore, PostgresReservations, PushStore]
)
def test_every_store_pool_takes_its_bound_and_timeout(scratch_database, store):
    opened = store(scratch_database, max_size=POOL_MAX, statement_timeout_ms=700)
    try:
        pool = opened._pool
        assert pool.max_size == POOL_MAX
        with pool.connection() as conn:
            row = conn.execute("SHOW statement_timeout").fetchone()
            assert row is not None
            assert row[0] == "700ms"
    finally:
        opened.close()


def test_a_real_invsync_run_holds_few_connections_under_a_burst_and_answers_503_when_stuck(
    server_url, redis_url, tmp_path
):
    with migrated_database(server_url, "invsync_pools") as database:
        port = free_port()
        env = {
            **os.environ,
            "INVSYNC_DATABASE_URL": database,
            "INVSYNC_REDIS_URL": redis_url,
            "INVSYNC_DEMO": "0",
            "INVSYNC_CONFIG": str(tmp_path / "absent.toml"),
            "INVSYNC_HTTP_PORT": str(port),
            "INVSYNC_QUEUE_NAMESPACE": f"pools-{uuid.uuid4().hex[:8]}",
            "INVSYNC_DB_POOL_MAX": str(POOL_MAX),
            "INVSYNC_DB_STATEMENT_TIMEOUT_SECONDS": "1",
        }
        invsync = str(Path(sys.executable).with_name("invsync"))
        log = tmp_path / "invsync.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [invsync, "run"], env=env, stdout=subprocess.DEVNULL, stderr=output
            )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                deadline = time.monotonic() + 60
                while True:
                    assert process.poll() is None, log.read_text()[-3000:]
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert time.monotonic() < deadline, "invsync run never got ready"
                    time.sleep(0.2)
                idle = _connections(database)
                peak = [idle]
                stop = threading.Event()

                def watch() -> None:
                    while not stop.is_set():
                        peak.append(_connections(database))
                        time.sleep(0.05)

                watcher = threading.Thread(target=watch)
                watcher.start()
                sku = random_sku()

                def write(n: int) -> int:
                    body = {
                        "kind": "receipt",
                        "sku": f"{sku}-{n % 10}",
                        "location": "main",
                        "quantity": 1,
                        "business_key": f"{sku}-{n}",
                    }
                    return client.post("/api/v1/stock-changes", json=body).status_code

                with ThreadPoolExecutor(24) as pool:
                    answers = list(pool.map(write, range(400)))
                stop.set()
                watcher.join()
                assert set(answers) == {201}
                print(f"\nconnections: idle {idle}, peak {max(peak)} under 400 writes (24 at once)")
                # Measured: idle 12, peak 12 with POOL_MAX = 2; with the default (10), the same
                # burst peaks at 18.
                assert max(peak) <= 14
                assert client.get(f"/api/v1/skus/{sku}-1").status_code == 200

                with psycopg.connect(database) as blocker:
                    blocker.execute("LOCK TABLE reservations IN ACCESS EXCLUSIVE MODE")
                    started = time.monotonic()
                    answer = client.get("/api/v1/reservations")
                    took = time.monotonic() - started
                    blocker.rollback()
                print(f"blocked reservations read: {answer.status_code} in {took:.2f} s")
                assert answer.status_code == 503
                assert took < 5
                assert client.get("/api/v1/reservations").status_code == 200
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_composition_root_applies_the_configured_limits_and_none_unless_configured():
    from infrastructure.settings import DatabaseLimits
    from interfaces.composition import ledger_env, projection_env

    url = "postgresql://h/db"
    configured = ledger_env(url, DatabaseLimits(pool_max=3, statement_timeout_seconds=2))
    assert configured["INVSYNC_STATEMENT_TIMEOUT_MS"] == "2000"
    assert configured["POSTGRES_MAX_OVERFLOW"] == "2"
    assert "INVSYNC_STATEMENT_TIMEOUT_MS" not in ledger_env(url)
    projection = projection_env(url, DatabaseLimits(pool_max=3, statement_timeout_seconds=2))
    assert projection["POSTGRES_MAX_OVERFLOW"] == "2"
    assert "INVSYNC_STATEMENT_TIMEOUT_MS" not in projection


def test_the_pushers_pool_takes_the_bound_and_timeout(scratch_database, redis_url):
    import redis

    from infrastructure.push.redis_limits import RedisLimits
    from infrastructure.push.service import build_propagation
    from infrastructure.queue import make_broker

    broker = make_broker(redis_url, scratch_database, f"test-{uuid.uuid4().hex[:8]}")
    client = redis.Redis.from_url(redis_url)
    propagation = build_propagation(
        scratch_database, broker, RedisLimits(client), {}, pool_max=2, statement_timeout_ms=1500
    )
    try:
        assert propagation.store._pool.max_size == 2
        with propagation.store._pool.connection() as conn:
            row = conn.execute("SHOW statement_timeout").fetchone()
        assert row == ("1500ms",)
    finally:
        propagation.store.close()
        broker.close()
        client.close()
