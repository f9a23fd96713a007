"""Amazon's feeds within the reads of their reports (`feeds.report_bound`): a feed's SKUs are
pushed no more until its report is read, so every feed the limiters let through must find a
getFeedDocument turn. With createFeed's burst of 15 and no burst for the reports (583af07), the
second feed of a burst waited a minute for its report, and two workers stalled."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.amazon.feeds import report_bound
from infrastructure.channels.amazon.gateway import BURSTS, RATES
from infrastructure.push.limits import operation_interval, turn

FEED = operation_interval(RATES["createFeed"])
REPORT = operation_interval(RATES["getFeedDocument"])


def test_create_feeds_burst_is_held_to_the_reports_that_can_be_read_at_once():
    assert report_bound({"createFeed": 15, "getFeedDocument": 10})["createFeed"] == 10
    assert report_bound({"createFeed": 15})["createFeed"] == 1  # reports one at a time
    assert report_bound({"createFeed": 3, "getFeedDocument": 10})["createFeed"] == 3


def test_the_other_operations_keep_their_documented_bursts():
    bound = report_bound(BURSTS)
    assert {op: n for op, n in bound.items() if op != "createFeed"} == {
        op: n for op, n in BURSTS.items() if op != "createFeed"
    }


@given(st.lists(st.floats(0.0, 400.0), min_size=1, max_size=80))
def test_every_feed_the_limits_allow_finds_a_turn_to_read_its_report_at_once(gaps):
    """Feeds asked for at any times, each processed at once: the report of every feed created
    is read on the spot, never left for the report bucket to refill."""
    bursts = report_bound(BURSTS)
    feeds_at = reports_at = 0.0  # each limiter's next turn
    now = 1000.0
    for gap in gaps:
        now += gap
        feed = turn(now, feeds_at, 0.0, FEED, yields=False, burst=bursts["createFeed"])
        feeds_at = feed.next_at
        if feed.wait > 0:
            continue
        report = turn(now, reports_at, 0.0, REPORT, yields=False, burst=bursts["getFeedDocument"])
        assert report.wait == 0
        reports_at = report.next_at
