"""Runs worked by the Dramatiq actor, a step per message, against real PostgreSQL and Redis."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from infrastructure.channels.base import LevelReading
from infrastructure.reconcile import readings
from infrastructure.reconcile import runs as runs_table
from infrastructure.reconcile.runs import MAX_ATTEMPTS, Counts, Run
from infrastructure.reconcile.service import NotReconciled, Reconciliation
from tests.integration.reconcile_fixtures import (
    CountingSteps,
    reconciled_channel,
    reconciliation,
    working,
)


def finished(reconciliation: Reconciliation, run_id: int, timeout: float = 20.0) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = reconciliation.run(run_id)
        if run is not None and run.state in ("done", "failed"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish: {reconciliation.run(run_id)}")


def test_a_requested_run_polls_orders_then_reads_its_skus_in_batches(database_url, redis_url):
    shop = reconciled_channel()
    steps = CountingSteps()
    with reconciliation(database_url, redis_url, [shop]) as runs, working(runs, steps):
        skus = [f"sku-{i:04}" for i in range(1200)]
        run = finished(runs, runs.request_check(shop.id, skus, what="both"))

    assert (run.state, run.step, run.steps) == ("done", 4, 4)
    assert run.counts == Counts(orders_found=2, orders_applied=1, skus_read=1200, corrected=3)
    assert steps.calls == {(shop.id, "orders"): 1, (shop.id, "levels"): 3}


def measured(name: str, channel: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"channel": channel, **labels}) or 0.0


def test_a_finished_run_is_measured_once_with_its_orders_skus_and_corrections(
    database_url, redis_url
):
    shop = reconciled_channel()
    steps = CountingSteps()
    with reconciliation(database_url, redis_url, [shop]) as runs, working(runs, steps):
        finished(runs, runs.request_check(shop.id, ["a", "b", "c"], what="both"))

    done = {"scope": "requested", "outcome": "done"}
    assert measured("invsync_reconcile_runs_total", shop.id, **done) == 1
    assert measured("invsync_reconcile_orders_total", shop.id, outcome="found") == 2
    assert measured("invsync_reconcile_orders_total", shop.id, outcome="applied") == 1
    assert measured("invsync_reconcile_skus_read_total", shop.id) == 3
    assert measured("invsync_reconcile_drift_total", shop.id, size="small") == 1
    assert measured("invsync_reconcile_drift_total", shop.id, size="large") == 0


def test_a_step_the_channel_fails_is_retried_and_counted_once(database_url, redis_url):
    shop = reconciled_channel()
    steps = CountingSteps(failures=1)
    with reconciliation(database_url, redis_url, [shop]) as runs, working(runs, steps):
        run = finished(runs, runs.request_check(shop.id, None, what="orders"))

    assert (run.state, run.error, run.counts.orders_found) == ("done", None, 2)


def test_a_step_that_keeps_failing_fails_its_run_saying_why(database_url, redis_url):
    shop = reconciled_channel()
    steps = CountingSteps(failures=MAX_ATTEMPTS)
    with reconciliation(database_url, redis_url, [shop]) as runs:
        worker = runs.serve(steps.reconcilers())
        run_id = runs.request_check(shop.id, None, what="orders")
        with runs.store.connection() as conn:  # readings of a page before, not judged yet
            readings.put(conn, run_id, [LevelReading("TEE", 3, datetime.now(UTC))])
        for _ in range(MAX_ATTEMPTS - 1):
            with pytest.raises(ConnectionError):
                worker.work(run_id, 0)
        worker.work(run_id, 0)
        run = runs.run(run_id)
        with runs.store.connection() as conn:
            left = readings.take(conn, run_id, datetime.now(UTC))

    assert (run.state, run.error) == ("failed", "ConnectionError: channel down")
    assert left == []  # dropped with the run: nothing would judge them


def test_a_worker_killed_mid_step_leaves_the_run_to_the_next_once_its_lease_is_over(
    database_url, redis_url
):
    shop = reconciled_channel()
    killed = CountingSteps(failures=1, fail_with=SystemExit(9))  # dies between claim and count
    with reconciliation(database_url, redis_url, [shop]) as runs:
        run_id = runs.request_check(shop.id, ["a", "b"], what="both")
        with pytest.raises(SystemExit):
            runs.serve(killed.reconcilers(), lease=0.5).work(run_id, 0)
        assert runs.scheduler(resend_after=0).resend() == []  # its lease still holds
        time.sleep(0.6)

        assert runs.scheduler(resend_after=0).resend() == [run_id]

        steps = CountingSteps()
        with working(runs, steps):  # the first message and the one re-sent: the run once
            run = finished(runs, run_id)

    assert run.counts == Counts(orders_found=2, orders_applied=1, skus_read=2, corrected=1)
    assert steps.calls == {(shop.id, "orders"): 1, (shop.id, "levels"): 1}


def test_a_catalogue_is_read_a_page_a_message_each_step_adding_the_next(database_url, redis_url):
    shop = reconciled_channel()
    steps = CountingSteps(pages=4)
    with reconciliation(database_url, redis_url, [shop]) as runs, working(runs, steps):
        run = finished(runs, runs.request_check(shop.id, None, what="both"))

    assert (run.state, run.step, run.steps) == ("done", 5, 5)  # the orders poll, four pages
    assert run.counts == Counts(orders_found=2, orders_applied=1, skus_read=40, corrected=4)
    assert steps.pages_read == [0, 1, 2, 3]


def test_a_catalogue_read_resumes_at_the_page_its_killed_worker_was_on(database_url, redis_url):
    shop = reconciled_channel()
    steps = CountingSteps(pages=5)
    with reconciliation(database_url, redis_url, [shop]) as runs:
        run_id = runs.request_check(shop.id, None, what="both")
        worker = runs.serve(steps.reconcilers(), lease=0.5)
        for step in range(3):  # the orders poll, pages 0 and 1
            worker.work(run_id, step)
        steps.failures, steps.fail_with = 1, SystemExit(9)  # dies reading page 2
        with pytest.raises(SystemExit):
            worker.work(run_id, 3)
        time.sleep(0.6)  # its lease is over
        assert runs.scheduler(resend_after=0).resend() == [run_id]

        with working(runs, steps):  # the first message and the one re-sent: each page once
            run = finished(runs, run_id)

    assert steps.pages_read == [0, 1, 2, 3, 4]
    assert run.counts == Counts(orders_found=2, orders_applied=1, skus_read=50, corrected=5)
    assert (run.state, run.step, run.steps) == ("done", 6, 6)


def test_a_step_longer_than_its_lease_keeps_it_while_its_worker_lives(database_url, redis_url):
    shop = reconciled_channel()
    slow = CountingSteps(seconds=1.0)
    with reconciliation(database_url, redis_url, [shop]) as runs:
        run_id = runs.request_check(shop.id, None, what="orders")
        worker = runs.serve(slow.reconcilers(), lease=0.3)
        working = threading.Thread(target=worker.work, args=(run_id, 0))
        working.start()
        time.sleep(0.6)  # twice its lease
        with runs.store.connection() as conn:
            taken = runs_table.claim(conn, run_id, 0)
        working.join()
        run = runs.run(run_id)

    assert taken is None
    assert (run.state, run.counts.orders_found) == ("done", 2)


def test_a_last_step_whose_readings_settle_frees_its_thread_and_ends_by_a_delayed_message(
    database_url, redis_url
):
    levels, orders = reconciled_channel(), reconciled_channel()
    steps = CountingSteps(settling=1.5)
    with (
        reconciliation(database_url, redis_url, [levels, orders]) as runs,
        working(runs, steps, threads=1),
    ):
        started = time.monotonic()
        settling = runs.request_check(levels.id, ["a", "b"], what="levels")
        while not steps.calls[(levels.id, "levels")]:  # its page read, its readings settle
            time.sleep(0.01)
        polled = finished(runs, runs.request_check(orders.id, None, what="orders"))
        polled_at = time.monotonic()
        run = finished(runs, settling)

    assert polled.state == "done"
    assert polled_at - started < 1.5  # the one thread was free while the readings settled
    assert [at - started for at in steps.judged_at] == [pytest.approx(1.5, abs=0.5)]
    assert (run.state, run.step, run.steps, run.error) == ("done", 1, 1, None)
    assert run.counts == Counts(skus_read=2, corrected=1)
    assert steps.calls[(levels.id, "levels")] == 1  # the page was not read again


def test_a_run_is_refused_for_a_channel_that_is_not_reconciled(database_url, redis_url):
    off = reconciled_channel(enabled=False)
    with reconciliation(database_url, redis_url, [off]) as runs:
        with pytest.raises(NotReconciled):
            runs.request_check(off.id, ["a"])
        with pytest.raises(NotReconciled):
            runs.request_check("nobody", ["a"])


def test_a_run_done_drops_its_readings_kept_against_a_step_read_twice(database_url, redis_url):
    shop = reconciled_channel()
    steps = CountingSteps()
    with reconciliation(database_url, redis_url, [shop]) as runs:
        run_id = runs.request_check(shop.id, ["a"], what="both")
        with runs.store.connection() as conn:  # judged, kept while a step could be read again
            readings.put(conn, run_id, [LevelReading("a", 3, datetime.now(UTC))])
            assert [r.sku for r in readings.take(conn, run_id, datetime.now(UTC))] == ["a"]
        with working(runs, steps):
            run = finished(runs, run_id)
        with runs.store.connection() as conn:
            left = conn.execute(
                "SELECT count(*) FROM reconcile_readings WHERE run_id = %s", [run_id]
            ).fetchone()

    assert (run.state, left) == ("done", (0,))
