"""The availability projection: exactly once, restartable, equal to the ledger's own answer."""

import psycopg
import pytest

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from domain.allocation import ChannelRule, allocate
from domain.stock import ChangeKind
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from tests.helpers import change, migrated_database, random_sku

K = ChangeKind
RULES = (
    ChannelRule("shopify-us", share_percent=40, safety_buffer=2),
    ChannelRule("amazon-us", share_percent=30, safety_buffer=2, locations=("east",)),
    ChannelRule("woo-eu", max_quantity=20),
)


@pytest.fixture(scope="module")
def fresh_database(server_url):
    """A database of its own: the projection replays every event in it."""
    with migrated_database(server_url, "invsync_proj") as url:
        yield url


def expected(ledger: Ledger, sku: str) -> dict[str, int]:
    item = LedgerQueries(ledger).get_item(sku)
    return {c: a.available_to_sell for c, a in allocate(item.locations, RULES).items()}


def test_availability_follows_the_ledger_per_channel(fresh_database):
    env = eventsourcing_env(fresh_database)
    ledger = Ledger(env=env)
    sku = random_sku()
    try:
        with AvailabilityRunner(env, RULES) as runner:
            ledger.record(change(K.RECEIPT, sku, 100))
            ledger.record(change(K.RECEIPT, sku, 30, location="east"))
            ledger.record(change(K.SALE, sku, 10))
            assert runner.wait(ledger.recorder.max_notification_id(), timeout=10)
            assert (
                runner.view.available_to_sell(sku)
                == expected(ledger, sku)
                == {"shopify-us": 46, "amazon-us": 7, "woo-eu": 20}
            )
    finally:
        ledger.close()


def test_a_runner_stopped_mid_stream_and_restarted_ends_equal_to_the_ledger(fresh_database):
    env = eventsourcing_env(fresh_database)
    ledger = Ledger(env=env)
    skus = [random_sku() for _ in range(20)]
    try:
        with AvailabilityRunner(env, RULES):
            for n in range(10):
                ledger.record_batch([change(K.RECEIPT, sku, 10 + n) for sku in skus])
        # Stopped, maybe in the middle: more changes arrive while no runner is there.
        ledger.record_batch([change(K.SALE, sku, 3, location="east") for sku in skus])
        with AvailabilityRunner(env, RULES) as runner:
            ledger.record_batch([change(K.RETURN, sku, 1) for sku in skus])
            assert runner.wait(ledger.recorder.max_notification_id(), timeout=30)
            for sku in skus:
                assert runner.view.available_to_sell(sku) == expected(ledger, sku)
    finally:
        ledger.close()


def test_the_view_is_created_by_the_migration_only(fresh_database):
    with psycopg.connect(fresh_database) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'availability%'"
            ).fetchall()
        }
    assert tables == {
        "availability",
        "availability_levels",
        "availability_outbox",
        "availability_rules",
        "availability_sales",
        "availability_skus",
        "availability_tracking",
    }


def test_invsync_project_runs_the_projection_as_a_process_of_its_own(
    fresh_database, redis_url, tmp_path
):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    config = tmp_path / "invsync.toml"
    config.write_text('[[channels]]\nid = "erp"\nkind = "internal"\nwebhook_secrets = ["s"]\n')
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": fresh_database,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
    }
    process = subprocess.Popen(
        # Metrics on a free port: another `invsync project` on the machine may hold the default one.
        [str(Path(sys.executable).with_name("invsync")), "project", "--metrics-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ledger = Ledger(env=eventsourcing_env(fresh_database))
    sku = random_sku()
    try:
        ledger.record(change(K.RECEIPT, sku, 9))
        deadline = time.monotonic() + 30
        found = None
        while time.monotonic() < deadline and not found:
            with psycopg.connect(fresh_database) as conn:
                found = conn.execute(
                    "SELECT available_to_sell FROM availability WHERE sku = %s AND "
                    "channel_id = 'erp'",
                    [sku],
                ).fetchone()
            time.sleep(0.1)
        assert found == (9,)
    finally:
        ledger.close()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


def test_sales_velocity_weighs_velocity_weighted_channels(fresh_database):
    env = eventsourcing_env(fresh_database)
    ledger = Ledger(env=env)
    sku = random_sku()
    rules = (
        ChannelRule("fast", share_percent=50, velocity_weighted=True, min_share_percent=10),
        ChannelRule("slow", share_percent=50, velocity_weighted=True, min_share_percent=10),
    )
    try:
        with AvailabilityRunner(env, rules) as runner:
            ledger.record(change(K.RECEIPT, sku, 1000))
            ledger.record_batch([change(K.SALE, sku, 1, source="fast") for _ in range(63)])
            ledger.record_batch([change(K.SALE, sku, 1, source="slow") for _ in range(7)])
            cancelled = change(K.SALE_CANCELLATION, sku, 7, source="slow")
            ledger.record(cancelled)
            assert runner.wait(ledger.recorder.max_notification_id(), timeout=10)
            assert runner.view.velocities(sku) == {"fast": 9.0, "slow": 0.0}
            # 937 available (63 committed); each gets its 10 % floor, "fast" the other 80 %.
            assert runner.view.available_to_sell(sku) == {"fast": 843, "slow": 93}
    finally:
        ledger.close()


def test_a_batch_that_recomputes_thousands_of_quantities_is_folded_at_the_first_attempt(
    fresh_database, caplog
):
    # A rule change recomputes every SKU in one batch: thousands of rows written in one go
    # (the projection once stopped there, its tracking row read back mid-pipeline).
    env = eventsourcing_env(fresh_database)
    ledger = Ledger(env=env)
    skus = [random_sku("many") for _ in range(1500)]
    try:
        with AvailabilityRunner(env, RULES) as runner:
            ledger.record_batch([change(K.RECEIPT, sku, 10) for sku in skus])
            ledger.change_channel_rules(ChannelRule("woo-eu", max_quantity=7), "test", "many")
            assert runner.wait(ledger.recorder.max_notification_id(), timeout=60), runner.error
            assert runner.view.available_to_sell(skus[-1])["woo-eu"] == 7
        paused = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
        assert paused == []
    finally:
        ledger.close()
