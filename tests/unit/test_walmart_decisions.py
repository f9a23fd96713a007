"""The Walmart gateway's pure decisions: which pushes go one by one (the pusher's urgent ones
first), which wait for a feed and which for the next call, when a push left call after call goes
in a feed all the same, how long a 429 asks us to wait, how large a feed may grow, and when named
SKUs are read by pages."""

import json
from dataclasses import replace

import httpx
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.gateway import Push
from infrastructure.channels.walmart.client import retry_after
from infrastructure.channels.walmart.feeds import FEED_ITEMS, document
from infrastructure.channels.walmart.level_reading import page_on
from infrastructure.channels.walmart.split import (
    SMALL_CALL,
    Split,
    left_since,
    overdue,
    split,
    without_feed,
)


def pushes(count: int) -> list[Push]:
    return [Push(f"SKU-{n}", 1 + n, 1) for n in range(count)]


def urgent(push: Push) -> Push:
    return replace(push, urgent=True)


def test_a_call_small_enough_goes_one_by_one_in_the_order_given():
    assert split(pushes(3), put_most=3) == Split(singles=pushes(3))


def test_a_small_call_sends_what_one_call_may_urgent_first_and_the_rest_waits_unsent():
    first = urgent(Push("SKU-LOW", 1, 2, acknowledged=3))
    planned = split([*pushes(3), first], put_most=2)
    assert planned == Split(singles=[first, pushes(3)[0]])  # no feed: the rest, a later call
    assert split([*pushes(3), first], put_most=1) == Split(singles=[first])


def test_the_long_tail_of_a_large_call_goes_in_a_feed_and_urgent_pushes_on_their_own():
    many = [urgent(p) if p.sku in ("SKU-9", "SKU-4") else p for p in pushes(12)]
    planned = split(many, put_most=5)
    assert [p.sku for p in planned.singles] == ["SKU-4", "SKU-9"]  # in the order given
    assert [p.sku for p in planned.bulk] == [p.sku for p in many if p.sku not in ("SKU-4", "SKU-9")]


def test_the_gateway_judges_nothing_itself_a_few_units_or_a_move_to_zero_unmarked_go_by_feed():
    # The pusher's verdict alone decides: it found these safe (a buffer of 0, nothing selling).
    many = [*pushes(12), Push("SKU-LAST", 0, 2, acknowledged=1), Push("SKU-FEW", 2, 2)]
    planned = split(many, put_most=4)
    assert planned == Split(bulk=many)


def test_urgent_pushes_beyond_what_a_large_call_puts_go_in_its_feed_first():
    # Left for later calls, some 40 urgent SKUs under load were read again at every call
    # (ae03659); the feed takes them at once.
    marked = [urgent(Push(f"HOT-{n}", 5, 1)) for n in range(SMALL_CALL + 2)]
    planned = split([*pushes(3), *marked], put_most=4)
    assert planned == Split(singles=marked[:4], bulk=[*marked[4:], *pushes(3)])


def test_pushes_left_too_long_go_in_the_feed_first_whatever_the_calls_size():
    marked = [urgent(Push(f"HOT-{n}", 5, 1)) for n in range(SMALL_CALL + 2)]
    late = {marked[0].sku, marked[6].sku, pushes(3)[2].sku}
    planned = split([*pushes(3), *marked], put_most=4, overdue=late)
    assert planned == Split(singles=marked[:4], bulk=[*marked[4:], *pushes(3)])  # all go
    small = split([*pushes(3), marked[9]], put_most=1, overdue=late)
    assert small == Split(singles=[marked[9]], bulk=[pushes(3)[2]])


def test_a_push_outranked_call_after_call_goes_in_a_feed_once_left_for_the_wait():
    # Three hot SKUs and one PUT a call: the two fastest take turns leading, C never does.
    a, b, c = (urgent(Push(sku, 5, 1)) for sku in "ABC")
    left: dict[str, float] = {}
    fed = []
    for now in range(40):
        call = [a, b, c] if now % 2 == 0 else [b, a, c]
        planned = split(call, put_most=1, overdue=overdue(left, now, wait=30))
        left = left_since(left, call, planned, now)
        fed.extend((now, p.sku) for p in planned.bulk)
    assert fed[0] == (30, "C")  # left from the first call, 30 s before
    assert set(left) <= {"A", "B", "C"}


def test_a_push_is_left_since_the_first_call_that_left_it_and_forgotten_once_it_goes():
    a, b, c = pushes(3)
    first = left_since({}, [a, b, c], Split(singles=[a]), now=10.0)
    assert first == {b.sku: 10.0, c.sku: 10.0}
    later = left_since(first, [a, b, c], Split(singles=[a], bulk=[c]), now=12.0)
    assert later == {b.sku: 10.0}
    assert left_since(later, [a, c], Split(singles=[a]), now=13.0) == {c.sku: 13.0}  # b gone
    assert overdue(later, now=14.9, wait=5.0) == set()
    assert overdue(later, now=15.0, wait=5.0) == {b.sku}


def test_without_a_feed_the_tail_fills_what_the_call_has_left_and_the_rest_waits():
    planned = Split(singles=pushes(2), bulk=pushes(10)[2:])
    assert without_feed(planned, put_most=5) == Split(singles=pushes(5))
    assert without_feed(Split(singles=pushes(6)), put_most=5) == Split(singles=pushes(6))


def test_without_a_feed_urgent_pushes_beyond_the_singles_fill_the_room_first():
    marked = urgent(Push("SKU-HOT", 7, 1))
    planned = split([*pushes(SMALL_CALL), marked], put_most=3)
    assert without_feed(planned, put_most=3) == Split(singles=[marked, *pushes(2)])


@given(
    count=st.integers(0, 60),
    put_most=st.integers(1, 20),
    marked=st.sets(st.integers(0, 59)),
    late=st.sets(st.integers(0, 59)),
)
def test_no_push_goes_twice_the_feed_takes_the_tail_and_the_late_and_singles_keep_the_limit(
    count, put_most, marked, late
):
    many = [urgent(p) if n in marked else p for n, p in enumerate(pushes(count))]
    overdue_skus = {p.sku for n, p in enumerate(many) if n in late}
    planned = split(many, put_most, overdue_skus)
    sent = [p.sku for p in planned.singles + planned.bulk]
    assert len(sent) == len(set(sent))
    assert len(planned.singles) == min(count, put_most) or count > SMALL_CALL
    assert len(planned.singles) <= put_most
    first = [p for p in many if p.urgent][:put_most]
    assert planned.singles[: len(first)] == first  # the urgent go alone first, in order
    assert overdue_skus <= set(sent)  # a push left too long goes one way or the other
    if count > SMALL_CALL:  # a feed is planned: it takes every push the PUTs do not
        assert set(sent) == {p.sku for p in many}
        assert all(p.urgent for p in planned.singles)
    fallback = without_feed(planned, put_most)
    assert len(fallback.singles) <= max(put_most, len(planned.singles))
    assert not fallback.bulk
    left = left_since({}, many, planned, 1.0)
    assert set(left) == {p.sku for p in many} - set(sent)


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
