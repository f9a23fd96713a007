"""A WooCommerce push is a read then a write (its compare-and-set), both on the turns the pusher
takes together for them: the write never waits a turn after its read, and the store still
counts no more than its rate in any one second (the sandbox's own call log, over real HTTP)."""

import threading
import time
import uuid
from functools import partial

import pytest
import redis

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.channels.gateway import Push, PushResult, PushStatus, Throttled
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.config import PushConfig
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.redis_limits import RedisLimits
from interfaces.composition import running_propagation
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.helpers import change, random_sku
from tests.integration.propagation_fixtures import eventually

CHANNEL, KEY, SECRET, RATE = "woo", "ck_turns", "cs_turns", 10


@pytest.fixture
def sandbox():
    sandbox = WooCommerceSandbox(KEY, SECRET, auto_deliver=False)
    yield sandbox
    sandbox.close()


def test_a_push_reads_then_writes_on_the_two_turns_taken_for_it_with_none_between(
    sandbox, redis_url
):
    # At 2 a second two at a time, turns are 1.25 s apart; a gateway that waits no time for a
    # turn of its own raises Throttled for any call that is not on the two taken for it.
    policy = GatePolicy(rate=2, calls_per_push=2)
    sandbox.add_product("WOO-1", 5)
    with redis.Redis.from_url(redis_url) as client, SandboxServer(sandbox.app) as server:
        gate = ChannelGate(RedisLimits(client), CHANNEL, policy, uuid.uuid4().hex)
        gateway = WooCommerceGateway(server.url, KEY, SECRET, channel_id=CHANNEL, gate=gate)
        gateway.turn_wait = 0.0
        assert gate.take_call(1.0, calls=2)
        gateway.turn_taken(2)
        pushed = gateway.push([Push("WOO-1", 4, version=2, acknowledged=5)])
        gateway.turn_taken(0)
        with pytest.raises(Throttled):  # both turns spent: one more call has to wait for one
            gateway.push([Push("WOO-1", 3, version=3, acknowledged=4)])
        gateway.close()
    assert pushed == [PushResult("WOO-1", PushStatus.APPLIED, 4)]
    assert [operation for _, operation, _ in sandbox.log.entries()] == [
        "products.list",
        "products.batch",
    ]


def test_a_burst_of_pushes_and_reconciliations_reads_never_exceed_the_rate_in_any_second(
    scratch_ledger, scratch_database, redis_url, sandbox
):
    skus = [random_sku() for _ in range(12)]
    for sku in skus:
        sandbox.add_product(sku, 0)
    namespace = f"test-{random_sku()}"
    policy = GatePolicy(rate=RATE, calls_per_push=2)
    with redis.Redis.from_url(redis_url) as client, SandboxServer(sandbox.app) as server:
        woo = partial(WooCommerceGateway, server.url, KEY, SECRET, channel_id=CHANNEL)
        push = PushConfig(rate_per_second=RATE, calls_per_push=2, batch_window_seconds=0)
        gateways = {CHANNEL: (lambda gate: woo(gate=gate), push)}
        reads = ChannelGate(RedisLimits(client), CHANNEL, policy, namespace, yields=True)
        reader, stop = woo(gate=reads), threading.Event()

        def read_all_along() -> None:  # reconciliation's reads, yielding to the pushes
            while not stop.is_set():
                reader.read(skus[:3])

        rules = (ChannelRule(CHANNEL),)
        with running_propagation(scratch_database, redis_url, gateways, rules, namespace=namespace):
            reading = threading.Thread(target=read_all_along)
            reading.start()
            for n in range(60):  # 3 s of receipts, each SKU's pushes acknowledged after its first
                scratch_ledger.record(change(ChangeKind.RECEIPT, skus[n % len(skus)], 1))
                time.sleep(0.05)
            expected = dict.fromkeys(skus, 5)
            eventually(lambda: {s: sandbox.stock(s) for s in skus} == expected, 20, "all shown")
            stop.set()
            reading.join()
        reader.close()
    log = sandbox.log
    assert log.count("products.batch") >= 5  # pushes in a row, each a read then its write
    assert log.busiest_second() <= RATE
    assert log.count(status=429) == 0
