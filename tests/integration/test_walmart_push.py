"""The pusher against the Walmart sandbox: each call sets one SKU on one turn of the channel's
rate, and the next is decided afresh at its turn, so a SKU that falls to its last units while
hot SKUs queue goes at the next turn, ahead of them, not once they have all gone."""

from __future__ import annotations

import threading
import uuid

import redis

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.channels.walmart.gateway import WalmartGateway
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.pusher import Pusher, PushPolicy
from infrastructure.push.redis_limits import RedisLimits
from infrastructure.push.store import PushStore
from sandboxes.walmart.seller import WalmartSandbox
from tests.helpers import change, random_sku
from tests.integration.intake_fixtures import wait_until

CHANNEL = "walmart-risk"
HOT_QUEUE = 8  # one call each at 4 a second: 2 s of turns, and few enough to send no feed


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
