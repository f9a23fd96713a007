"""A Shopify shop's orders its webhooks missed enter intake by the next poll, once: the sandbox
shop loses webhooks on demand and lists its orders through the GraphQL `orders` connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infrastructure.channels.gateway import UNGATED
from infrastructure.channels.kinds import api_for
from infrastructure.channels.shopify.order_listing import list_orders
from sandboxes.server import SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.webhooks import Message
from tests.helpers import random_sku
from tests.integration.intake_fixtures import RunningIntake, running_intake, wait_until
from tests.integration.orders_poll_fixtures import (
    channel_id,
    config_of,
    found_once,
    levels,
    poll,
    settled,
    stocked,
)

TOKEN, SECRET = "shpat_poll", "shpss_poll"


@dataclass
class Shop:
    shop: ShopifySandbox
    running: RunningIntake
    channel: str

    def lost_sale(self, sku: str, quantity: int) -> tuple[int, Message]:
        """A shopper's order whose `orders/create` is lost; the order's id and the webhook as
        Shopify signed it."""
        self.shop.webhooks.lose(1)
        order_id = self.shop.buy(sku, quantity)
        assert self.shop.webhooks.wait_idle()
        [lost] = [a for a in self.shop.webhooks.attempts if a.lost and a.topic == "orders/create"]
        return order_id, lost.message


@contextmanager
def shop(ledger, database_url, redis_url) -> Iterator[Shop]:
    sandbox = ShopifySandbox(TOKEN, SECRET, retry_delays=(0.1, 0.2))
    channel = channel_id("shopify")
    with SandboxServer(sandbox.app) as server:
        table = {
            "id": channel,
            "kind": "shopify",
            "api_base_url": server.url,
            "webhook_secrets": [SECRET],
            "access_token": TOKEN,
            "location_id": sandbox.location_id,
        }
        with running_intake(ledger, database_url, redis_url, config_of(table)) as running:
            sandbox.webhooks.url = f"{running.url}/webhooks/{channel}"
            yield Shop(sandbox, running, channel)
    sandbox.close()


def test_a_sale_whose_webhook_is_lost_is_committed_by_the_next_poll_once(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("shop-lost")
    stocked(ledger, sku)
    with shop(ledger, database_url, redis_url) as s:
        s.shop.set_stock(sku, 10)
        s.lost_sale(sku, 3)
        found_once(s.running, s.channel, queries, sku)


def test_a_cancellation_found_by_poll_is_applied(ledger, queries, database_url, redis_url):
    sku = random_sku("shop-cancel")
    stocked(ledger, sku)
    with shop(ledger, database_url, redis_url) as s:
        s.shop.set_stock(sku, 10)
        order_id = s.shop.buy(sku, 2)
        wait_until(lambda: levels(queries, sku) == (10, 2))
        url = s.running.intake.router.channel(s.channel).api_base_url
        httpx.post(f"{url}/_sandbox/webhooks/lose", json={"count": 1}).raise_for_status()
        httpx.post(f"{url}/_sandbox/orders/{order_id}/cancel").raise_for_status()

        polled = poll(s.running, s.channel)
        wait_until(lambda: levels(queries, sku) == (10, 0))
        assert polled.stored == 1


def test_the_listing_pages_through_every_order_updated_since_oldest_first(
    ledger, database_url, redis_url
):
    sku = random_sku("shop-pages")
    with shop(ledger, database_url, redis_url) as s:
        s.shop.webhooks.url = None  # nobody listens: only the listing is read
        s.shop.set_stock(sku, 100)
        orders = [s.shop.buy(sku) for _ in range(12)]
        table = s.running.intake.router.channel(s.channel)
        gateway = api_for(table, UNGATED)
        now = datetime.now(UTC)
        listed = list(list_orders(table, gateway, now - timedelta(hours=1), now))
        gateway.close()
        assert sorted(int(o.order_id) for o in listed) == orders
        assert [o.modified_at for o in listed] == sorted(o.modified_at for o in listed)
        assert s.shop.fields["orders"] == 3  # pages of 5


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(routes=st.lists(st.sampled_from(["webhook", "poll"]), min_size=1, max_size=5))
def test_an_order_seen_by_webhook_and_poll_in_any_order_any_number_of_times_counts_once(
    ledger, queries, database_url, redis_url, routes
):
    sku = random_sku("shop-both")
    stocked(ledger, sku)
    with shop(ledger, database_url, redis_url) as s:
        s.shop.set_stock(sku, 10)
        _, webhook = s.lost_sale(sku, 3)
        for route in routes:
            if route == "poll":
                poll(s.running, s.channel)
            else:
                httpx.post(
                    f"{s.running.url}/webhooks/{s.channel}",
                    content=webhook.body,
                    headers=dict(webhook.headers),
                ).raise_for_status()
        settled(database_url, s.channel)
        assert levels(queries, sku) == (10, 3)
