"""The run table: requests join, slots make one run each, a step counts once, and a run whose
worker died is handed out again."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from application.reconcile_plan import Due
from infrastructure.reconcile import runs
from infrastructure.reconcile.runs import Counts


@pytest.fixture
def conn(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def channel() -> str:
    return f"shop-{uuid.uuid4().hex[:8]}"


def test_checks_asked_for_before_a_run_starts_join_it(conn):
    shop = channel()
    first = runs.request_check(conn, shop, ["b", "a"])
    second = runs.request_check(conn, shop, ["c", "a"])

    run = runs.get(conn, first)
    assert second == first
    assert (run.skus, run.steps, run.state) == (["a", "b", "c"], 1, "queued")


def test_a_check_asked_for_once_a_run_started_makes_a_new_run(conn):
    shop = channel()
    first = runs.request_check(conn, shop, ["a"])
    runs.claim(conn, first, 0)

    assert runs.request_check(conn, shop, ["a"]) != first


def test_a_step_delivered_twice_counts_once_and_the_last_finishes_the_run(conn):
    run_id = runs.request_check(conn, channel(), ["a"], what="both")
    runs.claim(conn, run_id, 0)
    runs.advance(conn, run_id, 0, Counts(orders_found=3, orders_applied=1))

    assert runs.claim(conn, run_id, 0) is None  # the same message again
    assert runs.advance(conn, run_id, 0, Counts(orders_found=3)) is None
    assert runs.claim(conn, run_id, 1) is not None
    done = runs.advance(conn, run_id, 1, Counts(skus_read=1, corrected=1))

    assert (done.state, done.step, done.finished_at is not None) == ("done", 2, True)
    assert done.counts == Counts(orders_found=3, orders_applied=1, skus_read=1, corrected=1)


def test_a_leased_step_is_not_claimed_twice_until_its_worker_is_presumed_dead(conn):
    run_id = runs.request_check(conn, channel(), ["a"])
    assert runs.claim(conn, run_id, 0, lease=0.2) is not None

    assert runs.claim(conn, run_id, 0) is None
    time.sleep(0.3)
    assert runs.claim(conn, run_id, 0) is not None


def test_a_step_failing_too_often_fails_its_run_with_the_error(conn):
    run_id = runs.request_check(conn, channel(), ["a"])
    outcomes = []
    for _ in range(runs.MAX_ATTEMPTS):
        runs.claim(conn, run_id, 0)
        outcomes.append(runs.failed(conn, run_id, 0, "channel down"))

    run = runs.get(conn, run_id)
    assert outcomes == [False] * (runs.MAX_ATTEMPTS - 1) + [True]
    assert (run.state, run.error) == ("failed", "channel down")


def test_open_runs_nobody_works_on_are_handed_out_once_among_several_asking(database_url, conn):
    shop = channel()
    unsent = runs.request_check(conn, shop, None)
    leased = runs.request_check(conn, shop, None, what="orders")
    runs.claim(conn, leased, 0)
    found: list[tuple[int, int]] = []

    def ask() -> None:
        with psycopg.connect(database_url, autocommit=True) as own:
            found.extend(runs.to_send(own, [shop], resend_after=60))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert found == [(unsent, 0)]


def test_a_slot_makes_one_run_however_many_schedulers_ask(database_url, conn):
    shop = channel()
    due = Due("orders", "orders", datetime(2026, 12, 2, tzinfo=UTC))
    made: list[int | None] = []

    def ask() -> None:
        with psycopg.connect(database_url, autocommit=True) as own:
            made.append(runs.schedule(own, shop, due, None))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len([run_id for run_id in made if run_id is not None]) == 1
    assert [run.due_key for run in runs.latest(conn, shop)] == [due.key]


def test_no_run_of_the_active_skus_is_made_while_the_catalogues_is_open(conn):
    shop = channel()
    slot = datetime(2026, 12, 2, tzinfo=UTC)
    catalogue = runs.schedule(conn, shop, Due("catalog", "both", slot), None)

    assert runs.schedule(conn, shop, Due("active", "both", slot), ["a"]) is None
    runs.claim(conn, catalogue, 0)
    runs.advance(conn, catalogue, 0, Counts())
    runs.claim(conn, catalogue, 1)
    runs.advance(conn, catalogue, 1, Counts())
    assert runs.schedule(conn, shop, Due("active", "both", slot), ["a"]) is not None
