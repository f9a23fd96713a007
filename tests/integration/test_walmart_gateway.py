"""The Walmart gateway against the Walmart sandbox over HTTP: tokens, WM_* headers, single and
bulk writes within the feed limit, feeds followed until processed, reads, throttling, outages."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from infrastructure.channels.gateway import (
    ChannelAuthFailed,
    ChannelError,
    ChannelUnavailable,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.walmart.gateway import WalmartGateway
from infrastructure.channels.walmart.kind import WALMART
from infrastructure.channels.walmart.level_reading import read_levels
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.memory_limits import MemoryLimits
from sandboxes.server import SandboxServer
from sandboxes.walmart.seller import WalmartSandbox


@dataclass
class Walmart:
    seller: WalmartSandbox
    url: str

    def gateway(self, **options) -> WalmartGateway:
        client_id, client_secret = self.seller.credentials
        options = {"feed_poll_interval": 0.0, "timeout": 5.0, **options}
        return WalmartGateway(self.url, client_id, client_secret, **options)


@pytest.fixture
def walmart() -> Iterator[Walmart]:
    seller = WalmartSandbox(feed_delay=0.2)
    with SandboxServer(seller.app) as server:
        yield Walmart(seller, server.url)
    seller.close()


def pushes(*quantities: tuple[str, int]) -> list[Push]:
    return [Push(sku, quantity, 1) for sku, quantity in quantities]


def settled(gateway: WalmartGateway, results: list[PushResult]) -> list[PushResult]:
    ticket = results[0].ticket
    skus = [r.sku for r in results]
    deadline = time.monotonic() + 10
    while (found := gateway.settle(ticket, skus)) is None:
        assert time.monotonic() < deadline, "the feed was never processed"
        time.sleep(0.05)
    return found


def test_a_few_skus_are_set_one_call_each_with_one_token_and_walmarts_headers(walmart):
    for sku in ("A", "B", "C"):
        walmart.seller.add_item(sku, 0)
    with walmart.gateway(put_most=3) as gateway:
        results = gateway.push(pushes(("A", 5), ("B", 0), ("C", 7)))
    assert [(r.sku, r.status, r.channel_quantity) for r in results] == [
        ("A", PushStatus.APPLIED, 5),
        ("B", PushStatus.APPLIED, 0),
        ("C", PushStatus.APPLIED, 7),
    ]
    assert [walmart.seller.stock(s) for s in "ABC"] == [5, 0, 7]
    assert walmart.seller.tokens_issued == 1
    assert walmart.seller.log.count("inventory.put", 200) == 3
    ids = walmart.seller.correlation_ids
    assert len(ids) == len(set(ids)) == 4  # the token call and three PUTs, each its own


def test_a_push_sets_one_sku_the_urgent_one_first_and_the_rest_go_in_later_calls(walmart):
    for sku in ("A", "B", "C"):
        walmart.seller.add_item(sku, 9)
    with walmart.gateway() as gateway:
        a, b, c = pushes(("A", 8), ("B", 1), ("C", 7))
        results = gateway.push([a, replace(b, urgent=True), c])
    assert [(r.sku, r.status) for r in results] == [("B", PushStatus.APPLIED)]
    assert [walmart.seller.stock(s) for s in "ABC"] == [9, 1, 9]
    assert walmart.seller.log.count("inventory.put") == 1


def test_a_sku_walmart_does_not_list_is_unknown(walmart):
    with walmart.gateway() as gateway:
        [result] = gateway.push(pushes(("NOPE", 3)))
    assert result.status == PushStatus.UNKNOWN_SKU
    assert "NOPE" in result.detail


def test_an_expired_token_is_replaced_once_and_the_call_goes_through(walmart):
    walmart.seller.add_item("A", 0)
    with walmart.gateway() as gateway:
        gateway.push(pushes(("A", 1)))
        walmart.seller.expire_tokens()
        [result] = gateway.push(pushes(("A", 2)))
    assert result.status == PushStatus.APPLIED
    assert walmart.seller.tokens_issued == 2
    assert walmart.seller.log.count("inventory.put", 401) == 1


def test_refused_client_credentials_need_a_person(walmart):
    gateway = WalmartGateway(walmart.url, "someone", "else", feed_poll_interval=0)
    with gateway, pytest.raises(ChannelAuthFailed, match="client_id and client_secret"):
        gateway.push(pushes(("A", 1)))


def test_the_long_tail_goes_in_one_feed_followed_until_processed(walmart):
    skus = [f"TAIL-{n:03}" for n in range(40)]
    for sku in skus:
        walmart.seller.add_item(sku, 0)
    with walmart.gateway() as gateway:
        submitted = gateway.push(pushes(*[(sku, 30) for sku in skus], ("UNLISTED", 10)))
        assert {r.status for r in submitted} == {PushStatus.SUBMITTED}
        assert len({r.ticket for r in submitted}) == 1
        results = settled(gateway, submitted)
    assert walmart.seller.log.count("feeds.post", 200) == 1
    assert walmart.seller.log.count("inventory.put") == 0
    by_sku = {r.sku: r.status for r in results}
    assert by_sku == {**dict.fromkeys(skus, PushStatus.APPLIED), "UNLISTED": PushStatus.UNKNOWN_SKU}
    assert {walmart.seller.stock(sku) for sku in skus} == {30}


def test_feeds_keep_within_the_hours_limit_and_the_rest_goes_one_by_one(walmart):
    skus = [f"FEED-{n:03}" for n in range(30)]
    for sku in skus:
        walmart.seller.add_item(sku, 0)
    gate = ChannelGate(MemoryLimits(), "walmart-feeds", GatePolicy(rate=100))
    with walmart.gateway(gate=gate, put_most=4) as gateway:
        first = gateway.push(pushes(*[(sku, 11) for sku in skus]))
        second = gateway.push(pushes(*[(sku, 12) for sku in skus]))
    assert {r.status for r in first} == {PushStatus.SUBMITTED}
    # No second feed within the hour's spacing: four go one by one, the rest wait.
    assert [(r.sku, r.status) for r in second] == [(s, PushStatus.APPLIED) for s in skus[:4]]
    assert walmart.seller.log.count("feeds.post") == 1


def test_an_urgent_move_to_zero_goes_on_its_own_beside_a_feed_of_the_tail(walmart):
    skus = [f"ZERO-{n:03}" for n in range(20)]
    for sku in skus:
        walmart.seller.add_item(sku, 0)
    with walmart.gateway() as gateway:
        tail = [(sku, 25) for sku in skus[1:]]
        results = gateway.push([Push(skus[0], 0, 2, acknowledged=3, urgent=True), *pushes(*tail)])
    statuses = {r.sku: r.status for r in results}
    assert statuses.pop(skus[0]) == PushStatus.APPLIED  # shown now, not once a feed is processed
    assert set(statuses.values()) == {PushStatus.SUBMITTED}
    assert walmart.seller.log.count("inventory.put", 200) == 1


def test_the_pushers_verdict_alone_sends_a_sku_on_its_own_beside_a_feed_of_the_tail(walmart):
    skus = [f"MIX-{n:03}" for n in range(20)]
    for sku in skus:
        walmart.seller.add_item(sku, 0)
    with walmart.gateway(put_most=2) as gateway:
        for quantity in (19, 18):  # pushed often, but not judged urgent: no count of its own
            gateway.push(pushes((skus[3], quantity)))
        calls = [replace(p, urgent=p.sku == skus[7]) for p in pushes(*[(s, 11) for s in skus])]
        results = gateway.push(calls)
    statuses = {r.sku: r.status for r in results}
    assert statuses.pop(skus[7]) == PushStatus.APPLIED
    assert set(statuses.values()) == {PushStatus.SUBMITTED}  # skus[3] among them
    assert walmart.seller.stock(skus[7]) == 11
    assert walmart.seller.log.count("inventory.put", 200) == 3  # the two before, and skus[7]


def test_urgent_pushes_beyond_put_most_go_in_the_calls_feed_with_the_tail(walmart):
    tail, hot = [f"TAIL-{n:02}" for n in range(12)], ["HOT-0", "HOT-1", "HOT-2"]
    for sku in [*tail, *hot]:
        walmart.seller.add_item(sku, 9)
    with walmart.gateway() as gateway:
        marked = [replace(p, urgent=True) for p in pushes(*[(sku, 4) for sku in hot])]
        results = gateway.push([*pushes(*[(sku, 30) for sku in tail]), *marked])
        statuses = {r.sku: r.status for r in results}
        assert statuses.pop("HOT-0") == PushStatus.APPLIED  # the call's one PUT, urgent first
        assert statuses == dict.fromkeys([*tail, "HOT-1", "HOT-2"], PushStatus.SUBMITTED)
        settled(gateway, [r for r in results if r.ticket])
    assert [walmart.seller.stock(sku) for sku in hot] == [4, 4, 4]
    assert {walmart.seller.stock(sku) for sku in tail} == {30}
    assert walmart.seller.log.count("feeds.post") == 1
    assert walmart.seller.log.count("inventory.put", 200) == 1


def test_a_push_left_pending_for_put_wait_goes_in_the_next_feed(walmart):
    for sku in ("A", "B", "C"):
        walmart.seller.add_item(sku, 9)
    with walmart.gateway(put_wait=0.2) as gateway:
        a, b, c = (replace(p, urgent=True) for p in pushes(("A", 1), ("B", 2), ("C", 3)))
        assert [r.sku for r in gateway.push([a, b, c])] == ["A"]  # B and C left pending
        assert [r.sku for r in gateway.push([b, c])] == ["B"]  # not overdue yet
        time.sleep(0.25)
        results = gateway.push([replace(a, quantity=0), c])  # A leads again; C waited 0.25 s
        statuses = {r.sku: r.status for r in results}
        assert statuses == {"A": PushStatus.APPLIED, "C": PushStatus.SUBMITTED}
        settled(gateway, [r for r in results if r.ticket])
    assert [walmart.seller.stock(sku) for sku in "ABC"] == [0, 2, 3]
    assert walmart.seller.log.count("feeds.post") == 1


def test_a_call_whose_put_is_throttled_has_submitted_no_feed_and_spent_no_feed_turn(walmart):
    """The pusher records nothing of a call that raised: a feed sent before the PUT went
    untracked, and an older quantity of its could land over a later PUT."""
    skus = [f"HELD-{n:02}" for n in range(12)]
    for sku in [*skus, "URGENT"]:
        walmart.seller.add_item(sku, 0)
    walmart.seller.set_rate("inventory.put", 4.0, 0)  # every PUT answered 429 for now
    gate = ChannelGate(MemoryLimits(), "walmart-held", GatePolicy(rate=100))
    call = [Push("URGENT", 1, 1, urgent=True), *pushes(*[(sku, 5) for sku in skus])]
    with walmart.gateway(gate=gate) as gateway:
        with pytest.raises(Throttled):
            gateway.push(call)
        assert walmart.seller.log.count("feeds.post") == 0
        walmart.seller.set_rate("inventory.put", 10.0, 20)
        results = gateway.push(call)
    assert {r.sku: r.status for r in results} == {
        "URGENT": PushStatus.APPLIED,
        **dict.fromkeys(skus, PushStatus.SUBMITTED),  # the hour's first feed turn, still free
    }


def test_a_429_names_the_wait_until_the_bucket_refills(walmart):
    walmart.seller.add_item("A", 0)
    walmart.seller.set_rate("inventory.put", 0.5, 1)
    with walmart.gateway() as gateway:
        gateway.push(pushes(("A", 1)))
        with pytest.raises(Throttled) as throttled:
            gateway.push(pushes(("A", 2)))
    assert 0 < throttled.value.retry_after <= 2.1


def test_an_outage_is_unavailable_and_a_feed_is_settled_after_it(walmart):
    skus = [f"OUT-{n:03}" for n in range(15)]
    for sku in skus:
        walmart.seller.add_item(sku, 0)
    with walmart.gateway() as gateway:
        submitted = gateway.push(pushes(*[(sku, 40) for sku in skus]))
        walmart.seller.faults.outage = True
        with pytest.raises(ChannelUnavailable):
            gateway.push(pushes(("OUT-000", 1)))
        with pytest.raises(ChannelUnavailable):
            gateway.settle(submitted[0].ticket, skus)
        walmart.seller.faults.outage = False
        assert {r.status for r in settled(gateway, submitted)} == {PushStatus.APPLIED}


def test_levels_are_read_per_sku_and_the_catalogue_in_pages_of_fifty(walmart):
    for n in range(120):
        walmart.seller.add_item(f"CAT-{n:03}", n)
    channel = WalmartConfig(id="wm", api_base_url=walmart.url, client_id="x", client_secret="y")
    with walmart.gateway() as gateway:
        named = {r.sku: r.quantity for r in read_levels(channel, gateway, ["CAT-007", "NOPE"])}
        catalogue = {r.sku: r.quantity for r in read_levels(channel, gateway, None)}
    assert named == {"CAT-007": 7}
    assert catalogue == {f"CAT-{n:03}": n for n in range(120)}
    assert walmart.seller.log.count("inventories.get", 200) == 3


def test_the_catalogue_is_read_a_page_a_call_and_a_new_gateway_resumes_at_the_stored_cursor(
    walmart,
):
    for n in range(120):  # three pages: 50, 50, 20
        walmart.seller.add_item(f"PAGE-{n:03}", n)
    channel = WalmartConfig(id="wm", api_base_url=walmart.url, client_id="x", client_secret="y")
    assert WALMART.read_page is not None
    with walmart.gateway() as first:
        one = WALMART.read_page(channel, first, None)
        two = WALMART.read_page(channel, first, one.next)
    with walmart.gateway() as second:  # the worker died; the run kept Walmart's cursor
        three = WALMART.read_page(channel, second, two.next)
    pages = [one, two, three]
    assert [len(page.readings) for page in pages] == [50, 50, 20]
    assert three.next is None
    read = {r.sku: r.quantity for page in pages for r in page.readings}
    assert read == {f"PAGE-{n:03}": n for n in range(120)}
    assert walmart.seller.log.count("inventories.get", 200) == len(pages)  # none read twice


def test_a_catalogue_page_walmart_refuses_is_a_channel_error(walmart):
    walmart.seller.add_item("ONE", 1)
    channel = WalmartConfig(id="wm", api_base_url=walmart.url, client_id="x", client_secret="y")
    assert WALMART.read_page is not None
    with walmart.gateway() as gateway, pytest.raises(ChannelError) as refused:
        WALMART.read_page(channel, gateway, "not-a-walmart-cursor")
    assert not isinstance(refused.value, ChannelUnavailable)  # refused (400), not down
    assert "nextCursor is invalid" in str(refused.value)


def test_many_named_skus_are_read_by_pages_while_fewer_pages_than_skus_are_left(walmart):
    for n in range(3000):
        walmart.seller.add_item(f"NAMED-{n:04}", n)
    walmart.seller.set_rate("inventories.get", 100, 100)
    walmart.seller.set_rate("inventory.get", 100, 100)
    channel = WalmartConfig(id="wm", api_base_url=walmart.url, client_id="x", client_secret="y")
    most = [f"NAMED-{n:04}" for n in range(0, 3000, 10)]  # 300 over 60 pages
    spread = [f"NAMED-{n:04}" for n in range(0, 3000, 50)]  # 60 over 60 pages
    with walmart.gateway() as gateway:
        found = {r.sku: r.quantity for r in read_levels(channel, gateway, [*most, "NOPE"])}
        paged, alone = (
            walmart.seller.log.count(f"{api}.get") for api in ("inventories", "inventory")
        )
        some = {r.sku: r.quantity for r in read_levels(channel, gateway, spread)}
    assert found == {sku: int(sku[-4:]) for sku in most}
    # 60 pages are cheaper than 300 calls; NOPE, on none of them, is not listed: never read.
    assert (paged, alone) == (60, 0)
    assert some == {sku: int(sku[-4:]) for sku in spread}
    # The first page holds one of them; 59 pages for 59 SKUs is no cheaper: one call each.
    assert walmart.seller.log.count("inventories.get") - paged == 1
    assert walmart.seller.log.count("inventory.get") - alone == 59


def test_the_token_call_takes_the_channels_turn_as_every_other_call_does(walmart):
    """Walmart counts every call against its limit, the token's too: behind a gate of 5 calls a
    second, the token call and the PUTs after it arrive a turn apart, none back to back."""
    for sku in ("A", "B", "C"):
        walmart.seller.add_item(sku, 0)
    gate = ChannelGate(MemoryLimits(), "walmart", GatePolicy(rate=5))
    with walmart.gateway(gate=gate, put_most=3) as gateway:
        gateway.push(pushes(("A", 5), ("B", 0), ("C", 7)))
    arrived = sorted(at for at, _, _ in walmart.seller.log.calls)
    assert len(arrived) == 4  # the token call and three PUTs
    assert min(b - a for a, b in itertools.pairwise(arrived)) >= 0.2  # a turn is 250 ms
    assert walmart.seller.log.busiest_second() <= 4


def test_each_page_of_a_feeds_status_takes_a_turn_of_the_channels_rate(walmart):
    """A feed of 2,500 items is read in three status pages (1,000 items a page), each on a turn
    of its own: behind a gate of 5 calls a second, no two arrive back to back, and a status
    bucket refilled every 200 ms and holding one call refuses none."""
    skus = [f"PAGE-{n:04}" for n in range(2_500)]
    for sku in skus:
        walmart.seller.add_item(sku, 0)
    walmart.seller.set_rate("feeds.get", 5.0, 1)
    gate = ChannelGate(MemoryLimits(), "walmart-pages", GatePolicy(rate=5))
    with walmart.gateway(gate=gate) as gateway:
        fed = [r for r in gateway.push(pushes(*[(s, 3) for s in skus])) if r.ticket]
        results = settled(gateway, fed)
    assert len(fed) > 2_000  # the long tail, beside a few one by one
    assert {r.sku: r.status for r in results} == {r.sku: PushStatus.APPLIED for r in fed}
    log = walmart.seller.log
    pages = sorted(at for at, operation, _ in log.calls if operation == "feeds.get")
    assert log.count(status=429) == 0
    assert len(pages) >= 3
    assert min(b - a for a, b in itertools.pairwise(pages)) >= 0.2  # a turn is 250 ms
    assert log.busiest_second() <= 5  # the channel's rate


def test_a_feed_not_due_for_a_look_takes_no_turn_from_the_pushes(walmart):
    walmart.seller.add_item("A", 0)
    gate = ChannelGate(MemoryLimits(), "walmart-due", GatePolicy(rate=5))
    skus = [f"DUE-{n:02}" for n in range(20)]
    for sku in skus:
        walmart.seller.add_item(sku, 0)
    with walmart.gateway(gate=gate, feed_poll_interval=60.0) as gateway:
        submitted = gateway.push(pushes(*[(sku, 3) for sku in skus]))
        time.sleep(0.3)  # the channel's next turn is free
        assert gateway.settle(submitted[0].ticket, skus) is None  # looked at on submission
        started = time.monotonic()
        gateway.push(pushes(("A", 4)))  # the next turn is the push's, at once
        assert time.monotonic() - started < 0.2
