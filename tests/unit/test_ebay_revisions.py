"""eBay's revision budget: a listing's 250 revisions a day paced over the day, raises stopping
first, moves down next, a move to zero spending the very last one."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.ebay.revisions import RevisionBudget, ebay_day, may_revise, paced

BUDGET = RevisionBudget()
elapsed = st.floats(min_value=0, max_value=1)
quantities = st.integers(min_value=0, max_value=100)


def test_a_move_to_zero_spends_even_the_last_revision():
    assert may_revise(BUDGET, 249, 0.0, shows=5, quantity=0)
    assert not may_revise(BUDGET, 250, 1.0, shows=5, quantity=0)


def test_a_raise_stops_before_the_reserves_and_a_move_down_before_the_last_ten():
    assert may_revise(BUDGET, 199, 1.0, shows=1, quantity=2)
    assert not may_revise(BUDGET, 200, 1.0, shows=1, quantity=2)
    assert may_revise(BUDGET, 239, 1.0, shows=3, quantity=2)
    assert not may_revise(BUDGET, 240, 1.0, shows=3, quantity=2)


def test_a_listing_not_known_to_show_anything_is_taken_as_moving_down():
    assert may_revise(BUDGET, 239, 1.0, shows=None, quantity=7)
    assert not may_revise(BUDGET, 240, 1.0, shows=None, quantity=7)


def test_early_in_the_day_only_the_burst_is_spent():
    assert may_revise(BUDGET, 49, 0.0, shows=1, quantity=2)
    assert not may_revise(BUDGET, 50, 0.0, shows=1, quantity=2)
    assert not may_revise(BUDGET, 50, 0.0, shows=3, quantity=2)
    assert may_revise(BUDGET, 140, 0.5, shows=3, quantity=2)  # 50 + 190 / 2 = 145 by noon
    assert not may_revise(BUDGET, 145, 0.5, shows=3, quantity=2)


@given(st.integers(min_value=0, max_value=300), elapsed, st.none() | quantities, quantities)
def test_nothing_is_spent_past_the_days_budget(used, gone, shows, quantity):
    if used >= BUDGET.per_day:
        assert not may_revise(BUDGET, used, gone, shows, quantity)


@given(st.integers(min_value=0, max_value=249), elapsed, st.integers(min_value=1, max_value=100))
def test_a_move_to_zero_is_always_allowed_while_any_revision_is_left(used, gone, shows):
    assert may_revise(BUDGET, used, gone, shows, 0)


@given(st.integers(min_value=0, max_value=300), elapsed, elapsed, quantities, quantities)
def test_what_is_allowed_stays_allowed_later_in_the_day(used, first, second, shows, quantity):
    early, late = sorted((first, second))
    if may_revise(BUDGET, used, early, shows, quantity):
        assert may_revise(BUDGET, used, late, shows, quantity)


@given(st.integers(min_value=1, max_value=400), st.integers(min_value=0, max_value=400))
def test_pacing_spends_the_burst_at_once_and_the_tier_by_the_end_of_the_day(tier, burst):
    assert paced(tier, 0.0, burst) == min(tier, burst) or burst > tier
    assert paced(tier, 1.0, burst) == tier


@given(st.lists(st.tuples(elapsed, quantities), min_size=1, max_size=600))
def test_a_best_seller_pushed_all_day_never_spends_more_than_250_and_keeps_one_for_zero(
    pushes,
):
    """Pushes over a day (sorted by time): whatever comes, the day's spend stays within the
    budget, and while raises were refused the last revisions were there for a move to zero."""
    used, shows = 0, None
    for gone, quantity in sorted(pushes):
        if may_revise(BUDGET, used, gone, shows, quantity):
            used, shows = used + 1, quantity
        elif quantity == 0:
            assert used >= BUDGET.per_day
    assert used <= BUDGET.per_day


def test_ebays_day_is_us_pacific_with_its_daylight_saving_days():
    assert ebay_day(datetime(2026, 12, 2, 7, 59, tzinfo=UTC))[0] == "2026-12-01"
    day, gone = ebay_day(datetime(2026, 12, 2, 8, 0, tzinfo=UTC))
    assert (day, gone) == ("2026-12-02", 0.0)
    assert ebay_day(datetime(2026, 12, 2, 20, 0, tzinfo=UTC))[1] == 0.5
    # 8 March 2026 has 23 hours in California: 11.5 hours after its midnight is half of it.
    assert ebay_day(datetime(2026, 3, 8, 19, 30, tzinfo=UTC)) == ("2026-03-08", 0.5)
