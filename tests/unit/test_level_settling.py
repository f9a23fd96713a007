"""Which level readings are judged now and which wait for their settle time: a run judges a
page's readings while later pages are read, never before a sale's webhook has had its time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.base import LevelReading
from infrastructure.reconcile.levels import settled, settling_for

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def reading(sku: str, seconds_before_noon: float) -> LevelReading:
    return LevelReading(sku, 5, NOON - timedelta(seconds=seconds_before_noon))


def test_readings_older_than_the_settle_time_are_judged_and_newer_ones_wait():
    old, just, new = reading("old", 7), reading("just", 5), reading("new", 1)

    assert settled([old, just, new], NOON, 5.0) == ([old, just], [new])


def test_nothing_waits_when_readings_need_no_settling():
    assert settled([reading("a", 0)], NOON, 0.0) == ([reading("a", 0)], [])


@given(
    ages=st.lists(st.floats(min_value=0, max_value=60), max_size=30),
    settle=st.floats(min_value=0, max_value=30),
)
def test_every_reading_is_judged_now_or_later_never_both(ages, settle):
    readings = [reading(f"s{i}", age) for i, age in enumerate(ages)]
    ready, waiting = settled(readings, NOON, settle)

    assert sorted(ready + waiting, key=lambda r: r.sku) == sorted(readings, key=lambda r: r.sku)
    assert all(NOON - r.read_at >= timedelta(seconds=settle) for r in ready)
    assert all(NOON - r.read_at < timedelta(seconds=settle) for r in waiting)


def test_the_last_reading_settles_after_the_rest_of_its_settle_time_and_then_needs_none():
    assert settling_for(NOON - timedelta(seconds=2), NOON, 5.0) == 3.0
    assert settling_for(NOON - timedelta(seconds=5), NOON, 5.0) is None
    assert settling_for(NOON, NOON, 0.0) is None


@given(age=st.floats(min_value=0, max_value=60), settle=st.floats(min_value=0, max_value=30))
def test_a_reading_waits_for_its_settle_time_exactly_when_settled_would_keep_it_waiting(
    age, settle
):
    last = reading("s", age)
    _, waiting = settled([last], NOON, settle)
    left = settling_for(last.read_at, NOON, settle)
    assert (left is not None) == bool(waiting)
    assert left is None or 0 < left <= settle + 1e-6  # timedelta counts in microseconds
