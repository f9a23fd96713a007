"""Amazon's feeds within the reads of their reports (`feeds.with_reports`): a feed's SKUs are
pushed no more until its report is read, so every feed the limiters let through must find a
getFeedDocument turn. With createFeed's burst of 15 and no burst for the reports (583af07), the
second feed of a burst waited a minute for its report, and two workers stalled; createFeed keeps
its documented burst, each feed taking a turn of its report's limiter as it is created."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.amazon.feeds import REPORTS, with_reports
from infrastructure.channels.amazon.gateway import BURSTS, RATES
from infrastructure.push.limits import operation_interval, turn

RATES_, BURSTS_ = with_reports(RATES, BURSTS)


@dataclass
class Limiter:
    """One operation's limiter, as the gate keeps it (`limits.turn`)."""

    operation: str
    next_at: float = 0.0

    def take(self, now: float) -> bool:
        interval = operation_interval(RATES_[self.operation])
        found = turn(now, self.next_at, 0.0, interval, yields=False, burst=BURSTS_[self.operation])
        self.next_at = found.next_at
        return found.wait == 0


def created(gaps: list[float]) -> tuple[list[float], list[float]]:
    """When feeds asked for after `gaps` were created, each taking the turns `may_create`
    takes in its order, and the waits of their reports, each read as its feed is created."""
    document, reports, feeds = (
        Limiter("createFeedDocument"),
        Limiter(REPORTS),
        Limiter("createFeed"),
    )
    read = Limiter("getFeedDocument")
    now, at, waits = 1000.0, [], []
    for gap in gaps:
        now += gap
        if document.take(now) and reports.take(now) and feeds.take(now):
            at.append(now)
            waits.append(0.0 if read.take(now) else 1.0)
    return at, waits


def test_create_feed_keeps_its_documented_burst_and_reports_have_a_limiter_of_their_own():
    assert BURSTS_["createFeed"] == 15
    assert (RATES_[REPORTS], BURSTS_[REPORTS]) == (RATES["getFeedDocument"], 10)
    assert {op: n for op, n in BURSTS_.items() if op != REPORTS} == dict(BURSTS)


def test_after_ten_feeds_at_once_the_next_come_a_report_s_interval_apart_not_create_feed_s():
    # a turn is an interval and a margin: 56 s for a report, 151 s for createFeed
    at, waits = created([0.01] * 10 + [57.0] * 3)
    assert [round(t - 1000.0) for t in at] == [0] * 10 + [57, 114, 171]
    assert waits == [0.0] * 13


@given(st.lists(st.floats(0.0, 400.0), min_size=1, max_size=80))
def test_every_feed_the_limits_allow_finds_a_turn_to_read_its_report_at_once(gaps):
    """Feeds asked for at any times, each processed at once: the report of every feed created
    is read on the spot, never left for the report bucket to refill."""
    _, waits = created(gaps)
    assert all(wait == 0 for wait in waits)
