"""Rebuilding the availability projection from history, and what the live runner does around it:
rule changes, the outbox, waiting for a position, a runner killed mid-stream."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner, ProjectionWaiter, Rebuild, open_view
from infrastructure.projections.replay import Replay, replay
from tests.helpers import change, random_sku

K = ChangeKind
RULES = (
    ChannelRule("shop", share_percent=60, safety_buffer=1),
    ChannelRule("market", share_percent=40, locations=("main",)),
)


def table(database_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return sorted(conn.execute(sql).fetchall())


def views(database_url: str) -> dict[str, list[tuple]]:
    return {
        "ats": table(
            database_url, "SELECT sku, channel_id, available_to_sell, version FROM availability"
        ),
        "levels": table(database_url, "SELECT * FROM availability_levels"),
        "sales": table(database_url, "SELECT * FROM availability_sales"),
        "skus": table(database_url, "SELECT * FROM availability_skus"),
    }


def random_changes(skus: list[str], n: int, rng: random.Random) -> list:
    kinds = [K.RECEIPT, K.SALE, K.SALE, K.RETURN, K.ADJUSTMENT]
    changes = []
    for _ in range(n):
        kind = rng.choice(kinds)
        quantity = rng.randint(1, 5) * (-1 if kind is K.ADJUSTMENT and rng.random() < 0.3 else 1)
        reason = {"reason": "correction"} if kind is K.ADJUSTMENT else {}
        source = rng.choice(["shop", "market"])
        changes.append(change(kind, rng.choice(skus), quantity, source=source, **reason))
    return changes


def test_a_rebuild_under_concurrent_intake_gives_the_live_projections_tables(
    scratch_database, scratch_ledger
):
    rng = random.Random(7)
    skus = [random_sku() for _ in range(30)]
    scratch_ledger.record_batch([change(K.RECEIPT, sku, 50) for sku in skus])
    stop = threading.Event()

    def intake():
        while not stop.is_set():
            scratch_ledger.record_batch(random_changes(skus, 20, rng))

    with AvailabilityRunner(eventsourcing_env(scratch_database), RULES) as runner:
        for _ in range(200):
            scratch_ledger.record_batch(random_changes(skus, 10, rng))
        writer = threading.Thread(target=intake)
        writer.start()
        try:
            report = Rebuild(scratch_database, RULES, page=500).run()
        finally:
            stop.set()
            writer.join()
        assert report.events > 2000
        assert report.differences == []  # both stood at the same position when swapped
        assert runner.wait(scratch_ledger.recorder.max_notification_id(), timeout=30)
        live = views(scratch_database)
    # A second rebuild from scratch, with nothing moving, finds exactly the same rows.
    again = Rebuild(scratch_database, RULES).run()
    assert again.differences == []
    assert views(scratch_database) == live


def test_a_rebuild_reports_and_corrects_a_wrong_quantity_and_tells_the_outbox(
    scratch_database, scratch_ledger
):
    sku = random_sku()
    with AvailabilityRunner(eventsourcing_env(scratch_database), RULES) as runner:
        scratch_ledger.record(change(K.RECEIPT, sku, 11))
        assert runner.wait(scratch_ledger.recorder.max_notification_id(), timeout=10)
    with psycopg.connect(scratch_database) as conn:
        conn.execute(
            "UPDATE availability SET available_to_sell = 99 WHERE sku = %s AND channel_id = 'shop'",
            [sku],
        )
        conn.execute("DELETE FROM availability_outbox")
    progress = []
    report = Rebuild(scratch_database, RULES).run(lambda done, aim: progress.append((done, aim)))
    assert [(d.sku, d.channel_id, d.live, d.rebuilt) for d in report.differences] == [
        (sku, "shop", 99, 5)  # 60 % of 11 is 6.6, minus a buffer of 1, rounded down
    ]
    assert progress
    assert progress[-1][0] == progress[-1][1]
    assert table(scratch_database, "SELECT channel_id, sku, quantity FROM availability_outbox") == [
        ("shop", sku, 5)
    ]
    assert open_view(eventsourcing_env(scratch_database)).available_to_sell(sku) == {
        "shop": 5,
        "market": 4,
    }


def test_recorded_rule_changes_and_sku_overrides_reach_the_view_and_the_outbox(
    scratch_database, scratch_ledger
):
    first, second = random_sku(), random_sku()
    with AvailabilityRunner(eventsourcing_env(scratch_database), RULES) as runner:
        scratch_ledger.record_batch([change(K.RECEIPT, first, 100), change(K.RECEIPT, second, 100)])
        assert runner.wait(scratch_ledger.recorder.max_notification_id(), timeout=10)
        assert runner.view.available_to_sell(first) == {"shop": 59, "market": 40}
        scratch_ledger.change_channel_rules(
            ChannelRule("market", share_percent=10), "ops", "holiday"
        )
        assert runner.wait(scratch_ledger.recorder.max_notification_id(), timeout=10)
        assert runner.view.available_to_sell(first)["market"] == 10
        assert runner.view.available_to_sell(second)["market"] == 10
        scratch_ledger.override_sku_rules("shop", first, {"max_quantity": 3}, "ops", "scarce")
        assert runner.wait(scratch_ledger.recorder.max_notification_id(), timeout=10)
        assert runner.view.available_to_sell(first)["shop"] == 3
        assert runner.view.available_to_sell(second)["shop"] == 59
        outbox = table(
            scratch_database,
            "SELECT channel_id, sku, quantity FROM availability_outbox ORDER BY 1, 2",
        )
    assert sorted(outbox) == sorted(
        [("market", first, 10), ("market", second, 10), ("shop", first, 3), ("shop", second, 59)]
    )
    # The rebuild folds the same rule events to the same numbers.
    assert Rebuild(scratch_database, RULES).run().differences == []


def test_waiting_for_a_position_returns_once_it_is_folded_and_not_before(
    scratch_database, scratch_ledger
):
    view = open_view(eventsourcing_env(scratch_database))
    waiter = ProjectionWaiter(view)
    sku = random_sku()
    try:
        scratch_ledger.record(change(K.RECEIPT, sku, 5))
        position = scratch_ledger.recorder.max_notification_id()
        started = time.monotonic()
        assert waiter.wait(position, timeout=0.3) is False  # no runner: never reached
        assert time.monotonic() - started >= 0.3
        with AvailabilityRunner(eventsourcing_env(scratch_database), RULES):
            started = time.monotonic()
            assert waiter.wait(position, timeout=10) is True
            assert time.monotonic() - started < 5
            assert view.available_to_sell(sku) == {"shop": 2, "market": 2}
    finally:
        view.close()


def test_a_runner_killed_mid_stream_and_restarted_leaves_the_views_of_a_full_rebuild(
    scratch_database, scratch_ledger, redis_url, tmp_path
):
    config = tmp_path / "invsync.toml"
    config.write_text(
        '[[channels]]\nid = "shop"\nkind = "internal"\nwebhook_secrets = ["s"]\n'
        "[channels.rules]\nshare_percent = 60\nsafety_buffer = 1\n"
        '[[channels]]\nid = "market"\nkind = "internal"\nwebhook_secrets = ["s"]\n'
        '[channels.rules]\nshare_percent = 40\nlocations = ["main"]\n'
    )
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": scratch_database,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
    }
    # Metrics on a free port: another `invsync project` on the machine may hold the default one.
    command = [str(Path(sys.executable).with_name("invsync")), "project", "--metrics-port", "0"]
    rng = random.Random(11)
    skus = [random_sku() for _ in range(40)]
    scratch_ledger.record_batch([change(K.RECEIPT, sku, 80) for sku in skus])
    for _ in range(500):
        scratch_ledger.record_batch(random_changes(skus, 10, rng))
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    view = open_view(eventsourcing_env(scratch_database))
    try:
        deadline = time.monotonic() + 30
        while not view.max_tracking_id(scratch_ledger.name) and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # in the middle of the stream, no goodbye
        process.wait(timeout=10)
        killed_at = view.max_tracking_id(scratch_ledger.name) or 0
        assert 0 < killed_at < scratch_ledger.recorder.max_notification_id()
        scratch_ledger.record_batch(random_changes(skus, 50, rng))
        restarted = subprocess.Popen(command, env=env)
        try:
            assert ProjectionWaiter(view).wait(
                scratch_ledger.recorder.max_notification_id(), timeout=60
            )
        finally:
            restarted.send_signal(signal.SIGINT)
            assert restarted.wait(timeout=30) == 0
    finally:
        view.close()
        if process.poll() is None:
            process.kill()
    live = views(scratch_database)
    report = Rebuild(scratch_database, RULES).run()
    assert report.differences == []
    assert views(scratch_database) == live


def test_a_replay_split_among_processes_folds_what_one_process_folds(
    scratch_database, scratch_ledger
):
    rng = random.Random(3)
    skus = [random_sku() for _ in range(25)]
    scratch_ledger.record_batch([change(K.RECEIPT, sku, 60) for sku in skus])
    scratch_ledger.change_channel_rules(ChannelRule("market", share_percent=25), "ops", "test")
    for _ in range(40):
        scratch_ledger.record_batch(random_changes(skus, 10, rng))
    scratch_ledger.override_sku_rules("shop", skus[0], {"stop_at": 3}, "ops", "test")
    job = Replay(scratch_database, RULES, scratch_ledger.recorder.max_notification_id(), page=97)
    (alone, counted_alone), (split, counted_split) = (
        replay(job, processes=1),
        replay(job, processes=3),
    )
    assert counted_split == counted_alone > 400
    assert split.skus == alone.skus
    assert dict(split.sales) == dict(alone.sales)
    assert (split.rules.recorded, split.rules.overrides) == (
        alone.rules.recorded,
        alone.rules.overrides,
    )
    assert {s.sku: split.available_to_sell(s) for s in split.skus.values()} == {
        s.sku: alone.available_to_sell(s) for s in alone.skus.values()
    }
