"""eBay's revision budget through the pusher: a push the budget holds rests as a submission
(no call to eBay), and once its hold is up the SKU goes again with what is due then, a move to
zero included."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from infrastructure.channels.ebay.gateway import HOLD_SECONDS, EbayGateway
from infrastructure.channels.ebay.revisions import RevisionBudget
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.pusher import Pusher, PushPolicy
from infrastructure.push.redis_limits import RedisLimits
from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import SandboxServer
from tests.helpers import change, random_sku
from tests.integration.test_push import CHANNEL, K, client, runner, settle, store

__all__ = ["client", "runner", "store"]  # the fixtures these scenarios share with test_push

# One revision a day before pacing, the last two for a move to zero.
BUDGET = RevisionBudget(per_day=12, zero_reserve=2, down_reserve=4, burst=1)


def test_a_held_raise_rests_without_a_call_and_a_move_to_zero_goes_once_it_is_up(
    runner, scratch_ledger, store, client
):
    seller, sku = EbaySandbox(), random_sku("ebay-held")
    seller.add_item(sku, 0)
    now = [datetime(2026, 12, 2, 8, 0, tzinfo=UTC)]  # eBay's day has just begun
    with SandboxServer(seller.app) as server:
        gate = ChannelGate(RedisLimits(client), CHANNEL, GatePolicy(rate=50), uuid.uuid4().hex)
        gateway = EbayGateway(
            server.url,
            seller.client_id,
            seller.client_secret,
            seller.refresh_token,
            channel_id=CHANNEL,
            gate=gate,
            budget=BUDGET,
            clock=lambda: now[0],
        )
        policy = PushPolicy(batch_window=0.0, call_timeout=1.0, sku_interval=0.0, settle_every=0.0)
        pusher = Pusher(gateway, store, gate, policy, hot=lambda: {sku})

        scratch_ledger.record(change(K.RECEIPT, sku, 10))
        settle(runner, scratch_ledger)
        pusher.drain()
        assert seller.stock(sku) == 10  # the day's one unpaced revision

        scratch_ledger.record(change(K.RECEIPT, sku, 5))
        settle(runner, scratch_ledger)
        pusher.drain()
        [held] = store.submissions(CHANNEL)
        assert [p.quantity for p in held.pending] == [15]
        assert seller.stock(sku) == 10
        assert seller.log.count("inventory.bulk_update") == 1  # the hold cost no call

        scratch_ledger.record(change(K.SALE, sku, 15))  # sold out meanwhile
        settle(runner, scratch_ledger)
        pusher.drain()
        assert seller.stock(sku) == 10  # still resting

        now[0] += timedelta(seconds=HOLD_SECONDS)
        pusher.policy = replace(pusher.policy, linger=0.0)
        pusher.drain()
        assert store.submissions(CHANNEL) == []
        assert seller.stock(sku) == 0
        assert seller.log.count("inventory.bulk_update") == 2
        gateway.close()
    seller.close()


def test_new_skus_beside_a_ready_push_are_looked_up_two_a_call_and_all_go_within_one_drain(
    runner, scratch_ledger, store, client
):
    seller, known = EbaySandbox(), random_sku("ebay-known")
    new = [random_sku(f"ebay-new{n}") for n in range(5)]
    for sku in (known, *new):
        seller.add_item(sku, 0)
    with SandboxServer(seller.app) as server:
        gate = ChannelGate(RedisLimits(client), CHANNEL, GatePolicy(rate=50), uuid.uuid4().hex)
        gateway = EbayGateway(
            server.url, seller.client_id, seller.client_secret, seller.refresh_token,
            channel_id=CHANNEL, gate=gate,
        )  # fmt: skip
        policy = PushPolicy(batch_window=0.0, call_timeout=1.0, sku_interval=0.0, settle_every=0.0)
        pusher = Pusher(gateway, store, gate, policy, hot=lambda: {known})
        scratch_ledger.record(change(K.RECEIPT, known, 10))
        settle(runner, scratch_ledger)
        pusher.drain()  # the known SKU's offers looked up: nothing else was ready
        assert seller.log.count("inventory.offers") == 1

        scratch_ledger.record_batch([change(K.RECEIPT, sku, 4) for sku in (known, *new)])
        settle(runner, scratch_ledger)
        pusher.drain()
        assert [seller.stock(sku) for sku in (known, *new)] == [14, 4, 4, 4, 4, 4]
        operations = [op for _, op, _ in seller.log.entries() if op.startswith("inventory.")]
        second = operations[operations.index("inventory.bulk_update") + 1 :]
        # The known SKU went at once beside two lookups; the other new SKUs on the next calls.
        assert second[:3] == ["inventory.offers", "inventory.offers", "inventory.bulk_update"]
        assert second.count("inventory.offers") == 5
        assert second.count("inventory.bulk_update") >= 2
        gateway.close()
    seller.close()
