"""Propagation end to end against the WooCommerce sandbox over real HTTP: coalescing on a hot
SKU, a long outage drained in order without dead letters, and a rate limit shared by two
worker processes."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from domain.allocation import ChannelRule, allocate
from domain.stock import ChangeKind
from infrastructure.channels.sandbox import SandboxServer
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.channels.woocommerce.sandbox import WooCommerceSandbox
from infrastructure.config import PushConfig
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from interfaces.composition import running_propagation
from tests.helpers import change, random_sku
from tests.integration.propagation_fixtures import eventually

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
    gateway = WooCommerceGateway(url, KEY, SECRET, channel_id=CHANNEL, timeout=1.0)
    return {CHANNEL: (gateway, PushConfig(**push))}


def expected(scratch_ledger, sku):
    return allocate(scratch_ledger.get_item(sku).locations, RULES)[CHANNEL].available_to_sell


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
        assert propagation.status(CHANNEL)["pending"] == 0
    with psycopg.connect(scratch_database) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)


def test_two_worker_processes_never_exceed_the_channels_rate_limit(
    scratch_ledger, scratch_database, redis_url, store, tmp_path
):
    sandbox, url = store
    skus = [random_sku() for _ in range(40)]
    for sku in skus:
        sandbox.add_product(sku, 0)
    config = tmp_path / "invsync.toml"
    config.write_text(
        f'[[channels]]\nid = "{CHANNEL}"\nkind = "woocommerce"\nwebhook_secrets = ["s"]\n'
        f'api_base_url = "{url}"\nconsumer_key = "{KEY}"\nconsumer_secret = "{SECRET}"\n'
        "[channels.rules]\nsafety_buffer = 1\n"
        "[channels.push]\nrate_per_second = 3\nbatch_window_seconds = 0\n"
    )
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": scratch_database,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_QUEUE_NAMESPACE": f"rate-{random_sku()}",
    }
    command = [str(Path(sys.executable).with_name("invsync")), "worker", "--threads", "4"]
    workers = [subprocess.Popen(command, env=env) for _ in range(2)]
    try:
        with AvailabilityRunner(eventsourcing_env(scratch_database), RULES):
            for _ in range(30):  # every SKU changes every 0.2 s for 6 s
                scratch_ledger.record_batch([change(K.RECEIPT, sku, 1) for sku in skus])
                time.sleep(0.2)
            eventually(
                lambda: all(sandbox.stock(s) == 29 for s in skus), 30, "all 40 SKUs reach 29"
            )
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        for worker in workers:
            worker.wait(timeout=30)
    calls = sandbox.log.count("products.batch")
    print(
        f"\ntwo workers, 40 SKUs changing for 6 s: {calls} batch calls, at most "
        f"{sandbox.log.busiest_second('products.batch')} in any second (limit 3)"
    )
    assert sandbox.log.busiest_second("products.batch") <= 3
