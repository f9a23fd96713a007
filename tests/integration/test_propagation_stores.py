"""The propagation benchmark's stores in a process of their own: a probe bought through the
benchmark's window sends the store's signed webhook, closes once every other store shows the
sale, and none of the window's reads appears in a store's call log."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.propagation_stores import PLENTY, Hosted, hosted, posted_after, posts_by_sku
from sandboxes.server import SandboxServer
from sandboxes.webhooks import Attempt, Message
from tests.integration.propagation_fixtures import eventually


class Intake:
    """Stands where invsync's webhooks route would: notes each delivery's path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.app = Starlette(routes=[Route("/webhooks/{channel}", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        await request.body()
        self.paths.append(request.url.path)
        return Response(status_code=200)


@pytest.fixture(scope="module")
def stores() -> Iterator[tuple[Hosted, Intake]]:
    intake = Intake()
    with SandboxServer(intake.app) as server, hosted(server.port) as window:
        yield window, intake


def test_the_stores_run_in_a_process_of_their_own_with_their_settings(stores):
    window, _ = stores
    assert window.pid != os.getpid()
    assert [s.id for s in window.stores] == ["shopify", "woo", "ebay", "walmart", "amazon"]
    assert [s.id for s in window.stores if s.sells] == ["shopify", "woo"]
    assert [s.id for s in window.stores if s.apart] == ["amazon"]
    shopify = window.stores[0].settings
    answer = httpx.post(
        f"{shopify['api_base_url']}/admin/api/2026-04/graphql.json",
        headers={"X-Shopify-Access-Token": shopify["access_token"]},
        json={"query": '{ inventoryItems(first: 1, query: "sku:HOT-1") { nodes { sku } } }'},
    )
    assert answer.json()["data"]["inventoryItems"]["nodes"] == [{"sku": "HOT-1"}]
    assert window.log("shopify").count() == 1  # the store's API counts its own calls


def test_a_probe_sends_the_webhook_and_closes_once_every_other_store_shows_the_sale(stores):
    window, intake = stores
    before = {s.id: window.log(s.id).count() for s in window.stores}
    # Every other store shows PLENTY - 1 already: the probe closes at the watchers' first look.
    window.buy("woo", "cold", "COLD-000", PLENTY - 1)
    window.drain(10)
    probes = window.probes()
    [probe] = [p for p in probes["done"] if p["sku"] == "COLD-000"]
    assert probes["open"] == 0
    assert probe["cls"] == "cold"
    assert set(probe["seen"]) == {"shopify", "ebay", "walmart", "amazon"}
    assert max(probe["seen"].values()) < 10
    eventually(lambda: "/webhooks/woo" in intake.paths, 10, "the order's webhook delivered")
    # The window opens at the webhook's post: WooCommerce's sandbox holds it 50 ms first.
    [probe] = [p for p in window.probes()["done"] if p["sku"] == "COLD-000"]
    assert 0.05 <= probe["posted"] < 10
    # The window's purchase and every watcher's read went past the stores' APIs.
    assert {s.id: window.log(s.id).count() for s in window.stores} == before


def test_a_probe_is_matched_to_the_first_post_of_its_sku_after_its_purchase():
    bodies = [b'{"line_items":[{"sku":"A"},{"sku": "B"}]}', b'{"line_items":[{"sku":"A"}]}']
    attempts = [
        Attempt(Message("orders/create", body), 0, 200, True, posted=at)
        for body, at in zip(bodies, (5.0, 9.0), strict=True)
    ]
    posts = posts_by_sku(attempts)
    assert posts == {"A": [5.0, 9.0], "B": [5.0]}
    assert posted_after(posts["A"], 4.0) == 1.0
    assert posted_after(posts["A"], 6.0) == 3.0  # the same SKU bought again: its own webhook
    assert posted_after(posts["B"], 6.0) is None
