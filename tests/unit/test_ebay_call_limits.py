"""eBay's daily call limits: a 429 naming no wait waits twice the one before it in a row, never
past the next midnight in US Pacific time, when eBay's day (and its limits) start again."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.ebay.call_limits import throttled_wait, until_next_day

# 10:00 in Los Angeles (PST, UTC-8): 14 hours to eBay's next day.
MORNING = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


def test_each_429_in_a_row_waits_twice_the_one_before():
    assert [throttled_wait(5.0, n, MORNING) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]


def test_no_wait_goes_past_ebays_next_day():
    assert until_next_day(MORNING) == 14 * 3600
    assert throttled_wait(5.0, 40, MORNING) == 14 * 3600
    a_second_before = datetime(2026, 12, 3, 7, 59, 59, tzinfo=UTC)
    assert throttled_wait(5.0, 1, a_second_before) == 1.0


def test_ebays_day_follows_pacific_daylight_saving_time():
    summer = datetime(2026, 7, 1, 17, 0, tzinfo=UTC)  # 10:00 PDT (UTC-7)
    assert until_next_day(summer) == 14 * 3600
    day_of_the_change = datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # midnight PST, a 23-hour day
    assert until_next_day(day_of_the_change) == 23 * 3600


@given(
    st.datetimes(datetime(2020, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=1, max_value=1000),
)
def test_a_wait_is_positive_and_ends_by_the_next_pacific_midnight(now, in_a_row):
    wait = throttled_wait(5.0, in_a_row, now)
    assert 0 < wait <= until_next_day(now) <= 25 * 3600
