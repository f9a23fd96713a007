"""Propagation end to end against the WooCommerce sandbox over real HTTP: coalescing on a hot
SKU, a long outage drained in order without dead letters, and a rate limit shared by two
worker processes."""

import random
import time
from functools import partial

import psycopg
import pytest

from application.ledger_queries import LedgerQueries
from domain.allocation import ChannelRule, allocate
from domain.stock import ChangeKind
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.config import PushConfig
from interfaces.composition import running_propagation
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.helpers import change, random_sku
from tests.integration.propagation_fixtures import eventually, pushed_by_two_workers

K = ChangeKind
CHANNEL, KEY, SECRET = "woo", "ck_push", "cs_push"
RULES = (ChannelRule(CHANNEL, safety_buffer=1),)


@pytest.fixture
def store():
    sandbox = WooCommerceSandbox(KEY, SECRET, auto_deliver=False)
    with SandboxServer(sandbox.app) as server:
        yield sandbox, server.url
    sandbox.close()


def propagating(scratch_database, redis_url, gateways, rules):
    namespace = f"test-{random_sku()}"
    return running_propagation(scratch_database, redis_url, gateways, rules, namespace=namespace)


def woo(url, **push):
    gateway = partial(WooCommerceGateway, url, KEY, SECRET, channel_id=CHANNEL, timeout=1.0)
    return {CHANNEL: (lambda gate: gateway(gate=gate), PushConfig(**push))}


def expected(scratch_ledger, sku):
    return allocate(LedgerQueries(scratch_ledger).get_item(sku).locations, RULES)[
        CHANNEL
    ].available_to_sell


def test_a_thousand_sales_on_a_hot_sku_in_ten_seconds_end_exact_in_few_calls(
    scratch_ledger, scratch_database, redis_url, store
):
    sandbox, url = store
    sku = random_sku()
    sandbox.add_product(sku, 0)
    scratch_ledger.record(change(K.RECEIPT, sku, 1500))
    with propagating(scratch_database, redis_url, woo(url, rate_per_second=4), RULES):
        eventually(lambda: sandbox.stock(sku) == 1499, 10, "the receipt reaches the channel")
        before = sandbox.log.count("products.batch")
        for _ in range(100):  # 1,000 sales in 10 s
            scratch_ledger.record_batch([change(K.SALE, sku, 1) for _ in range(10)])
            time.sleep(0.1)
        eventually(lambda: sandbox.stock(sku) == 499, 15, "the last sale reaches the channel")
        calls = sandbox.log.count("products.batch") - before
    print(f"\n1,000 sales on one SKU: {calls} batch calls to WooCommerce")
    assert calls <= 50
    assert sandbox.log.busiest_second("products.batch") <= 4


def test_a_channel_down_during_2000_changes_converges_exactly_with_no_dead_letters(
    scratch_ledger, scratch_database, redis_url, store
):
    sandbox, url = store
    rng = random.Random(5)
    skus = [random_sku() for _ in range(20)]
    for sku in skus:
        sandbox.add_product(sku, 0)
    scratch_ledger.record_batch([change(K.RECEIPT, sku, 300) for sku in skus])
    push = {
        "rate_per_second": 10,
        "batch_window_seconds": 0,
        "cooldown_seconds": 0.2,
        "max_cooldown_seconds": 1.0,
    }
    with propagating(scratch_database, redis_url, woo(url, **push), RULES) as propagation:
        eventually(lambda: all(sandbox.stock(s) == 299 for s in skus), 10, "the receipts")
        sandbox.faults.outage = True  # the channel is down for the whole burst
        for _ in range(100):
            kinds = [K.SALE, K.SALE, K.RETURN]
            scratch_ledger.record_batch(
                [change(rng.choice(kinds), rng.choice(skus), rng.randint(1, 3)) for _ in range(20)]
            )
        time.sleep(2.0)
        refused = sandbox.log.count(status=503)
        # The breaker spaces the attempts out (0.2 s doubling to 1 s): a few, not a flood.
        assert 3 <= refused <= 15
        assert all(sandbox.stock(s) == 299 for s in skus)  # nothing got through
        assert propagation.status(CHANNEL)["pending"] == len(skus)
        sandbox.faults.outage = False
        eventually(
            lambda: all(sandbox.stock(s) == expected(scratch_ledger, s) for s in skus),
            20,
            "every SKU converges once the channel is back",
        )
        # The acknowledgement is recorded just after the store answers the call.
        eventually(lambda: propagation.status(CHANNEL)["pending"] == 0, 5, "nothing pending")
    with psycopg.connect(scratch_database) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)


def test_two_worker_processes_never_exceed_the_channels_rate_limit(
    scratch_ledger, scratch_database, redis_url, store, tmp_path
):
    sandbox, url = store
    skus = [random_sku() for _ in range(40)]
    for sku in skus:
        sandbox.add_product(sku, 0)
    channel = {
        "id": CHANNEL,
        "kind": "woocommerce",
        "webhook_secrets": ["s"],
        "api_base_url": url,
        "consumer_key": KEY,
        "consumer_secret": SECRET,
    }
    pushed_by_two_workers(
        scratch_ledger, scratch_database, redis_url, tmp_path, channel, skus, sandbox.stock
    )
    calls, busiest = sandbox.log.count(), sandbox.log.busiest_second()
    print(f"\ntwo workers, 40 SKUs changing for 6 s: {calls} calls, at most {busiest} a second")
    assert busiest <= 3  # lookups and batches alike
