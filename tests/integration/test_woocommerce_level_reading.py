"""Reading a WooCommerce store's levels in bulk, against the WooCommerce sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.channels.woocommerce.kind import WOOCOMMERCE
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox

KEY, SECRET = "ck_levels", "cs_levels"


@pytest.fixture
def served() -> Iterator[tuple[WooCommerceSandbox, WooCommerceGateway]]:
    store = WooCommerceSandbox(KEY, SECRET, auto_deliver=False)
    with SandboxServer(store.app) as server:
        gateway = WooCommerceGateway(server.url, KEY, SECRET, channel_id="woo")
        yield store, gateway
        gateway.close()
    store.close()


def read(served, skus=None, **sku_map: str):
    _, gateway = served
    assert WOOCOMMERCE.read_levels is not None
    config = WooCommerceConfig(id="woo", sku_map=sku_map)
    return [(r.sku, r.quantity) for r in WOOCOMMERCE.read_levels(config, gateway, skus)]


def test_named_skus_are_read_with_the_stock_the_store_manages(served):
    store, _ = served
    store.add_product("TEE", 5)
    store.add_product("MUG", None)  # its stock is not managed: nothing to read
    before = datetime.now(UTC)
    _, gateway = served
    config = WooCommerceConfig(id="woo")
    assert WOOCOMMERCE.read_levels is not None
    readings = list(WOOCOMMERCE.read_levels(config, gateway, ["TEE", "MUG", "NONE"]))
    assert [(r.sku, r.quantity) for r in readings] == [("TEE", 5)]
    assert before <= readings[0].read_at <= datetime.now(UTC)


def test_readings_are_named_by_our_skus_through_the_channels_sku_map(served):
    store, _ = served
    store.add_product("woo-tee", 3)
    assert read(served, ["TEE"], **{"woo-tee": "TEE"}) == [("TEE", 3)]


def test_the_catalogue_is_read_in_pages_of_100_with_the_variations_of_variable_products(served):
    store, _ = served
    for n in range(230):
        store.add_product(f"SIMPLE-{n:03}", n % 7)
    shirt = store.add_product("SHIRT", None)
    for size, stock in (("S", 1), ("M", 2), ("L", 0)):
        store.add_product(f"SHIRT-{size}", stock, parent=shirt)
    readings = read(served)
    assert sorted(readings) == sorted(
        [(f"SIMPLE-{n:03}", n % 7) for n in range(230)]
        + [("SHIRT-S", 1), ("SHIRT-M", 2), ("SHIRT-L", 0)]
    )
    # 231 products in 3 pages, and the variable product's variations in one more.
    assert store.log.count("products.list") == 3
    assert store.log.count("variations.list") == 1


def test_named_skus_are_read_100_a_call(served):
    store, _ = served
    for n in range(150):
        store.add_product(f"NAMED-{n:03}", 2)
    assert len(read(served, [f"NAMED-{n:03}" for n in range(150)])) == 150
    assert store.log.count("products.list") == 2


def test_a_shop_managers_edit_is_what_the_next_reading_shows(served):
    store, _ = served
    store.add_product("TEE", 10)
    store.set_stock("TEE", 22)
    assert read(served, ["TEE"]) == [("TEE", 22)]
