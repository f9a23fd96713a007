"""The Walmart gateway's pure decisions: which pushes go one by one and which wait for a feed,
how long a 429 asks us to wait, how large a feed may grow, and when named SKUs are read by pages."""

import json

import httpx
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.gateway import Push
from infrastructure.channels.walmart.client import retry_after
from infrastructure.channels.walmart.feeds import FEED_ITEMS, document
from infrastructure.channels.walmart.level_reading import page_on
from infrastructure.channels.walmart.split import (
    HOT_PUSHES,
    LOW_UNITS,
    SMALL_CALL,
    Split,
    split,
    without_feed,
)


def pushes(count: int) -> list[Push]:
    return [Push(f"SKU-{n}", LOW_UNITS + 1 + n, 1) for n in range(count)]


def test_a_call_small_enough_goes_one_by_one_whatever_is_hot():
    assert split(pushes(3), {}, put_most=3) == Split(singles=pushes(3))


def test_a_small_call_sends_what_one_call_may_at_risk_first_and_the_rest_waits_unsent():
    risky = Push("SKU-LOW", 1, 2, acknowledged=3)
    planned = split([*pushes(3), risky], {"SKU-2": HOT_PUSHES}, put_most=2)
    assert planned == Split(singles=[risky, pushes(3)[2]])  # no feed: the rest, a later call
    assert split([*pushes(3), risky], {}, put_most=1) == Split(singles=[risky])


def test_the_long_tail_of_a_large_call_goes_in_a_feed_and_hot_skus_on_their_own():
    many = pushes(12)
    planned = split(many, {"SKU-4": HOT_PUSHES, "SKU-9": HOT_PUSHES + 3, "SKU-1": 1}, put_most=5)
    assert [p.sku for p in planned.singles] == ["SKU-4", "SKU-9"]
    assert [p.sku for p in planned.bulk] == [p.sku for p in many if p.sku not in ("SKU-4", "SKU-9")]


def test_no_more_hot_skus_go_alone_than_the_call_allows():
    hot = {f"SKU-{n}": HOT_PUSHES for n in range(SMALL_CALL + 2)}
    planned = split(pushes(SMALL_CALL + 2), hot, put_most=3)
    assert [p.sku for p in planned.singles] == ["SKU-0", "SKU-1", "SKU-2"]
    assert len(planned.bulk) == SMALL_CALL - 1


def test_a_move_to_or_from_zero_or_to_a_few_units_goes_alone_before_hot_skus():
    many = pushes(12)
    to_zero = Push("SKU-LAST", 0, 2, acknowledged=1)
    from_zero = Push("SKU-BACK", 40, 2, acknowledged=0)
    few = Push("SKU-FEW", LOW_UNITS, 2, acknowledged=9)
    planned = split([*many, to_zero, from_zero, few], {"SKU-4": HOT_PUSHES}, put_most=4)
    assert [p.sku for p in planned.singles] == ["SKU-LAST", "SKU-BACK", "SKU-FEW", "SKU-4"]
    assert [p.sku for p in planned.bulk] == [p.sku for p in many if p.sku != "SKU-4"]


def test_pushes_at_risk_beyond_what_the_call_allows_wait_in_the_feed_never_dropped():
    risky = [Push(f"LOW-{n}", 1, 1) for n in range(SMALL_CALL + 2)]
    planned = split(risky, {}, put_most=4)
    assert planned == Split(singles=risky[:4], bulk=risky[4:])


def test_without_a_feed_the_tail_fills_what_the_call_has_left_and_the_rest_waits():
    planned = Split(singles=pushes(2), bulk=pushes(10)[2:])
    assert without_feed(planned, put_most=5) == Split(singles=pushes(5))
    assert without_feed(Split(singles=pushes(6)), put_most=5) == Split(singles=pushes(6))


@given(
    count=st.integers(0, 60),
    put_most=st.integers(1, 20),
    hot=st.sets(st.integers(0, 59)),
    low=st.sets(st.integers(0, 59)),
)
def test_no_push_goes_twice_a_feed_takes_all_the_singles_leave_and_singles_keep_the_limit(
    count, put_most, hot, low
):
    many = [Push(p.sku, 1 if n in low else p.quantity, 1) for n, p in enumerate(pushes(count))]
    planned = split(many, {f"SKU-{n}": HOT_PUSHES for n in hot}, put_most)
    sent = [p.sku for p in planned.singles + planned.bulk]
    assert len(sent) == len(set(sent))
    assert len(planned.singles) == min(count, put_most) or count > SMALL_CALL
    assert len(planned.singles) <= put_most
    risky = [p for p in many if p.quantity <= LOW_UNITS][:put_most]
    assert planned.singles[: len(risky)] == risky  # the pushes at risk go alone first
    if count > SMALL_CALL:  # a feed is planned: every push goes one way or the other
        assert sorted(sent) == sorted(p.sku for p in many)
    fallback = without_feed(planned, put_most)
    assert len(fallback.singles) <= max(put_most, len(planned.singles))
    assert not fallback.bulk


def answer(**headers: str) -> httpx.Response:
    return httpx.Response(429, headers=headers)


def test_a_429_waits_for_retry_after_first_then_the_replenishment_time_then_a_second():
    now = 1_800_000_000.0
    assert retry_after(answer(**{"Retry-After": "7"}), now) == 7.0
    refill = str(int((now + 2.5) * 1000))
    assert retry_after(answer(**{"X-Next-Replenishment-Time": refill}), now) == 2.5
    assert retry_after(answer(**{"X-Next-Replenishment-Time": "0"}), now) == 0.0
    assert retry_after(answer(**{"X-Next-Replenishment-Time": "soon"}), now) == 1.0
    assert retry_after(answer(), now) == 1.0
    far = str(int((now + 86400) * 1000))
    assert retry_after(answer(**{"X-Next-Replenishment-Time": far}), now) == 3600.0


def test_the_largest_feed_of_the_longest_skus_stays_under_walmarts_five_megabytes():
    longest = [Push(f"{n:05}".ljust(255, "X"), 10**9, 1) for n in range(FEED_ITEMS)]
    for ship_node in ("", "721407"):
        size = len(json.dumps(document(longest, ship_node)).encode())
        assert size < 5 * 1024 * 1024, size


def test_named_skus_are_paged_for_only_while_the_pages_left_are_fewer_than_the_skus_left():
    assert page_on(pages_left=5, skus_left=6)
    assert not page_on(pages_left=6, skus_left=6)  # as many calls either way: one a SKU
    assert not page_on(pages_left=0, skus_left=100)
    assert not page_on(pages_left=10, skus_left=0)
