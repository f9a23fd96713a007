"""What reconciliation does when: slots per channel, and the steps of a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from application.reconcile_plan import (
    Step,
    cadences,
    covering,
    due_runs,
    last_planned,
    plan,
    slot_start,
    step_at,
)

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_a_run_of_both_polls_orders_before_it_reads_levels_in_batches():
    steps = plan("both", [f"s{i:03}" for i in range(5)], per_step=2)

    assert steps == [
        Step("orders"),
        Step("levels", ("s000", "s001")),
        Step("levels", ("s002", "s003")),
        Step("levels", ("s004",)),
    ]


def test_an_orders_run_is_one_poll_whatever_skus_it_names():
    assert plan("orders", ["a", "b"]) == [Step("orders")]


def test_a_levels_run_of_every_sku_is_one_read_of_the_channels_listing():
    assert plan("levels", None) == [Step("levels", None)]


def test_a_run_of_no_active_skus_has_nothing_to_read():
    assert plan("levels", []) == []


def test_a_sku_named_twice_is_read_once():
    assert plan("levels", ["b", "a", "b"]) == [Step("levels", ("a", "b"))]


def test_every_process_names_the_same_slot_while_the_period_lasts():
    start = slot_start("shop", 300, NOON)

    assert start <= NOON < start + timedelta(seconds=300)
    assert slot_start("shop", 300, start + timedelta(seconds=299)) == start
    assert slot_start("shop", 300, start + timedelta(seconds=300)) == start + timedelta(seconds=300)


def test_channels_of_the_same_period_start_at_different_seconds():
    starts = {slot_start(f"shop-{i}", 300, NOON) for i in range(20)}

    assert len(starts) > 10


def test_a_channel_has_a_due_run_per_schedule_each_named_by_its_slot():
    due = due_runs("shop", cadences(300, 21600, 86400), NOON)

    assert [(d.scope, d.what) for d in due] == [
        ("orders", "orders"),
        ("catalog", "both"),
        ("active", "both"),
    ]
    assert len({d.key for d in due}) == 3


@given(
    st.text(min_size=1, max_size=20),
    st.integers(min_value=10, max_value=86400 * 90),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_a_slot_always_holds_the_moment_it_was_asked_for(channel_id, every, now):
    start = slot_start(channel_id, every, now)

    assert start <= now < start + timedelta(seconds=every)


@given(st.lists(st.text(min_size=1, max_size=5), max_size=60), st.integers(1, 7))
def test_the_batches_of_a_run_read_each_sku_once(skus, per_step):
    steps = plan("levels", skus, per_step)

    read = [sku for step in steps for sku in step.skus or ()]
    assert sorted(read) == sorted(set(skus))
    assert all(0 < len(step.skus or ()) <= per_step for step in steps)


def test_an_open_catalogue_run_makes_a_run_of_the_active_skus_needless():
    assert covering("active") == ("active", "catalog")
    assert covering("catalog") == ("catalog",)
    assert covering("orders") == ("orders",)


def test_a_catalogue_run_reads_a_page_at_every_step_past_its_plan():
    assert [step_at("both", None, i) for i in range(4)] == [
        Step("orders"),
        Step("levels"),
        Step("levels"),
        Step("levels"),
    ]
    assert [last_planned("both", None, i) for i in range(3)] == [False, True, True]


def test_a_run_of_named_skus_has_no_step_past_its_plan():
    assert step_at("levels", ["a", "b"], 0) == Step("levels", ("a", "b"))
    assert step_at("levels", ["a", "b"], 1) is None
    assert step_at("orders", None, 1) is None
    assert [last_planned("both", ["a"], i) for i in range(2)] == [False, True]
