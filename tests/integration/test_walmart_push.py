"""The pusher against the Walmart sandbox: each call sets one SKU on one turn of the channel's
rate, and the next is decided afresh at its turn, so a SKU that falls to its last units while
hot SKUs queue goes at the next turn, ahead of them, not once they have all gone; and what goes
by `PUT` ahead of a feed is the pusher's verdict (at risk, then hot by velocity), not the
gateway's own."""

from __future__ import annotations

import threading
import uuid

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


def test_a_sku_at_risk_goes_at_the_next_turn_ahead_of_a_queue_of_due_hot_skus(
    scratch_ledger, scratch_database, redis_url
):
    hot, risky = [random_sku() for _ in range(HOT_QUEUE)], random_sku()
    sandbox = WalmartSandbox()
    for sku in hot:
        sandbox.add_item(sku, 0)
    sandbox.add_item(risky, 5)
    scratch_ledger.record_batch([change(ChangeKind.RECEIPT, sku, 50) for sku in hot])
    client = redis.Redis.from_url(redis_url)
    store = PushStore(scratch_database)
    gate = ChannelGate(RedisLimits(client), CHANNEL, GatePolicy(rate=5), uuid.uuid4().hex)
    # The long tail waits a minute: only the hot SKUs, and the one at risk, cause calls.
    policy = PushPolicy(batch_window=60.0, sku_interval=0.0, buffer=1, call_timeout=2.0, linger=1)
    try:
        with (
            AvailabilityRunner(eventsourcing_env(scratch_database), (ChannelRule(CHANNEL),)),
            sandbox.server() as server,
            WalmartGateway(
                server.url, *sandbox.credentials, channel_id=CHANNEL, timeout=2.0, gate=gate
            ) as gateway,
        ):
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
    finally:
        store.close()
        client.close()
        sandbox.close()


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
    client = redis.Redis.from_url(redis_url)
    store = PushStore(scratch_database)
    gate = ChannelGate(RedisLimits(client), CHANNEL, GatePolicy(rate=5), uuid.uuid4().hex)
    policy = PushPolicy(batch_window=60.0, sku_interval=0.0, buffer=1, call_timeout=2.0)
    transport = Recording()
    try:
        with (
            AvailabilityRunner(eventsourcing_env(scratch_database), (ChannelRule(CHANNEL),)),
            sandbox.server() as server,
            WalmartGateway(
                server.url,
                *sandbox.credentials,
                channel_id=CHANNEL,
                put_most=2,
                timeout=2.0,
                transport=transport,
                gate=gate,
            ) as gateway,
        ):
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
    finally:
        store.close()
        client.close()
        sandbox.close()
