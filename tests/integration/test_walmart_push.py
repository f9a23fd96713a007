"""The pusher against the Walmart sandbox: each call sets one SKU on one turn of the channel's
rate, and the next is decided afresh at its turn, so a SKU that falls to its last units while
hot SKUs queue goes at the next turn, ahead of them, not once they have all gone; what goes
by `PUT` ahead of a feed is the pusher's verdict (at risk, then hot by velocity), not the
gateway's own, and urgent SKUs beyond a call's PUT ride in its feed; and no feed goes
untracked, so none sets back a SKU PUT after it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import redis

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.channels.walmart.gateway import WalmartGateway
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.pusher import Pusher, PushPolicy
from infrastructure.push.redis_limits import RedisLimits
from infrastructure.push.service import HOT_SHARE, hottest
from infrastructure.push.store import PushStore
from sandboxes.walmart.seller import WalmartSandbox
from tests.helpers import change, random_sku
from tests.integration.intake_fixtures import wait_until

CHANNEL = "walmart-risk"
HOT_QUEUE = 8  # one call each at 4 a second: 2 s of turns, and few enough to send no feed
TAIL = 12  # more than a small call's ten: what is not urgent goes as a feed


@contextmanager
def walmart(
    database: str, redis_url: str, sandbox: WalmartSandbox, **options: Any
) -> Iterator[tuple[WalmartGateway, PushStore, ChannelGate]]:
    """The channel's projection running, the sandbox served, and a gateway to it (`options`
    its own) behind a gate of 5 calls a second, with the pushers' store; all closed after."""
    client = redis.Redis.from_url(redis_url)
    store = PushStore(database)
    gate = ChannelGate(RedisLimits(client), CHANNEL, GatePolicy(rate=5), uuid.uuid4().hex)
    try:
        with (
            AvailabilityRunner(eventsourcing_env(database), (ChannelRule(CHANNEL),)),
            sandbox.server() as server,
            WalmartGateway(
                server.url, *sandbox.credentials, channel_id=CHANNEL, gate=gate, **options
            ) as gateway,
        ):
            yield gateway, store, gate
    finally:
        store.close()
        client.close()
        sandbox.close()


def test_a_sku_at_risk_goes_at_the_next_turn_ahead_of_a_queue_of_due_hot_skus(
    scratch_ledger, scratch_database, redis_url
):
    hot, risky = [random_sku() for _ in range(HOT_QUEUE)], random_sku()
    sandbox = WalmartSandbox()
    for sku in hot:
        sandbox.add_item(sku, 0)
    sandbox.add_item(risky, 5)
    scratch_ledger.record_batch([change(ChangeKind.RECEIPT, sku, 50) for sku in hot])
    # The long tail waits a minute: only the hot SKUs, and the one at risk, cause calls.
    policy = PushPolicy(batch_window=60.0, sku_interval=0.0, buffer=1, call_timeout=2.0, linger=1)
    with walmart(scratch_database, redis_url, sandbox, timeout=2.0) as (gateway, store, gate):
        pusher = Pusher(gateway, store, gate, policy, hot=lambda: set(hot))
        draining = threading.Thread(target=pusher.drain)
        draining.start()
        wait_until(lambda: any(sandbox.stock(sku) == 50 for sku in hot), timeout=5)
        # One unit left, at the buffer: at risk whatever its velocity.
        scratch_ledger.record(change(ChangeKind.RECEIPT, risky, 1))
        wait_until(lambda: sandbox.stock(risky) == 1, timeout=5)
        behind = [sku for sku in hot if sandbox.stock(sku) == 0]
        draining.join(timeout=10)
        # Its turn came within a few of the queue's eight (the projection takes one or two):
        # a call that set the whole queue first would have left none behind it.
        assert len(behind) >= HOT_QUEUE // 2, behind
        assert {sandbox.stock(sku) for sku in hot} == {50}
        assert sandbox.log.count(status=429) == 0


class Recording(httpx.HTTPTransport):
    """HTTP as usual, noting the SKU of each `PUT /v3/inventory` in the order sent."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.puts.append(request.url.params["sku"])
        return super().handle_request(request)


def test_the_pushers_verdict_puts_a_sku_at_risk_then_a_hot_one_ahead_of_the_tails_feed(
    scratch_ledger, scratch_database, redis_url
):
    tail, hot, risky = [random_sku() for _ in range(TAIL)], random_sku(), random_sku()
    sandbox = WalmartSandbox(feed_delay=3.0)
    for sku in [*tail, hot, risky]:
        sandbox.add_item(sku, 0)
    # The tail first in the ledger, a few units each: safe by the pusher's judgement (none of
    # them sells, the buffer is 1), though few enough to look at risk to a gateway of its own.
    receipts = [(sku, 3) for sku in tail] + [(hot, 50), (risky, 1)]
    scratch_ledger.record_batch([change(ChangeKind.RECEIPT, sku, n) for sku, n in receipts])
    velocity = {hot: 500.0}  # the one seller: hot, though never pushed before
    policy = PushPolicy(batch_window=60.0, sku_interval=0.0, buffer=1, call_timeout=2.0)
    transport = Recording()
    options = {"put_most": 2, "timeout": 2.0, "transport": transport}
    with walmart(scratch_database, redis_url, sandbox, **options) as (gateway, store, gate):
        wait_until(lambda: len(store.pending(CHANNEL, 100)) == TAIL + 2, timeout=10)
        hottest_now = hottest(velocity, HOT_SHARE)
        pusher = Pusher(
            gateway, store, gate, policy, hot=lambda: hottest_now, velocity=lambda: velocity
        )
        assert pusher.drain() == 1
        shown_at_once = {sku: sandbox.stock(sku) for sku in [risky, hot, *tail]}
        wait_until(lambda: {sandbox.stock(sku) for sku in tail} == {3}, timeout=10)
    assert transport.puts == [risky, hot]  # the lowest cover first, then the fastest seller
    assert shown_at_once == {risky: 1, hot: 50, **dict.fromkeys(tail, 0)}
    assert sandbox.log.count("feeds.post", 200) == 1  # the tail, shown once it was processed


def test_the_sku_at_risk_with_the_lowest_cover_takes_the_calls_put_and_the_others_its_feed(
    scratch_ledger, scratch_database, redis_url
):
    """Left pending for the next calls' PUTs instead, some 40 urgent SKUs under load were read
    again at every call (ae03659): they ride in the feed."""
    tail, risky = [random_sku() for _ in range(TAIL)], [random_sku() for _ in range(3)]
    sandbox = WalmartSandbox(feed_delay=30.0)
    for sku in [*tail, *risky]:
        sandbox.add_item(sku, 0)
    receipts = [(sku, 3) for sku in tail] + [(sku, n) for n, sku in enumerate(risky, 1)]
    scratch_ledger.record_batch([change(ChangeKind.RECEIPT, sku, n) for sku, n in receipts])
    velocity = dict.fromkeys(risky, 86_400.0)  # one a second: at risk within the minute's window
    policy = PushPolicy(batch_window=60.0, sku_interval=0.0, call_timeout=2.0)
    transport = Recording()
    options = {"timeout": 2.0, "transport": transport}
    with walmart(scratch_database, redis_url, sandbox, **options) as (gateway, store, gate):
        wait_until(lambda: len(store.pending(CHANNEL, 100)) == TAIL + 3, timeout=10)
        pusher = Pusher(gateway, store, gate, policy, velocity=lambda: velocity)
        pusher.drain()
        [fed] = store.submissions(CHANNEL)
        assert transport.puts == risky[:1]  # the fewest units (the lowest cover) first
        assert [sandbox.stock(sku) for sku in risky] == [1, 0, 0]  # the feed: in 30 s
        assert sorted(p.sku for p in fed.pending) == sorted([*tail, *risky[1:]])
        assert not store.pending(CHANNEL, 100)
        assert gate.state()["failures_in_a_row"] == 0
        assert sandbox.log.count("feeds.post", 200) == 1


def test_a_feed_is_never_sent_untracked_so_its_older_quantity_never_lands_over_a_later_put(
    scratch_ledger, scratch_database, redis_url
):
    """A call whose PUT Walmart throttles sends no feed: the pusher records nothing of a call
    that raised, so a feed sent before it would go untracked, its SKUs pending as if never
    sent, and one of them PUT meanwhile at a newer quantity would be set back when Walmart
    processed the feed."""
    tail, risky = [random_sku() for _ in range(TAIL)], random_sku()
    sandbox = WalmartSandbox(feed_delay=4.0)
    for sku in [*tail, risky]:
        sandbox.add_item(sku, 0)
    receipts = [(sku, 3) for sku in tail] + [(risky, 1)]
    scratch_ledger.record_batch([change(ChangeKind.RECEIPT, sku, n) for sku, n in receipts])
    policy = PushPolicy(batch_window=60.0, sku_interval=0.0, buffer=1, call_timeout=2.0)
    options = {"feed_poll_interval": 0.5, "timeout": 2.0}
    with walmart(scratch_database, redis_url, sandbox, **options) as (gateway, store, gate):
        wait_until(lambda: len(store.pending(CHANNEL, 100)) == TAIL + 1, timeout=10)
        pusher = Pusher(gateway, store, gate, policy)
        sandbox.set_rate("inventory.put", 4.0, 0)  # every PUT answered 429 for now
        assert pusher.drain() == 1
        sandbox.set_rate("inventory.put", 10.0, 20)
        # The first of the tail sells down to its last unit: at risk, it goes at the next call
        # (by PUT, or in its feed when the other SKU at risk takes the PUT).
        scratch_ledger.record(change(ChangeKind.SALE, tail[0], 2))
        wait_until(lambda: _quantity(store, tail[0]) == 1, timeout=5)
        wait_until(lambda: gate.closed_for() == 0, timeout=5)
        wait_until(lambda: pusher.drain() >= 0 and sandbox.stock(tail[0]) == 1, timeout=20)
        # Every feed sent is processed, and the pusher follows each to its end.
        wait_until(lambda: _drained(pusher, store), timeout=20)
    assert sandbox.stock(tail[0]) == 1  # no feed set it back to 3
    assert {sandbox.stock(sku) for sku in tail[1:]} == {3}
    assert sandbox.stock(risky) == 1


def _quantity(store: PushStore, sku: str) -> int | None:
    return next((p.quantity for p in store.pending(CHANNEL, 100) if p.sku == sku), None)


def _drained(pusher: Pusher, store: PushStore) -> bool:
    pusher.drain()
    return not store.pending(CHANNEL, 100) and not store.submissions(CHANNEL)
