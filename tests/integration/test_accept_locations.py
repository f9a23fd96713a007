"""Accepting a channel's quantity where it sells the sum of several of our locations (issue 13),
through `POST /api/v1/discrepancies/{id}/resolve` on real PostgreSQL, against the Shopify and
Walmart sandboxes over HTTP with the projection and the pushers running: the count lands at the
location the channel's table maps its own (Shopify's location, Walmart's ship node) to, and with
no such mapping it is refused with 409 and why, the ledger and the discrepancy left as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from starlette.testclient import TestClient

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.time_travel import TimeTravel
from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure import outbox
from infrastructure.channels.config import ChannelConfig, RulesConfig
from infrastructure.channels.gateway import UNGATED, ChannelGateway, Gate
from infrastructure.channels.kinds import api_for, gateway_for
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.config import PushConfig
from infrastructure.reconcile.levels import LevelsChecked, check_levels
from infrastructure.reconcile.review import Review
from interfaces.composition import running_propagation
from interfaces.http.api import Api
from interfaces.http.app import create_app
from sandboxes.server import SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.walmart.seller import WalmartSandbox
from tests.helpers import change, random_sku
from tests.integration.propagation_fixtures import eventually

CHANNEL = "shop"
NODE = "SN-EAST"  # the Walmart ship node the channel sells from
FEEDING = ("main", "east")


@dataclass
class Store:
    """A sandbox store whose stock lives at one location of its own: how a SKU is listed
    there, edited by hand, read, and the channel's table (its own location still unmapped)."""

    list: Callable[[str], object]
    edit: Callable[[str, int], object]
    stock: Callable[[str], int | None]
    channel: ChannelConfig
    own_location: str


@contextmanager
def shopify() -> Iterator[Store]:
    shop = ShopifySandbox("shpat_locations")
    with SandboxServer(shop.app) as server:
        channel = ShopifyConfig(
            id=CHANNEL,
            api_base_url=server.url,
            access_token="shpat_locations",
            location_id=f"gid://shopify/Location/{shop.location_id}",
        )
        yield Store(
            lambda sku: shop.set_stock(sku, 0),
            shop.set_stock,
            shop.stock,
            channel,
            str(shop.location_id),
        )
    shop.close()


@contextmanager
def walmart() -> Iterator[Store]:
    seller = WalmartSandbox(feed_delay=0.05)
    client_id, client_secret = seller.credentials
    with seller.server() as server:
        channel = WalmartConfig(
            id=CHANNEL,
            api_base_url=server.url,
            client_id=client_id,
            client_secret=client_secret,
            ship_node=NODE,
            feed_poll_seconds=0.05,
        )
        yield Store(
            lambda sku: seller.add_item(sku, 0, node=NODE),
            lambda sku, quantity: seller.set_stock(sku, quantity, NODE),
            lambda sku: seller.stock(sku, NODE),
            channel,
            NODE,
        )
    seller.close()


STORES = {"shopify": shopify, "walmart": walmart}


@dataclass
class Selling:
    """A store selling the sum of `main` and `east`, pushed to by invsync, with its review."""

    store: Store
    channel: ChannelConfig  # as the review reads it
    reader: ChannelGateway
    database_url: str
    ledger: Ledger

    def stocked(self, main: int, east: int) -> str:
        """A SKU held at both locations, its sum pushed and acknowledged."""
        sku = random_sku()
        self.store.list(sku)
        self.ledger.record(change(ChangeKind.RECEIPT, sku, main, location="main"))
        self.ledger.record(change(ChangeKind.RECEIPT, sku, east, location="east"))
        self.settled(sku, main + east)
        return sku

    def settled(self, sku: str, quantity: int) -> None:
        def done() -> bool:
            with psycopg.connect(self.database_url) as conn:
                state = outbox.pushed(conn, CHANNEL, [sku]).get(sku)
            acknowledged = state is not None and state.acknowledged_quantity == quantity
            return acknowledged and not state.in_flight and self.store.stock(sku) == quantity

        eventually(done, 15, f"{sku} settles at {quantity}")

    def check(self, sku: str) -> LevelsChecked:
        return check_levels(
            self.channel,
            gateway=self.reader,
            connect=lambda: psycopg.connect(self.database_url),
            sales=TimeTravel(self.ledger).channel_sales,
            skus=[sku],
            settle=0.0,
        )

    def on_hand(self, sku: str) -> dict[str, int]:
        item = LedgerQueries(self.ledger).get_item(sku)
        return {name: item.levels_at(name).on_hand for name in FEEDING}


@contextmanager
def selling(
    store: Store, scratch_database: str, ledger: Ledger, redis_url: str, *, mapped: bool
) -> Iterator[tuple[Selling, TestClient]]:
    """The store's channel fed from `main` and `east`, its own location mapped to `east` in its
    table when `mapped`, and the API's review of its discrepancies."""
    table = {"rules": RulesConfig(locations=FEEDING)}
    if mapped:
        table["locations"] = {store.own_location: "east"}
    channel = store.channel.model_copy(update=table)

    def gateway(gate: Gate) -> ChannelGateway:
        built = gateway_for(channel, gate)
        assert built is not None  # the channel pushes
        return built

    push = PushConfig(batch_window_seconds=0, rate_per_second=20)
    rules = (ChannelRule(CHANNEL, locations=FEEDING),)
    namespace = f"test-{random_sku()}"
    reader = api_for(channel, UNGATED)  # in the channel's SKUs, as reconciliation reads
    with running_propagation(
        scratch_database, redis_url, {CHANNEL: (gateway, push)}, rules, namespace=namespace
    ):
        review = Review(lambda: psycopg.connect(scratch_database), ledger, {CHANNEL: channel})
        with TestClient(create_app(Api(ledger, review=review))) as client:
            yield Selling(store, channel, reader, scratch_database, ledger), client
    reader.close()


@pytest.fixture(params=sorted(STORES))
def store(request) -> Iterator[Store]:
    with STORES[request.param]() as found:
        yield found


def open_discrepancy(client: TestClient, sku: str) -> str:
    wanted = {"state": "open", "channel": CHANNEL, "sku": sku}
    [found] = client.get("/api/v1/discrepancies", params=wanted).json()["discrepancies"]
    assert (found["observed"], found["expected"]) == (8, 20)
    return f"/api/v1/discrepancies/{found['id']}/resolve"


ACCEPT = {"action": "accept_channel", "reason": "counted the shelf: 8"}


def test_accepting_the_channel_counts_the_difference_where_its_table_maps_its_location(
    store, scratch_database, scratch_ledger, redis_url
):
    with selling(store, scratch_database, scratch_ledger, redis_url, mapped=True) as (
        sold,
        client,
    ):
        sku = sold.stocked(main=5, east=15)
        store.edit(sku, 8)
        assert sold.check(sku) == LevelsChecked(read=1, escalated=1)

        answer = client.post(open_discrepancy(client, sku), json=ACCEPT)

        assert answer.status_code == 200, answer.text
        assert answer.json()["resolution"]["action"] == "accept_channel"
        assert sold.on_hand(sku) == {"main": 5, "east": 3}  # east lost the 12 units
        sold.settled(sku, 8)
        assert sold.check(sku) == LevelsChecked(read=1)


def test_accepting_a_channel_that_sells_several_locations_none_mapped_is_refused_saying_why(
    scratch_database, scratch_ledger, redis_url
):
    with (
        shopify() as store,
        selling(store, scratch_database, scratch_ledger, redis_url, mapped=False) as (
            sold,
            client,
        ),
    ):
        sku = sold.stocked(main=5, east=15)
        store.edit(sku, 8)
        sold.check(sku)
        path = open_discrepancy(client, sku)

        answer = client.post(path, json=ACCEPT)

        assert answer.status_code == 409
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "sells the sum of east, main" in answer.json()["detail"]
        assert "[channels.locations]" in answer.json()["detail"]
        assert sold.on_hand(sku) == {"main": 5, "east": 15}  # nothing counted
        assert open_discrepancy(client, sku) == path  # still open for another decision
        pushed = client.post(path, json={"action": "push_ledger", "reason": "a typo"})
        assert pushed.status_code == 200
        sold.settled(sku, 20)
