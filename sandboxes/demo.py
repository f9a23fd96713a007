"""The demo a newcomer gets from `make run` with no configuration: Shopify, WooCommerce, Amazon,
Walmart and eBay sandbox stores listing the same few products, whose shoppers buy at a modest
rate.
Their orders arrive as signed webhooks, change the ledger, and every store's quantity follows;
the logs and the API show it all.

The sandboxes are the ones the tests use: real HTTP servers speaking each channel's API."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from domain.stock import ChangeKind, StockChange
from infrastructure.config import Config
from sandboxes.amazon.orders import OutOfStock as AmazonOutOfStock
from sandboxes.amazon.seller import AmazonSandbox
from sandboxes.amazon.sns import SnsTopic
from sandboxes.ebay.seller import EbaySandbox
from sandboxes.ebay.seller import OutOfStock as EbayOutOfStock
from sandboxes.server import SandboxServer
from sandboxes.shopify.stock import OutOfStock as ShopifyOutOfStock
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.walmart.orders import OutOfStock as WalmartOutOfStock
from sandboxes.walmart.seller import WalmartSandbox
from sandboxes.woocommerce.orders import OutOfStock as WooOutOfStock
from sandboxes.woocommerce.store import WooCommerceSandbox

log = logging.getLogger("invsync.demo")

PRODUCTS = {"MUG-BLUE": 40, "TEE-M": 25, "CAP-RED": 15, "SOCKS-3P": 60, "POSTER-A2": 10}
RESTOCK_BELOW, RESTOCK_UNITS = 5, 30
# Demo credentials: the sandboxes run on loopback only, for this process.
SHOPIFY_TOKEN, SHOPIFY_SECRET = "shpat_demo", "shpss_demo"
WOO_KEY, WOO_SECRET, WOO_WEBHOOK_SECRET = "ck_demo", "cs_demo", "wc_demo"
AMAZON_TOPIC = "arn:aws:sns:us-east-1:123456789012:invsync-demo"


class Store(Protocol):
    def buy(self, sku: str, quantity: int = 1) -> object: ...

    def stock(self, sku: str) -> int | None: ...


@dataclass
class DemoChannel:
    id: str
    store: Store
    settings: dict[str, Any]


@contextmanager
def demo_channels(port: int) -> Iterator[tuple[Config, list[DemoChannel]]]:
    """Start the sandbox stores; their webhooks go to invsync on `port`."""
    webhooks = f"http://127.0.0.1:{port}/webhooks"
    with ExitStack() as stack:
        shopify = ShopifySandbox(
            SHOPIFY_TOKEN,
            SHOPIFY_SECRET,
            webhook_url=f"{webhooks}/shopify-demo",
            retry_delays=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0),  # compressed for a demo
        )
        stack.callback(shopify.close)
        woo = WooCommerceSandbox(WOO_KEY, WOO_SECRET, site_url="http://woo.demo/")
        stack.callback(woo.close)
        for event in ("order.created", "order.updated", "order.deleted", "order.restored"):
            woo.webhooks.add(event, f"{webhooks}/woo-demo", WOO_WEBHOOK_SECRET)
        topic = SnsTopic(AMAZON_TOPIC, f"{webhooks}/amazon-demo", confirmed=True)
        amazon = AmazonSandbox(topic=topic, apply_delay=0.1, feed_delay=0.2)
        stack.callback(amazon.close)
        walmart = WalmartSandbox(webhook_url=f"{webhooks}/walmart-demo", feed_delay=2.0)
        stack.callback(walmart.close)
        ebay = EbaySandbox()
        stack.callback(ebay.close)
        for sku in PRODUCTS:
            shopify.set_stock(sku, 0)
            woo.add_product(sku, 0)
            amazon.add_listing(sku, 0)
            walmart.add_item(sku, 0)
            ebay.add_item(sku, 0)
        shopify_url = stack.enter_context(SandboxServer(shopify.app)).url
        woo_url = stack.enter_context(SandboxServer(woo.app)).url
        amazon_url = stack.enter_context(amazon.server()).url
        walmart_url = stack.enter_context(walmart.server()).url
        ebay_url = stack.enter_context(SandboxServer(ebay.app)).url
        channels = [
            DemoChannel(
                "shopify-demo",
                shopify,
                {
                    "kind": "shopify",
                    "api_base_url": shopify_url,
                    "webhook_secrets": [SHOPIFY_SECRET],
                    "access_token": SHOPIFY_TOKEN,
                    "location_id": shopify.location_id,
                    "locations": {str(shopify.location_id): "main"},
                    "rules": {"safety_buffer": 1},
                    "push": {"rate_per_second": 4, "batch_window_seconds": 1},
                },
            ),
            DemoChannel(
                "woo-demo",
                woo,
                {
                    "kind": "woocommerce",
                    "api_base_url": woo_url,
                    "webhook_secrets": [WOO_WEBHOOK_SECRET],
                    "consumer_key": WOO_KEY,
                    "consumer_secret": WOO_SECRET,
                    "rules": {"share_percent": 50},
                    "push": {"rate_per_second": 4, "batch_window_seconds": 1},
                },
            ),
            DemoChannel(
                "amazon-demo",
                amazon,
                {
                    **amazon.channel_settings(amazon_url),
                    "sns_topic_arns": [AMAZON_TOPIC],
                    "sns_origins": [amazon_url],
                    "feed_poll_seconds": 0.5,
                    "rules": {"share_percent": 50, "safety_buffer": 2},
                    "push": {"rate_per_second": 4, "batch_window_seconds": 1},
                },
            ),
            DemoChannel(
                "walmart-demo",
                walmart,
                {
                    **walmart.channel_settings(walmart_url),
                    "feed_poll_seconds": 1,
                    "acknowledge_orders": True,
                    "rules": {"share_percent": 50, "safety_buffer": 1},
                    "push": {"rate_per_second": 4, "batch_window_seconds": 1},
                },
            ),
            DemoChannel("ebay-demo", ebay, ebay_settings(ebay, ebay_url, webhooks)),
        ]
        config = Config.model_validate({"channels": [{"id": c.id, **c.settings} for c in channels]})
        for channel in channels:
            log.info("demo store %s: %s", channel.id, channel.settings["api_base_url"])
        yield config, channels


def ebay_settings(ebay: EbaySandbox, url: str, webhooks: str) -> dict[str, Any]:
    """eBay's orders come by polling its Fulfillment API: every 10 s in the demo."""
    return {
        "kind": "ebay",
        "api_base_url": url,
        "client_id": ebay.client_id,
        "client_secret": ebay.client_secret,
        "refresh_token": ebay.refresh_token,
        "verification_token": "demo_verification_token_32_chars_long",
        "notification_endpoint": f"{webhooks}/ebay-demo",
        "rules": {"share_percent": 50},
        "push": {"rate_per_second": 4, "batch_window_seconds": 1},
        "reconcile": {"orders_every_seconds": 10, "orders_overlap_seconds": 30},
    }


def stock_the_warehouse(ledger: Ledger) -> None:
    """The demo's opening stock, once (its business keys make a restart change nothing)."""
    ledger.record_batch(
        [
            receipt(sku, units, f"demo:opening:{sku}", "opening stock")
            for sku, units in PRODUCTS.items()
        ]
    )


def receipt(sku: str, units: int, business_key: str, reason: str) -> StockChange:
    return StockChange(
        kind=ChangeKind.RECEIPT,
        sku=sku,
        location="main",
        quantity=units,
        business_key=business_key,
        source="demo",
        occurred_at=datetime.now(UTC),
        reference=f"demo://{reason.replace(' ', '-')}",
        reason=reason,
    )


class Shoppers:
    """Every `every` seconds, a shopper buys one or two of something on the next store of a
    round that visits every store once in a random order, so each store sells within a few
    rounds (a draw at random each time could leave a store without a sale for a minute); the
    warehouse restocks what runs low, so the demo goes on."""

    def __init__(
        self, channels: Sequence[DemoChannel], ledger: Ledger, ready_url: str, every: float = 2.0
    ) -> None:
        self._channels, self._ledger, self._ready_url = channels, ledger, ready_url
        self._queries = LedgerQueries(ledger)
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-shoppers", daemon=True)
        self._random = random.Random()
        self._round: list[DemoChannel] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        self._wait_for_invsync()
        while not self._stop.wait(self._every):
            try:
                self._shop()
                self._restock()
            except Exception:  # a demo shopper never takes the service down
                log.warning("demo shopper stumbled", exc_info=True)

    def _wait_for_invsync(self) -> None:
        while not self._stop.wait(0.5):
            try:
                if httpx.get(self._ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                continue

    def _shop(self) -> None:
        channel = self._next_store()
        listed = [sku for sku in PRODUCTS if (channel.store.stock(sku) or 0) > 0]
        if not listed:
            return
        sku, quantity = self._random.choice(listed), self._random.choice((1, 1, 2))
        try:
            channel.store.buy(sku, quantity)
        except (
            ShopifyOutOfStock,
            WooOutOfStock,
            AmazonOutOfStock,
            WalmartOutOfStock,
            EbayOutOfStock,
        ):
            return
        log.info("a shopper on %s bought %d x %s", channel.id, quantity, sku)

    def _next_store(self) -> DemoChannel:
        if not self._round:
            self._round = self._random.sample(self._channels, len(self._channels))
        return self._round.pop()

    def _restock(self) -> None:
        for sku in PRODUCTS:
            available = self._queries.get_item(sku).totals.available
            if available < RESTOCK_BELOW:
                key = f"demo:restock:{sku}:{datetime.now(UTC).isoformat()}"
                self._ledger.record(receipt(sku, RESTOCK_UNITS, key, "restock"))
                log.info("the warehouse received %d x %s", RESTOCK_UNITS, sku)
