"""A WooCommerce store's orders its webhooks missed enter intake by the next poll, once: the
sandbox store loses webhooks on demand and lists its orders as WooCommerce does."""

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
from infrastructure.channels.woocommerce.order_listing import list_orders
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.channels import woocommerce_table
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

KEY, SECRET, HOOK_SECRET = "ck_poll", "cs_poll", "wh-poll"


@dataclass
class Shop:
    store: WooCommerceSandbox
    running: RunningIntake
    channel: str


@contextmanager
def shop(ledger, database_url, redis_url, *, auto_deliver: bool = True) -> Iterator[Shop]:
    store = WooCommerceSandbox(KEY, SECRET, delivery_delay=0.01, auto_deliver=auto_deliver)
    channel = channel_id("woo")
    with SandboxServer(store.app) as server:
        table = woocommerce_table(channel, server.url, KEY, SECRET, HOOK_SECRET)
        with running_intake(ledger, database_url, redis_url, config_of(table)) as running:
            store.webhooks.add("order.updated", f"{running.url}/webhooks/{channel}", HOOK_SECRET)
            yield Shop(store, running, channel)
    store.close()


def test_a_sale_whose_webhook_is_lost_is_committed_by_the_next_poll_once(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("woo-lost")
    stocked(ledger, sku)
    with shop(ledger, database_url, redis_url, auto_deliver=False) as s:
        s.store.add_product(sku, 10)
        s.store.webhooks.lose("order.updated")
        s.store.buy(sku, 3)
        [sent] = s.store.webhooks.deliver_pending()
        assert sent.status is None  # lost on the way
        found_once(s.running, s.channel, queries, sku)


def test_a_cancellation_found_by_poll_is_applied(ledger, queries, database_url, redis_url):
    sku = random_sku("woo-cancel")
    stocked(ledger, sku)
    with shop(ledger, database_url, redis_url) as s:
        s.store.add_product(sku, 10)
        order_id = s.store.buy(sku, 2)
        wait_until(lambda: levels(queries, sku) == (10, 2))
        url = s.running.intake.router.channel(s.channel).api_base_url
        lose = {"topic": "order.updated", "count": 1}
        httpx.post(f"{url}/_sandbox/webhooks/lose", json=lose).raise_for_status()
        httpx.post(f"{url}/_sandbox/orders/{order_id}/cancelled").raise_for_status()

        polled = poll(s.running, s.channel)
        wait_until(lambda: levels(queries, sku) == (10, 0))
        assert polled.stored == 1


def test_the_listing_pages_through_every_order_in_the_window_oldest_first(
    ledger, database_url, redis_url
):
    sku = random_sku("woo-pages")
    with shop(ledger, database_url, redis_url, auto_deliver=False) as s:
        s.store.add_product(sku, 1000)
        orders = [s.store.buy(sku) for _ in range(230)]
        table = s.running.intake.router.channel(s.channel)
        gateway = api_for(table, UNGATED)
        now = datetime.now(UTC)
        listed = list(list_orders(table, gateway, now - timedelta(hours=1), now + timedelta(1)))
        gateway.close()
        assert sorted(int(o.order_id) for o in listed) == orders
        assert [o.modified_at for o in listed] == sorted(o.modified_at for o in listed)
        assert s.store.log.count("orders.list") <= 6  # 3 pages, and some re-read seconds


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(routes=st.lists(st.sampled_from(["webhook", "poll"]), min_size=1, max_size=5))
def test_an_order_seen_by_webhook_and_poll_in_any_order_any_number_of_times_counts_once(
    ledger, queries, database_url, redis_url, routes
):
    sku = random_sku("woo-both")
    stocked(ledger, sku)
    with shop(ledger, database_url, redis_url, auto_deliver=False) as s:
        s.store.add_product(sku, 10)
        s.store.buy(sku, 3)
        s.store.webhooks.lose("order.updated")  # its bytes kept, to deliver as the routes say
        [sent] = s.store.webhooks.deliver_pending()
        for route in routes:
            if route == "poll":
                poll(s.running, s.channel)
            else:
                httpx.post(
                    f"{s.running.url}/webhooks/{s.channel}",
                    content=sent.body,
                    headers=dict(sent.headers),
                ).raise_for_status()
        settled(database_url, s.channel)
        assert levels(queries, sku) == (10, 3)
