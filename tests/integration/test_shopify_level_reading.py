"""Reading a Shopify shop's levels in bulk, against the Shopify sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.shopify.gateway import ShopifyGateway
from infrastructure.channels.shopify.kind import SHOPIFY
from sandboxes.server import SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from tests.helpers import random_sku

TOKEN = "shpat_levels"


@pytest.fixture
def served() -> Iterator[tuple[ShopifySandbox, ShopifyGateway]]:
    shop = ShopifySandbox(TOKEN)
    with SandboxServer(shop.app) as server:
        gateway = ShopifyGateway(server.url, TOKEN, shop.location_id, channel_id="shop")
        yield shop, gateway
        gateway.close()
    shop.close()


def channel(**sku_map: str) -> ShopifyConfig:
    return ShopifyConfig(id="shop", location_id="1", sku_map=sku_map)


def read(served, skus=None, config=None):
    _, gateway = served
    assert SHOPIFY.read_levels is not None
    return list(SHOPIFY.read_levels(config or channel(), gateway, skus))


def test_named_skus_are_read_with_what_the_shop_shows_and_when(served):
    shop, _ = served
    a, b = random_sku(), random_sku()
    shop.set_stock(a, 7)
    shop.set_stock(b, 0)
    before = datetime.now(UTC)
    readings = read(served, [a, b, random_sku()])
    assert {(r.sku, r.quantity) for r in readings} == {(a, 7), (b, 0)}
    assert all(before <= r.read_at <= datetime.now(UTC) for r in readings)


def test_readings_are_named_by_our_skus_through_the_channels_sku_map(served):
    shop, _ = served
    ours, theirs = random_sku(), random_sku()
    shop.set_stock(theirs, 4)
    config = channel(**{theirs: ours})
    assert [(r.sku, r.quantity) for r in read(served, [ours], config)] == [(ours, 4)]


def test_the_whole_catalogue_is_read_in_pages_of_250_items(served):
    shop, _ = served
    skus = [f"CAT-{n:04}" for n in range(600)]
    for n, sku in enumerate(skus):
        shop.set_stock(sku, n % 9)
    shop.bucket.maximum = shop.bucket.available = 10_000.0  # no waits: count calls alone
    calls = shop.fields["inventoryItems"]
    readings = read(served)
    assert [(r.sku, r.quantity) for r in readings] == [(sku, n % 9) for n, sku in enumerate(skus)]
    assert shop.fields["inventoryItems"] - calls == 3  # ceil(600 / 250)


def test_named_skus_are_read_250_a_call(served):
    shop, _ = served
    skus = [f"NAMED-{n:04}" for n in range(300)]
    for sku in skus:
        shop.set_stock(sku, 1)
    calls = shop.fields["inventoryItems"]
    assert len(read(served, skus)) == 300
    assert shop.fields["inventoryItems"] - calls == 2


def test_a_hand_edit_in_the_admin_is_what_the_next_reading_shows(served):
    shop, _ = served
    sku = random_sku()
    shop.set_stock(sku, 10)
    shop.set_stock(sku, 22)  # the merchant types 22 in the admin
    assert [r.quantity for r in read(served, [sku])] == [22]


def test_a_catalogue_longer_than_the_bucket_is_read_at_the_shops_restore_rate(served):
    shop, _ = served
    for n in range(600):
        shop.set_stock(f"SLOW-{n:04}", 1)
    shop.bucket.restore_rate = 2000.0  # a page's 752 points come back in under half a second
    shop.bucket.drain(to=800.0)  # one page now, the next ones as the bucket refills
    assert len(read(served)) == 600
