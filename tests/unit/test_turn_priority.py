"""Pushes keep priority over reconciliation's reads within a channel's one rate (`limits.turn`):
a read takes a turn only while no push waits for one, and a waiting push takes the next turn."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.push.limits import Turn, turn

INTERVAL = 0.1


def test_a_read_goes_at_once_when_the_turn_is_free_and_no_push_waits():
    assert turn(10.0, 9.0, 0.0, INTERVAL, yields=True) == Turn(0.0, 10.1, 0.0)


def test_a_push_that_must_wait_holds_reads_off_until_just_after_its_turn():
    answer = turn(10.0, 10.05, 0.0, INTERVAL, yields=False)

    assert answer.wait == 10.05 - 10.0
    assert answer.held_until == 10.05 + INTERVAL


def test_a_read_asking_while_a_push_waits_is_held_off_even_when_the_turn_is_due():
    held = turn(10.06, 10.05, 10.15, INTERVAL, yields=True)

    assert held.wait == 10.15 - 10.06
    assert (held.next_at, held.held_until) == (10.05, 10.15)  # the turn is left to the push


def test_the_waiting_push_takes_the_turn_and_frees_the_reads():
    assert turn(10.05, 10.05, 10.15, INTERVAL, yields=False) == Turn(0.0, 10.15, 0.0)


def test_a_read_leaves_a_pushs_hold_as_it_found_it():
    assert turn(10.2, 10.3, 10.1, INTERVAL, yields=True).held_until == 10.1


@given(
    calls=st.lists(
        st.tuples(st.floats(min_value=0, max_value=1), st.booleans()), min_size=1, max_size=40
    )
)
def test_turns_granted_are_an_interval_apart_whoever_asks(calls):
    now, next_at, held_until, granted = 0.0, 0.0, 0.0, []
    for step, yields in calls:
        now += step
        answer = turn(now, next_at, held_until, INTERVAL, yields=yields)
        next_at, held_until = answer.next_at, answer.held_until
        if answer.wait == 0:
            granted.append(now)

    assert all(b - a >= INTERVAL - 1e-9 for a, b in itertools.pairwise(granted))


@given(
    reads=st.lists(st.floats(min_value=0, max_value=0.3), max_size=20),
    push_at=st.floats(min_value=0, max_value=0.3),
)
def test_no_read_takes_a_turn_while_a_push_waits_for_it(reads, push_at):
    next_at = 0.2  # a read took the turn before
    push = turn(push_at, next_at, 0.0, INTERVAL, yields=False)
    if push.wait == 0:
        return  # the push went at once: nothing to wait for
    for at in sorted(a for a in reads if push_at <= a < next_at + INTERVAL):
        assert turn(at, push.next_at, push.held_until, INTERVAL, yields=True).wait > 0


STEP = 0.125  # exact in binary: turns booked one after another land on it exactly


@given(st.integers(1, 20), st.lists(st.floats(0.0, 0.5), min_size=1, max_size=60))
def test_a_burst_never_lets_more_through_than_a_bucket_of_that_many_refilled_each_interval(
    burst, gaps
):
    """Calls asking at any times: within any span, those admitted are at most `burst` plus one
    per interval of the span, as Amazon's token buckets allow, and the first `burst` after a
    rest go at once."""
    next_at, admitted, now = 0.0, [], 100.0
    for gap in gaps:
        now += gap
        answer = turn(now, next_at, 0.0, STEP, yields=False, burst=burst)
        next_at = answer.next_at
        if answer.wait == 0:
            admitted.append(now)
    for first, last in itertools.combinations(range(len(admitted)), 2):
        span = admitted[last] - admitted[first]
        assert last - first + 1 <= burst + span / STEP + 1e-9
    rested = [turn(1000.0, next_at, 0.0, STEP, yields=False, burst=burst)]
    for _ in range(burst - 1):
        rested.append(turn(1000.0, rested[-1].next_at, 0.0, STEP, yields=False, burst=burst))
    assert all(answer.wait == 0 for answer in rested)
    assert turn(1000.0, rested[-1].next_at, 0.0, STEP, yields=False, burst=burst).wait > 0
