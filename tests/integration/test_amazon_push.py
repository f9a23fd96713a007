"""The pusher against the Amazon sandbox: a call's first SKU, the one nearest an oversell, goes as
a patch shown within a second, and the backlog behind it by feed, processed in minutes."""

from __future__ import annotations

import uuid

import redis

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.channels.amazon.gateway import AmazonGateway
from infrastructure.channels.amazon.lwa import LwaCredentials
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.pusher import Pusher, PushPolicy
from infrastructure.push.redis_limits import RedisLimits
from infrastructure.push.store import PushStore
from sandboxes.amazon.seller import AmazonSandbox
from tests.helpers import change, random_sku
from tests.integration.intake_fixtures import wait_until

CHANNEL = "amazon-risk"


def gateway_of(sandbox: AmazonSandbox, url: str, gate: ChannelGate) -> AmazonGateway:
    seller, marketplace = sandbox.seller_id, sandbox.marketplace_id
    credentials, token_url = LwaCredentials(*sandbox.credentials), f"{url}/auth/o2/token"
    options = {"channel_id": CHANNEL, "timeout": 2.0, "feed_poll_interval": 0.05}
    return AmazonGateway(
        url, seller, marketplace, credentials, token_url=token_url, gate=gate, **options
    )


def test_a_sku_at_risk_is_patched_before_a_backlog_recorded_ahead_of_it_goes_by_feed(
    scratch_ledger, scratch_database, redis_url
):
    backlog, risky = [random_sku() for _ in range(30)], random_sku()
    sandbox = AmazonSandbox(apply_delay=0.05, feed_delay=3.0)
    for sku in [*backlog, risky]:
        sandbox.add_listing(sku, 0)
    # The backlog first in the ledger; the SKU at risk (1 left, at the buffer) last.
    scratch_ledger.record_batch([change(ChangeKind.RECEIPT, sku, 50) for sku in backlog])
    scratch_ledger.record(change(ChangeKind.RECEIPT, risky, 1))
    client = redis.Redis.from_url(redis_url)
    store = PushStore(scratch_database)
    rules = (ChannelRule(CHANNEL),)
    gate = ChannelGate(RedisLimits(client), CHANNEL, GatePolicy(rate=5), uuid.uuid4().hex)
    try:
        with (
            AvailabilityRunner(eventsourcing_env(scratch_database), rules) as runner,
            sandbox.server() as server,
            gateway_of(sandbox, server.url, gate) as gateway,
        ):
            assert runner.wait(scratch_ledger.recorder.max_notification_id(), timeout=10)
            policy = PushPolicy(batch_window=0.0, buffer=1, call_timeout=2.0)
            assert Pusher(gateway, store, gate, policy).drain() == 1
            wait_until(lambda: sandbox.stock(risky) == 1, timeout=1.5)
            assert {sandbox.stock(sku) for sku in backlog} == {0}  # the feed still processes
            assert sandbox.log.count("patchListingsItem") == 1
            assert sandbox.log.count("createFeed") == 1
            wait_until(lambda: {sandbox.stock(sku) for sku in backlog} == {50}, timeout=10)
    finally:
        store.close()
        client.close()
        sandbox.close()
