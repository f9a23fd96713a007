"""When a failed reconciliation step waits instead of spending an attempt: only when the channel
asked for a wait, for as long as it asked (eBay's spent day: until its next day)."""

from datetime import UTC, datetime

import pytest

from infrastructure.channels.ebay.call_limits import throttled_wait
from infrastructure.channels.gateway import ChannelAuthFailed, ChannelUnavailable, Throttled
from infrastructure.reconcile.actors import step_wait

LAST_MINUTE = datetime(2026, 12, 3, 7, 59, tzinfo=UTC)  # 23:59 in Los Angeles


def test_a_step_the_channel_throttled_waits_as_long_as_it_asked():
    assert step_wait(Throttled("429", retry_after=30.0)) == 30.0


def test_a_step_throttled_by_a_spent_ebay_day_waits_until_ebays_next_day_and_no_longer():
    spent = Throttled("eBay throttled GET /order", throttled_wait(5.0, 8, LAST_MINUTE))
    assert step_wait(spent) == 60.0  # 640 s doubled, cut at Pacific midnight


@pytest.mark.parametrize(
    "error",
    [
        ChannelUnavailable("eBay answered 503"),
        ChannelAuthFailed("eBay refused our token"),
        ConnectionError("reset"),
        ValueError("not an eBay inventory offset"),
    ],
)
def test_any_other_failure_spends_an_attempt(error):
    assert step_wait(error) is None
