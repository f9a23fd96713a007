"""When a reservation asked for through the API expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from interfaces.http.reservations import MAX_HOLD, InvalidHold, hold_expiry

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_a_hold_without_expiry_lasts_until_released():
    assert hold_expiry(None, None, NOW) is None


def test_a_ttl_counts_from_now_and_wins_over_a_time_given_too():
    assert hold_expiry(NOW + timedelta(days=3), 60, NOW) == NOW + timedelta(seconds=60)


def test_a_time_given_with_a_zone_is_kept():
    assert hold_expiry(NOW + timedelta(hours=1), None, NOW) == NOW + timedelta(hours=1)


def test_a_time_without_a_zone_is_refused_saying_so():
    with pytest.raises(InvalidHold, match="needs a time zone"):
        hold_expiry(datetime(2026, 12, 3, 12, 0), None, NOW)


@pytest.mark.parametrize(
    "expires", [NOW, NOW - timedelta(seconds=1), NOW + MAX_HOLD + timedelta(seconds=1)]
)
def test_a_time_not_within_a_year_from_now_is_refused(expires):
    with pytest.raises(InvalidHold, match="within a year from now"):
        hold_expiry(expires, None, NOW)


def test_a_hold_of_exactly_the_longest_allowed_is_kept():
    assert hold_expiry(NOW + MAX_HOLD, None, NOW) == NOW + MAX_HOLD
