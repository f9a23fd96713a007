"""`[channels.sku_map]` on the push side: gateways built from the configuration speak our SKUs
to the pushers and the channel's to the channel, over real HTTP against the sandboxes."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

import pytest

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import (
    UNGATED,
    ChannelGateway,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.channels.kinds import gateway_for
from infrastructure.channels.sku_map import SkuMappedGateway
from infrastructure.config import Config, PushConfig
from infrastructure.push.store import PushStore
from interfaces.composition import running_propagation
from sandboxes.amazon.seller import AmazonSandbox
from sandboxes.server import SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.helpers import change, random_sku
from tests.integration.propagation_fixtures import eventually

KEY, SECRET = "ck_map", "cs_map"
APPLIED, UNKNOWN, SUBMITTED = PushStatus.APPLIED, PushStatus.UNKNOWN_SKU, PushStatus.SUBMITTED
# The channel's SKU -> ours.
SKU_MAP = {"WOO-TEE-M": "TEE-M", "WOO-CAP": "CAP-RED", "MUG": "MUG-BLUE"}


def channel(kind: str, url: str, sku_map: dict[str, str], **credentials: Any) -> ChannelConfig:
    table = {
        "id": f"{kind}-mapped",
        "kind": kind,
        "api_base_url": url,
        "webhook_secrets": ["s"],
        "sku_map": sku_map,
        "push": {"timeout_seconds": 2.0},
        **credentials,
    }
    return Config.model_validate({"channels": [table]}).channels[0]


@pytest.fixture
def woo() -> Iterator[tuple[WooCommerceSandbox, str]]:
    sandbox = WooCommerceSandbox(KEY, SECRET, auto_deliver=False)
    with SandboxServer(sandbox.app) as server:
        yield sandbox, server.url
    sandbox.close()


@pytest.fixture
def gateway(woo) -> Iterator[ChannelGateway]:
    _, url = woo
    config = channel("woocommerce", url, SKU_MAP, consumer_key=KEY, consumer_secret=SECRET)
    gateway = gateway_for(config, UNGATED)
    yield gateway
    gateway.close()


def push(sku: str, quantity: int) -> Push:
    return Push(sku=sku, quantity=quantity, version=1)


def test_a_push_of_our_sku_sets_the_channels_product_and_answers_in_ours(woo, gateway):
    sandbox, _ = woo
    sandbox.add_product("WOO-TEE-M", 1)
    sandbox.add_product("SOCKS", 2)  # unmapped: the same name on both sides
    results = gateway.push([push("TEE-M", 7), push("SOCKS", 9)])
    assert sorted(results, key=lambda r: r.sku) == [
        PushResult("SOCKS", APPLIED, 9),
        PushResult("TEE-M", APPLIED, 7),
    ]
    assert (sandbox.stock("WOO-TEE-M"), sandbox.stock("SOCKS")) == (7, 9)
    with pytest.raises(KeyError):  # nothing of our name was made on the channel
        sandbox.stock("TEE-M")


def test_a_read_of_our_skus_shows_the_channels_products(woo, gateway):
    sandbox, _ = woo
    sandbox.add_product("WOO-CAP", 4)
    sandbox.add_product("SOCKS", 5)
    assert gateway.read(["CAP-RED", "SOCKS", "GHOST"]) == {
        "CAP-RED": 4,
        "SOCKS": 5,
        "GHOST": None,
    }


def test_a_mapped_sku_the_channel_does_not_list_is_unknown_by_our_name(woo, gateway):
    results = gateway.push([push("CAP-RED", 3)])
    assert [(r.sku, r.status) for r in results] == [("CAP-RED", UNKNOWN)]


def test_our_sku_whose_name_the_map_gives_to_another_of_ours_is_never_pushed(woo, gateway):
    """`"MUG" = "MUG-BLUE"`: the channel's MUG is our MUG-BLUE, so our own MUG (another
    product) has no name there and must not overwrite MUG-BLUE's quantity."""
    sandbox, _ = woo
    sandbox.add_product("MUG", 10)
    before = sandbox.log.count()
    [result] = gateway.push([push("MUG", 99)])
    assert (result.sku, result.status) == ("MUG", UNKNOWN)
    assert "MUG-BLUE" in result.detail
    assert sandbox.stock("MUG") == 10
    assert sandbox.log.count() == before  # no call at all
    assert gateway.read(["MUG", "MUG-BLUE"]) == {"MUG": None, "MUG-BLUE": 10}
    pushed = gateway.push([push("MUG", 1), push("MUG-BLUE", 6)])
    assert {(r.sku, r.status) for r in pushed} == {("MUG", UNKNOWN), ("MUG-BLUE", APPLIED)}
    assert sandbox.stock("MUG") == 6


def test_a_channel_that_throttles_is_throttled_for_our_skus_too(woo, gateway):
    sandbox, _ = woo
    sandbox.add_product("WOO-TEE-M", 1)
    sandbox.throttle(2.0)
    with pytest.raises(Throttled):
        gateway.push([push("TEE-M", 5)])
    assert sandbox.stock("WOO-TEE-M") == 1


def test_a_channel_without_a_map_gets_its_gateway_unwrapped(woo):
    _, url = woo
    config = channel("woocommerce", url, {}, consumer_key=KEY, consumer_secret=SECRET)
    gateway = gateway_for(config, UNGATED)
    assert not isinstance(gateway, SkuMappedGateway)
    gateway.close()


def test_a_mapped_gateway_takes_turns_of_the_gate_it_was_built_behind(woo):
    class Counted:
        def __init__(self) -> None:
            self.taken: list[str] = []

        def turns(self, rates: Mapping[str, float]) -> Counted:
            return self

        def take(self, operation: str, wait: float) -> bool:
            self.taken.append(operation)
            return True

    _, url = woo
    gate = Counted()
    config = channel("woocommerce", url, SKU_MAP, consumer_key=KEY, consumer_secret=SECRET)
    gateway = gateway_for(config, gate)
    assert isinstance(gateway, SkuMappedGateway)
    try:
        gateway.read(["TEE-M"])  # a call of its own: it takes a turn
    finally:
        gateway.close()
    assert gate.taken


def test_shopify_listings_are_filed_under_our_skus():
    sandbox = ShopifySandbox("shpat_map", "shpss_map")
    with SandboxServer(sandbox.app) as server:
        sandbox.set_stock("SHOP-TEE-M", 0)
        config = channel(
            "shopify",
            server.url,
            {"SHOP-TEE-M": "TEE-M"},
            access_token="shpat_map",
            location_id=sandbox.location_id,
        )
        gateway = gateway_for(config, UNGATED)
        try:
            [(ref, sku)] = gateway.listings(["TEE-M"])  # type: ignore[attr-defined]
            assert sku == "TEE-M"
            assert ref.startswith("shopify-inventory-item:")
            assert [(r.sku, r.status) for r in gateway.push([push("TEE-M", 4)])] == [
                ("TEE-M", APPLIED)
            ]
            assert sandbox.stock("SHOP-TEE-M") == 4
        finally:
            gateway.close()
    sandbox.close()


def test_an_amazon_feed_of_our_skus_is_submitted_and_settled_in_ours():
    sandbox = AmazonSandbox(apply_delay=0.02, feed_delay=0.05)
    client_id, client_secret, refresh_token = sandbox.credentials
    ours = {f"AMZ-{n}": f"OUR-{n}" for n in range(3)}
    with sandbox.server() as server:
        for theirs in ours:
            sandbox.add_listing(theirs, 0)
        config = channel(
            "amazon",
            server.url,
            ours,
            seller_id=sandbox.seller_id,
            marketplace_id=sandbox.marketplace_id,
            lwa_client_id=client_id,
            lwa_client_secret=client_secret,
            lwa_refresh_token=refresh_token,
            lwa_token_url=f"{server.url}/auth/o2/token",
            feed_poll_seconds=0.05,
        )
        gateway = gateway_for(config, UNGATED)
        try:
            skus = sorted(ours.values())
            submitted = gateway.push([push(sku, n + 2) for n, sku in enumerate(skus)])
            lead, *fed = skus  # the call's lead goes as a patch, the rest by feed
            assert [(r.sku, r.status) for r in submitted] == [
                (lead, APPLIED),
                *((sku, SUBMITTED) for sku in fed),
            ]
            [ticket] = {r.ticket for r in submitted if r.ticket}
            results = None
            deadline = time.monotonic() + 10
            while results is None and time.monotonic() < deadline:
                time.sleep(0.05)
                results = gateway.settle(ticket, fed)
            assert results is not None, "the feed was not settled"
            assert sorted((r.sku, r.status) for r in results) == [(sku, APPLIED) for sku in fed]
            shown = [2, 3, 4]
            eventually(lambda: [sandbox.stock(t) for t in sorted(ours)] == shown, 5, "shown")
        finally:
            gateway.close()
    sandbox.close()


def test_propagation_pushes_our_stock_to_the_channels_name_and_acknowledges_ours(
    woo, scratch_ledger, scratch_database, redis_url
):
    sandbox, url = woo
    ours, theirs = random_sku(), f"WOO-{random_sku()}"
    sandbox.add_product(theirs, 0)
    config = channel("woocommerce", url, {theirs: ours}, consumer_key=KEY, consumer_secret=SECRET)
    scratch_ledger.record(change(ChangeKind.RECEIPT, ours, 12))
    gateways = {config.id: (partial(gateway_for, config), PushConfig(batch_window_seconds=0))}
    rules = (ChannelRule(config.id),)
    with running_propagation(
        scratch_database, redis_url, gateways, rules, namespace=f"test-{random_sku()}"
    ):
        eventually(lambda: sandbox.stock(theirs) == 12, 15, "the receipt reaches the channel")
        store = PushStore(scratch_database)
        try:
            eventually(lambda: store.pending(config.id, 10) == [], 5, "the push is acknowledged")
        finally:
            store.close()
    with pytest.raises(KeyError):
        sandbox.stock(ours)
