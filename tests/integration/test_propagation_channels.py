"""The propagation scenarios against the Shopify, Amazon, Walmart and eBay sandboxes
(WooCommerce's are in test_propagation.py): a hot SKU's 1,000 sales coalesce into few calls and
end exact, a channel down during a burst of changes converges once back, with no dead letters,
and two worker processes pushing to the channel never exceed its configured rate in any one
second."""

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest

from application.ledger_queries import LedgerQueries
from domain.allocation import ChannelRule, allocate
from domain.stock import ChangeKind
from infrastructure.channels.amazon.gateway import AmazonGateway
from infrastructure.channels.amazon.lwa import LwaCredentials
from infrastructure.channels.ebay.gateway import EbayGateway
from infrastructure.channels.ebay.revisions import RevisionBudget
from infrastructure.channels.gateway import ChannelGateway, Gate
from infrastructure.channels.shopify.gateway import ShopifyGateway
from infrastructure.channels.walmart.gateway import WalmartGateway
from infrastructure.config import PushConfig
from interfaces.composition import running_propagation
from sandboxes.amazon.seller import AmazonSandbox
from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import CallLog, Faults, SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.walmart.seller import WalmartSandbox
from tests.helpers import change, random_sku
from tests.integration.propagation_fixtures import eventually, pushed_by_two_workers

K = ChangeKind
CHANNEL = "shop"
RULES = (ChannelRule(CHANNEL, safety_buffer=1),)


@dataclass
class Shop:
    """One sandbox store, as these scenarios use it."""

    gateway: Callable[[Gate], ChannelGateway]  # built behind the gate its pusher is given
    list: Callable[[str], None]  # list a SKU at 0
    stock: Callable[[str], int | None]
    faults: Faults
    log: CallLog
    writes: str  # the call log's name of a write
    # Every operation that writes (Amazon: a patch, or a feed's document and the feed).
    all_writes: tuple[str, ...]
    settings: dict[str, object]  # the channel's table in a configuration file
    # SKUs changing together in the rate scenario: Amazon patches one a call once its feed is
    # spent (one feed per two minutes at most), so it takes fewer to end within ~30 s.
    skus: int


@contextmanager
def shopify() -> Iterator[Shop]:
    sandbox = ShopifySandbox("shpat_prop", "shpss_prop")
    with SandboxServer(sandbox.app) as server:
        yield Shop(
            lambda gate: ShopifyGateway(
                server.url,
                "shpat_prop",
                sandbox.location_id,
                channel_id=CHANNEL,
                timeout=1.0,
                gate=gate,
            ),
            lambda sku: sandbox.set_stock(sku, 0),
            sandbox.stock,
            sandbox.faults,
            sandbox.calls,
            "graphql",
            ("graphql",),
            {
                "kind": "shopify",
                "api_base_url": server.url,
                "webhook_secrets": ["shpss_prop"],
                "access_token": "shpat_prop",
                "location_id": sandbox.location_id,
            },
            40,
        )
    sandbox.close()


@contextmanager
def amazon() -> Iterator[Shop]:
    sandbox = AmazonSandbox(apply_delay=0.02, feed_delay=0.05)
    client_id, client_secret, refresh_token = sandbox.credentials
    with sandbox.server() as server:
        yield Shop(
            lambda gate: AmazonGateway(
                server.url,
                sandbox.seller_id,
                sandbox.marketplace_id,
                LwaCredentials(client_id, client_secret, refresh_token),
                token_url=f"{server.url}/auth/o2/token",
                channel_id=CHANNEL,
                timeout=1.0,
                feed_poll_interval=0.05,
                gate=gate,
            ),
            lambda sku: sandbox.add_listing(sku, 0),
            sandbox.stock,
            sandbox.faults,
            sandbox.log,
            "patchListingsItem",
            ("patchListingsItem", "createFeedDocument", "createFeed"),
            {
                "kind": "amazon",
                "api_base_url": server.url,
                "seller_id": sandbox.seller_id,
                "marketplace_id": sandbox.marketplace_id,
                "lwa_client_id": client_id,
                "lwa_client_secret": client_secret,
                "lwa_refresh_token": refresh_token,
                "lwa_token_url": f"{server.url}/auth/o2/token",
                "feed_poll_seconds": 0.05,
            },
            30,
        )
    sandbox.close()


@contextmanager
def walmart() -> Iterator[Shop]:
    sandbox = WalmartSandbox(feed_delay=0.05)
    client_id, client_secret = sandbox.credentials
    with sandbox.server() as server:
        yield Shop(
            lambda gate: WalmartGateway(
                server.url,
                client_id,
                client_secret,
                channel_id=CHANNEL,
                feed_poll_interval=0.05,
                timeout=1.0,
                gate=gate,
            ),
            lambda sku: sandbox.add_item(sku, 0),
            sandbox.stock,
            sandbox.faults,
            sandbox.log,
            "inventory.put",
            ("inventory.put", "feeds.post"),
            {**sandbox.channel_settings(server.url), "feed_poll_seconds": 0.05},
            30,
        )
    sandbox.close()


@contextmanager
def ebay() -> Iterator[Shop]:
    sandbox = EbaySandbox()
    # In process, pushes may spend a listing's revisions faster than eBay's pace allows (the
    # hot SKU's 1,000 sales end exact); the workers' processes keep the default budget.
    budget = RevisionBudget(burst=240)
    with SandboxServer(sandbox.app) as server:
        yield Shop(
            lambda gate: EbayGateway(
                server.url,
                sandbox.client_id,
                sandbox.client_secret,
                sandbox.refresh_token,
                channel_id=CHANNEL,
                timeout=1.0,
                gate=gate,
                budget=budget,
            ),
            lambda sku: sandbox.add_item(sku, 0),
            lambda sku: sandbox.shown(sku) if sku in sandbox.items else None,
            sandbox.faults,
            sandbox.log,
            "inventory.bulk_update",
            ("inventory.bulk_update",),
            {
                "kind": "ebay",
                "api_base_url": server.url,
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
                "refresh_token": sandbox.refresh_token,
            },
            30,
        )
    sandbox.close()


SHOPS = {"shopify": shopify, "amazon": amazon, "walmart": walmart, "ebay": ebay}


@pytest.fixture(params=sorted(SHOPS))
def shop(request):
    with SHOPS[request.param]() as shop:
        yield shop


def propagating(scratch_database, redis_url, shop, **push):
    gateways = {CHANNEL: (shop.gateway, PushConfig(**push))}
    return running_propagation(
        scratch_database, redis_url, gateways, RULES, namespace=f"test-{random_sku()}"
    )


def test_a_hot_skus_thousand_sales_end_exact_in_few_calls(
    scratch_ledger, scratch_database, redis_url, shop
):
    sku = random_sku()
    shop.list(sku)
    scratch_ledger.record(change(K.RECEIPT, sku, 1500))
    with propagating(scratch_database, redis_url, shop, rate_per_second=4, batch_window_seconds=0):
        eventually(lambda: shop.stock(sku) == 1499, 15, "the receipt reaches the channel")
        before, since = shop.log.count(shop.writes), time.monotonic()
        for _ in range(100):  # 1,000 sales in 10 s
            scratch_ledger.record_batch([change(K.SALE, sku, 1) for _ in range(10)])
            time.sleep(0.1)
        eventually(lambda: shop.stock(sku) == 499, 20, "the last sale reaches the channel")
        calls = shop.log.count(shop.writes) - before
    assert calls <= 50
    # From here on: Shopify's SKU lookup before the first push is not metered by our limiter.
    assert shop.log.busiest_second(shop.writes, since=since) <= 4


def test_a_channel_down_during_a_burst_converges_once_back_with_no_dead_letters(
    scratch_ledger, scratch_database, redis_url, shop
):
    rng = random.Random(9)
    skus = [random_sku() for _ in range(10)]
    for sku in skus:
        shop.list(sku)
    scratch_ledger.record_batch([change(K.RECEIPT, sku, 300) for sku in skus])
    push = {
        "rate_per_second": 4,
        "batch_window_seconds": 0,
        "cooldown_seconds": 0.2,
        "max_cooldown_seconds": 1.0,
    }
    with propagating(scratch_database, redis_url, shop, **push):
        eventually(lambda: all(shop.stock(s) == 299 for s in skus), 20, "the receipts")
        shop.faults.outage = True
        for _ in range(50):
            kinds = [K.SALE, K.SALE, K.RETURN]
            scratch_ledger.record_batch(
                [change(rng.choice(kinds), rng.choice(skus), rng.randint(1, 3)) for _ in range(20)]
            )
        time.sleep(1.5)
        assert all(shop.stock(s) == 299 for s in skus)  # nothing got through
        shop.faults.outage = False

        def converged():
            return all(
                shop.stock(s)
                == allocate(LedgerQueries(scratch_ledger).get_item(s).locations, RULES)[
                    CHANNEL
                ].available_to_sell
                for s in skus
            )

        eventually(converged, 30, "every SKU converges once the channel is back")
    with psycopg.connect(scratch_database) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)


@pytest.mark.parametrize("shop", ["amazon", "ebay", "shopify", "walmart"], indirect=True)
def test_two_worker_processes_never_exceed_the_channels_rate_limit(
    scratch_ledger, scratch_database, redis_url, shop, tmp_path
):
    skus = [random_sku() for _ in range(shop.skus)]
    for sku in skus:
        shop.list(sku)
    channel = {"id": CHANNEL, **shop.settings}
    pushed_by_two_workers(
        scratch_ledger, scratch_database, redis_url, tmp_path, channel, skus, shop.stock
    )
    busiest = {op: shop.log.busiest_second(op) for op in shop.all_writes}
    figures = ", ".join(
        f"{shop.log.count(op)} {op} (at most {most} in any second)" for op, most in busiest.items()
    )
    print(f"\ntwo workers, {len(skus)} SKUs changing for 6 s: {figures}; limit 3")
    # The channel refused no call for its own limits (SP-API: each operation's rate).
    assert shop.log.count(status=429) == 0
    assert all(most <= 3 for most in busiest.values()), busiest
