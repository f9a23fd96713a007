"""A Walmart seller's orders its events missed enter intake by the next poll, once, and the
orders waiting for it are acknowledged when the merchant asks invsync to: the sandbox loses
events on demand and lists its orders as Walmart does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from infrastructure.channels.gateway import UNGATED
from infrastructure.channels.kinds import api_for
from infrastructure.channels.walmart.order_listing import list_orders
from sandboxes.server import SandboxServer
from sandboxes.walmart.seller import WalmartSandbox
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


@dataclass
class Seller:
    sandbox: WalmartSandbox
    running: RunningIntake
    channel: str


@contextmanager
def seller(ledger, database_url, redis_url, **table) -> Iterator[Seller]:
    sandbox = WalmartSandbox(retry_delays=())
    channel = channel_id("walmart")
    with SandboxServer(sandbox.app) as server:
        settings_ = {"id": channel, **sandbox.channel_settings(server.url), **table}
        with running_intake(ledger, database_url, redis_url, config_of(settings_)) as running:
            sandbox.webhooks.url = f"{running.url}/webhooks/{channel}"
            yield Seller(sandbox, running, channel)
    sandbox.close()


def failed(labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value("invsync_orders_acknowledged_total", labels)


def test_a_sale_whose_event_is_lost_is_committed_by_the_next_poll_once(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("wm-lost")
    stocked(ledger, sku)
    with seller(ledger, database_url, redis_url) as s:
        s.sandbox.add_item(sku, 10)
        s.sandbox.orders.buy(sku, 3, notify=False)
        found_once(s.running, s.channel, queries, sku)
        assert s.sandbox.orders.acknowledgements == 0  # the merchant did not ask for it


def test_a_cancellation_found_by_poll_is_applied(ledger, queries, database_url, redis_url):
    sku = random_sku("wm-cancel")
    stocked(ledger, sku)
    with seller(ledger, database_url, redis_url) as s:
        s.sandbox.add_item(sku, 10)
        order_id = s.sandbox.orders.buy(sku, 2)
        wait_until(lambda: levels(queries, sku) == (10, 2))
        s.sandbox.orders.cancel(order_id, notify=False)

        polled = poll(s.running, s.channel)
        wait_until(lambda: levels(queries, sku) == (10, 0))
        assert polled.stored == 1


def test_released_orders_are_acknowledged_once_and_a_throttled_one_by_the_next_poll(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("wm-ack")
    stocked(ledger, sku)
    with seller(ledger, database_url, redis_url, acknowledge_orders=True) as s:
        s.sandbox.add_item(sku, 10)
        orders = [s.sandbox.orders.buy(sku, 1) for _ in range(3)]
        labels = {"channel": s.channel, "outcome": "failed"}
        s.sandbox.set_rate("orders.acknowledge", 0.001, 1)  # one goes, the next is throttled
        poll(s.running, s.channel)
        assert (s.sandbox.orders.acknowledgements, failed(labels)) == (1, 1)

        s.sandbox.set_rate("orders.acknowledge", 100, 100)
        poll(s.running, s.channel)
        poll(s.running, s.channel)  # nothing is waiting any more: nothing is asked
        assert s.sandbox.orders.acknowledgements == 3
        assert s.sandbox.log.count("orders.acknowledge", 200) == 3
        lines = [line for order in orders for line in s.sandbox.orders.order(order).lines]
        assert {status for line in lines for status in line.statuses} == {"Acknowledged"}
        settled(database_url, s.channel)
        assert levels(queries, sku) == (10, 3)  # acknowledged lines stay committed


def test_the_listing_pages_through_every_order_in_the_window(ledger, database_url, redis_url):
    sku = random_sku("wm-pages")
    with seller(ledger, database_url, redis_url) as s:
        s.sandbox.add_item(sku, 1000)
        orders = [s.sandbox.orders.buy(sku, notify=False) for _ in range(450)]
        table = s.running.intake.router.channel(s.channel)
        gateway = api_for(table, UNGATED)
        now = datetime.now(UTC)
        listed = list(list_orders(table, gateway, now - timedelta(hours=1), now + timedelta(1)))
        gateway.close()
        assert sorted(o.order_id for o in listed) == sorted(orders)
        assert s.sandbox.log.count("orders.get") == 3  # 200 a page


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(routes=st.lists(st.sampled_from(["event", "poll", "event twice"]), min_size=1, max_size=5))
def test_an_order_seen_by_event_and_poll_in_any_order_any_number_of_times_counts_once(
    ledger, queries, database_url, redis_url, routes
):
    sku = random_sku("wm-both")
    stocked(ledger, sku)
    with seller(ledger, database_url, redis_url) as s:
        s.sandbox.add_item(sku, 10)
        order_id = s.sandbox.orders.buy(sku, 4, notify=False)
        for route in routes:
            if route == "poll":
                poll(s.running, s.channel, since=datetime.now(UTC) - timedelta(minutes=5))
            else:
                duplicates = int(route == "event twice")
                s.sandbox.orders.notify(order_id, duplicates=duplicates)
                assert s.sandbox.webhooks.wait_idle()
        settled(database_url, s.channel)
        assert levels(queries, sku) == (10, 4)
