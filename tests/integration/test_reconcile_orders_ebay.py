"""An eBay seller's orders reach the ledger by polling the Fulfillment API (eBay sends order
events only as Platform Notifications): once each, cancellations and refunds included, against
the sandbox account listing its orders as eBay does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from infrastructure.channels.ebay.order_listing import list_orders
from infrastructure.channels.gateway import UNGATED
from infrastructure.channels.kinds import api_for
from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import SandboxServer
from tests.channels import ebay_table
from tests.helpers import random_sku
from tests.integration.intake_fixtures import RunningIntake, running_intake, wait_until
from tests.integration.orders_poll_fixtures import channel_id, config_of, poll, settled, stocked


@dataclass
class Seller:
    account: EbaySandbox
    running: RunningIntake
    channel: str
    url: str

    def levels(self, queries, sku: str) -> tuple[int, int]:
        totals = queries.get_item(sku).totals
        return totals.on_hand, totals.committed


@contextmanager
def seller(ledger, database_url, redis_url) -> Iterator[Seller]:
    account = EbaySandbox()
    channel = channel_id("ebay")
    with SandboxServer(account.app) as server:
        config = config_of(ebay_table(channel, server.url))
        with running_intake(ledger, database_url, redis_url, config) as running:
            yield Seller(account, running, channel, server.url)
    account.close()


def test_an_order_is_committed_by_the_next_poll_and_a_second_poll_changes_nothing(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("ebay-sold")
    stocked(ledger, sku)
    with seller(ledger, database_url, redis_url) as s:
        s.account.add_item(sku, 10)
        s.account.buy(sku, 3)
        assert s.levels(queries, sku) == (10, 0)

        first = poll(s.running, s.channel)
        wait_until(lambda: s.levels(queries, sku) == (10, 3))
        again = poll(s.running, s.channel)
        settled(database_url, s.channel)

        assert (first.found, first.stored) == (1, 1)
        assert (again.found, again.stored) == (1, 0)  # within the overlap, stored before
        assert s.levels(queries, sku) == (10, 3)


def test_a_cancellation_found_by_poll_releases_the_units(ledger, queries, database_url, redis_url):
    sku = random_sku("ebay-cancel")
    stocked(ledger, sku)
    with seller(ledger, database_url, redis_url) as s:
        s.account.add_item(sku, 10)
        order_id = s.account.buy(sku, 2)
        poll(s.running, s.channel)
        wait_until(lambda: s.levels(queries, sku) == (10, 2))
        s.account.cancel(order_id)
        polled = poll(s.running, s.channel)
        settled(database_url, s.channel)
        assert polled.stored == 1
        assert s.levels(queries, sku) == (10, 0)


def test_a_cancellation_seen_before_its_order_holds_nothing(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("ebay-late")
    stocked(ledger, sku)
    with seller(ledger, database_url, redis_url) as s:
        s.account.add_item(sku, 10)
        s.account.cancel(s.account.buy(sku, 2))
        poll(s.running, s.channel)
        settled(database_url, s.channel)
        assert s.levels(queries, sku) == (10, 0)


def test_a_shipped_order_leaves_on_hand_and_a_later_refund_moves_nothing_more(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("ebay-ship")
    stocked(ledger, sku)
    with seller(ledger, database_url, redis_url) as s:
        s.account.add_item(sku, 10)
        order_id = s.account.buy(sku, 4)
        poll(s.running, s.channel)
        wait_until(lambda: s.levels(queries, sku) == (10, 4))
        s.account.ship(order_id)
        poll(s.running, s.channel)
        wait_until(lambda: s.levels(queries, sku) == (6, 0))
        s.account.refund(order_id)
        poll(s.running, s.channel)
        settled(database_url, s.channel)
        assert s.levels(queries, sku) == (6, 0)


def test_a_refund_before_shipping_releases_the_units(ledger, queries, database_url, redis_url):
    sku = random_sku("ebay-refund")
    stocked(ledger, sku)
    with seller(ledger, database_url, redis_url) as s:
        s.account.add_item(sku, 10)
        order_id = s.account.buy(sku, 2)
        s.account.refund(order_id)
        poll(s.running, s.channel)
        settled(database_url, s.channel)
        assert s.levels(queries, sku) == (10, 0)


def test_orders_are_listed_in_pages_of_200_within_the_window(ledger, database_url, redis_url):
    with seller(ledger, database_url, redis_url) as s:
        sku = random_sku("ebay-pages")
        s.account.add_item(sku, 1000)
        before = datetime.now(UTC) - timedelta(seconds=1)
        for _ in range(450):
            s.account.buy(sku, 1)
        table = s.running.intake.router.channel(s.channel)
        gateway = api_for(table, UNGATED)
        try:
            # The account stamps each change a millisecond after the last at least, so 450 quick
            # checkouts may run ahead of the clock: the window ends well after them.
            after = datetime.now(UTC) + timedelta(seconds=5)
            listed = list(list_orders(table, gateway, before, after))
            later = list(list_orders(table, gateway, after, after + timedelta(seconds=1)))
        finally:
            gateway.close()
        assert len({o.order_id for o in listed}) == len(listed) == 450
        assert later == []
        assert s.account.log.count("fulfillment.orders") == 3 + 1
