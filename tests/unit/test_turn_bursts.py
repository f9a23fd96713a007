"""A push whose calls go back to back (WooCommerce's read, then its write) takes their turns
together (`limits.turn` with `calls`), and the spacing leaves room for it (`call_interval` with
`calls_per_push`): in any one-second window the channel still counts its rate at most."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.push.limits import Turn, call_interval, turn

STEP = 0.125  # exact in binary: turns booked one after another land on it exactly


def test_a_channel_without_bursts_keeps_its_spacing():
    assert call_interval(10) == call_interval(10, calls_per_push=1) == 0.112
    assert call_interval(2) == 0.625


def test_calls_two_at_a_time_are_spaced_for_two_fewer_a_second():
    assert (
        call_interval(10, calls_per_push=2) == 0.125
    )  # 8 a second, and two at once: 9 in a second
    assert call_interval(2, calls_per_push=2) == 1.25  # 80 % of one, as for one call at 2 a second


def test_a_pair_after_a_rest_goes_at_once_and_books_both_turns():
    assert turn(10.0, 9.0, 0.0, STEP, yields=False, burst=2, calls=2) == Turn(0.0, 10.25, 0.0)


def test_a_pair_on_a_busy_channel_waits_for_its_turn_and_goes_no_earlier():
    answer = turn(10.0, 10.1, 0.0, STEP, yields=False, burst=2, calls=2)

    assert answer.wait == 10.1 - 10.0
    assert answer.held_until == 10.1 + STEP  # reads hold off for it meanwhile


def test_the_next_pair_comes_two_turns_after_the_last():
    first = turn(10.0, 9.0, 0.0, STEP, yields=False, burst=2, calls=2)
    second = turn(10.0, first.next_at, first.held_until, STEP, yields=False, burst=2, calls=2)

    assert second.wait == 2 * STEP


def test_one_call_of_a_limiter_taking_pairs_may_go_a_turn_early_after_a_rest():
    alone = turn(10.0, 10.1, 0.0, STEP, yields=True, burst=2)

    assert alone == Turn(0.0, 10.1 + STEP, 0.0)


def test_a_read_that_took_one_of_a_rested_pairs_turns_leaves_the_push_the_other_a_turn_later():
    read = turn(10.0, 9.0, 0.0, STEP, yields=True, burst=2)
    push = turn(10.0, read.next_at, read.held_until, STEP, yields=False, burst=2, calls=2)

    assert push.wait == STEP


asks = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=0.4),  # the time since the last ask
        st.sampled_from([(1, True), (1, False), (2, False)]),  # calls, and whether they yield
    ),
    min_size=1,
    max_size=80,
)


@given(rate=st.integers(min_value=2, max_value=100), asked=asks)
def test_no_window_a_little_longer_than_a_second_holds_more_than_the_rate(rate, asked):
    """At a whole rate (a store counts whole calls), pairs (pushes), single calls and yielding
    reads asking at any times, each asking again when told to wait, as `wait_for_turn` does:
    any window of a second and up to 90 % of an interval (200 ms at most) holds the rate at
    most, so calls arriving that much later than they were admitted (the write after its read
    among them) are still within it."""
    interval = call_interval(rate, calls_per_push=2)
    now, next_at, held_until, admitted = 100.0, 0.0, 0.0, []
    for gap, (calls, yields) in asked:
        now += gap
        while True:
            answer = turn(now, next_at, held_until, interval, yields=yields, burst=2, calls=calls)
            next_at, held_until = answer.next_at, answer.held_until
            if answer.wait == 0:
                admitted.extend([now] * calls)
                break
            now += answer.wait
    margin = min(0.9 * interval, 0.2)
    for start in admitted:
        assert sum(start <= t < start + 1 + margin for t in admitted) <= rate
