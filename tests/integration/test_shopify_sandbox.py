"""The Shopify sandbox speaks Shopify's wire formats: its API answers and its webhooks, which our
verifier and translator accept, and which reach the ledger through a real intake."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from application.errors import UnknownSku
from application.intake import Delivery
from infrastructure.channels.base import SignedRequest
from infrastructure.channels.shopify import translator, verifier
from infrastructure.channels.shopify.config import ShopifyConfig
from sandboxes.server import SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.shopify.webhooks import sign
from tests.channels import internal_headers, receipt_document
from tests.helpers import random_sku
from tests.integration.intake_fixtures import (
    ERP_SECRET,
    SHOPIFY_SECRET,
    running_intake,
    wait_until,
)

TOKEN = "shpat_sandbox_test"
CHANNEL = ShopifyConfig(id="shopify-us", webhook_secrets=(SHOPIFY_SECRET,))
FAST = (0.01,) * 8  # Shopify's 8 retries over 4 hours, compressed


class Receiver:
    """A webhook endpoint that keeps what it receives and answers the statuses it is given."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []  # answered in turn; 200 once spent
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/webhooks/shopify-us", self._take, methods=["POST"])])

    async def _take(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.received.append((dict(request.headers), body))
            status = self.statuses.pop(0) if self.statuses else 200
        return Response(status_code=status)

    def topics(self) -> list[str]:
        return [headers["x-shopify-topic"] for headers, _ in self.received]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    endpoint = Receiver()
    with SandboxServer(endpoint.app) as server:
        yield endpoint, f"{server.url}/webhooks/shopify-us"


@pytest.fixture
def shop(receiver: tuple[Receiver, str]) -> Iterator[ShopifySandbox]:
    # One delivery at once: these tests read the order webhooks arrive in.
    sandbox = ShopifySandbox(
        TOKEN, SHOPIFY_SECRET, webhook_url=receiver[1], retry_delays=FAST, webhook_concurrency=1
    )
    yield sandbox
    sandbox.close()


@pytest.fixture
def api(shop: ShopifySandbox) -> Iterator[str]:
    with SandboxServer(shop.app) as server:
        yield f"{server.url}/admin/api/2026-04/graphql.json"


def accepted(headers: dict[str, str], body: bytes) -> Delivery:
    """What intake stores after our verifier accepts the delivery."""
    verdict = verifier.verify(CHANNEL, SignedRequest(headers, body), datetime.now(UTC))
    assert isinstance(verdict, verifier.Accepted)
    return Delivery(
        1, CHANNEL.id, verdict.delivery_key, verdict.topic, headers, body, datetime.now(UTC)
    )


def test_webhooks_are_signed_as_the_documented_test_vector():
    body = b'{"id":820982911946154508,"line_items":[{"sku":"SKU-1","quantity":2}]}'
    assert sign("shpss_test_secret", body) == "fbAl/Kinji+rg8XkyLkcv5RjqiURbQXFHGYLYidDs2I="


def test_a_sale_sends_an_order_our_verifier_and_translator_accept(shop, receiver):
    endpoint, _ = receiver
    sku = random_sku()
    shop.set_stock(sku, 5)
    order_id = shop.buy(sku, 2)
    assert shop.webhooks.wait_idle()
    assert endpoint.topics() == ["orders/create", "inventory_levels/update"]
    headers, body = endpoint.received[0]
    for name in ("x-shopify-shop-domain", "x-shopify-api-version", "x-shopify-webhook-id"):
        assert headers[name]
    [order] = translator.translate(CHANNEL, accepted(headers, body), None).orders
    assert order.order_key == f"shopify-us:order:{order_id}"
    [line] = order.targets(order.facts, order.lines).values()
    assert line.sku == sku
    assert [units.committed for units in line.locations.values()] == [2]
    assert shop.stock(sku) == 3


def test_an_api_write_sends_the_level_update_echo_suppression_recognises(shop, receiver, api):
    endpoint, _ = receiver
    sku = random_sku()
    item = shop.set_stock(sku, 5)
    answer = httpx.post(
        api, headers={"X-Shopify-Access-Token": TOKEN}, json=set_request(shop, item, 9, 5)
    )
    assert answer.json()["data"]["inventorySetQuantities"]["userErrors"] == []
    assert shop.webhooks.wait_idle()
    [(headers, body)] = endpoint.received
    [seen] = translator.translate(CHANNEL, accepted(headers, body), None).observations
    assert (seen.sku, seen.quantity) == (f"shopify-inventory-item:{item}", 9)


def test_a_failed_delivery_is_retried_with_the_same_id_and_body(shop, receiver):
    endpoint, _ = receiver
    endpoint.statuses = [500, 302]  # a redirect is a failure too
    shop.send_webhook("orders/create", {"id": 1, "line_items": []})
    assert shop.webhooks.wait_idle()
    assert len(endpoint.received) == 3
    assert len({h["x-shopify-webhook-id"] for h, _ in endpoint.received}) == 1
    assert len({body for _, body in endpoint.received}) == 1
    assert [a.retry for a in shop.webhooks.attempts] == [0, 1, 2]


def test_after_eight_failed_retries_the_subscription_is_deleted(shop, receiver):
    endpoint, _ = receiver
    endpoint.statuses = [503] * 9
    shop.send_webhook("orders/create", {"id": 2, "line_items": []})
    assert shop.webhooks.wait_idle()
    assert len(endpoint.received) == 9
    assert not shop.webhooks.active  # deleted
    assert shop.send_webhook("orders/create", {"id": 3, "line_items": []}) is None


def test_duplicates_and_out_of_order_deliveries_on_demand(shop, receiver):
    endpoint, _ = receiver
    shop.webhooks.duplicates = 1
    shop.send_webhook("orders/create", {"id": 4, "line_items": []})
    assert shop.webhooks.wait_idle()
    assert len({h["x-shopify-webhook-id"] for h, _ in endpoint.received}) == 1
    assert len(endpoint.received) == 2
    shop.webhooks.duplicates = 0
    with shop.webhooks.held():
        shop.send_webhook("orders/create", {"id": 5, "line_items": []})
        shop.send_webhook("orders/cancelled", {"id": 5, "line_items": []})
    assert shop.webhooks.wait_idle()
    assert endpoint.topics()[2:] == ["orders/cancelled", "orders/create"]


def set_request(
    shop: ShopifySandbox, item: int, quantity: int, change_from: int | None, idempotent: bool = True
) -> dict:
    key = f' @idempotent(key: "{uuid.uuid4()}")' if idempotent else ""
    return {
        "query": "mutation S($input: InventorySetQuantitiesInput!) {"
        f" inventorySetQuantities(input: $input){key} {{"
        " inventoryAdjustmentGroup { changes { delta quantityAfterChange } }"
        " userErrors { code field message } } }",
        "variables": {
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [
                    {
                        "inventoryItemId": f"gid://shopify/InventoryItem/{item}",
                        "locationId": f"gid://shopify/Location/{shop.location_id}",
                        "quantity": quantity,
                        "changeFromQuantity": change_from,
                    }
                ],
            }
        },
    }


def test_a_wrong_token_is_refused_as_shopify_does(api):
    answer = httpx.post(api, headers={"X-Shopify-Access-Token": "nope"}, json={"query": "{}"})
    assert answer.status_code == 401
    assert "Invalid API key or access token" in answer.json()["errors"]


def test_the_mutation_requires_an_idempotency_key_and_change_from_quantity(shop, api):
    item = shop.set_stock(random_sku(), 1)
    request = set_request(shop, item, 2, 1, idempotent=False)
    answer = httpx.post(api, headers={"X-Shopify-Access-Token": TOKEN}, json=request).json()
    assert "@idempotent" in answer["errors"][0]["message"]
    request = set_request(shop, item, 2, 1)
    del request["variables"]["input"]["quantities"][0]["changeFromQuantity"]
    answer = httpx.post(api, headers={"X-Shopify-Access-Token": TOKEN}, json=request).json()
    assert (
        "must include the following argument: changeFromQuantity"
        in (answer["errors"][0]["message"])
    )
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_FIELD_ARGUMENTS"
    assert shop.fields["inventorySetQuantities"] == 2


def test_throttled_answers_carry_the_cost_extension(shop, api):
    # Five seconds of restores owed: at 100 points/s an empty bucket holds this query's 12 points
    # again after 0.12 s, which a loaded machine may take before the request lands.
    shop.bucket.drain(to=-500.0)
    request = {"query": '{ inventoryItems(first: 10, query: "sku:x") { nodes { id sku } } }'}
    answer = httpx.post(api, headers={"X-Shopify-Access-Token": TOKEN}, json=request).json()
    assert answer["errors"][0]["extensions"]["code"] == "THROTTLED"
    cost = answer["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (12, None)
    assert cost["throttleStatus"]["restoreRate"] == 100.0
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0


def test_a_query_pays_its_actual_cost(shop, api):
    request = {"query": '{ inventoryItems(first: 100, query: "sku:none") { nodes { id } } }'}
    answer = httpx.post(api, headers={"X-Shopify-Access-Token": TOKEN}, json=request).json()
    assert answer["extensions"]["cost"]["requestedQueryCost"] == 102
    assert answer["extensions"]["cost"]["actualQueryCost"] == 2


def test_the_control_routes(shop, api):
    base = api.split("/admin/")[0]
    sku = random_sku()
    assert (
        httpx.post(f"{base}/_sandbox/stock", json={"sku": sku, "available": 4}).status_code == 200
    )
    assert httpx.post(f"{base}/_sandbox/buy", json={"sku": sku, "quantity": 1}).status_code == 200
    assert httpx.get(f"{base}/_sandbox/stock/{sku}").json() == {"sku": sku, "available": 3}
    assert httpx.post(f"{base}/_sandbox/buy", json={"sku": sku, "quantity": 9}).status_code == 409
    httpx.post(f"{base}/_sandbox/faults", json={"outage": True})
    assert httpx.post(api, json={}).status_code == 503
    assert httpx.get(f"{base}/_sandbox/calls").json()["calls"] == shop.calls.count() == 1


@pytest.fixture
def intake(ledger, database_url, redis_url):
    with running_intake(ledger, database_url, redis_url) as running:
        yield running


def test_a_sandbox_sale_reaches_the_ledger_through_a_real_intake(ledger, queries, intake):
    sku = random_sku()
    receipt = receipt_document(sku, 10, f"po-{uuid.uuid4()}")
    headers = internal_headers(ERP_SECRET, receipt, str(uuid.uuid4()))

    def committed() -> int:
        try:
            return queries.get_item(sku).totals.committed
        except UnknownSku:
            return -1

    assert httpx.post(f"{intake.url}/webhooks/erp", content=receipt, headers=headers).is_success
    wait_until(lambda: committed() == 0)  # receipts and sales take different lanes
    shop = ShopifySandbox(TOKEN, SHOPIFY_SECRET, webhook_url=f"{intake.url}/webhooks/shopify-us")
    shop.set_stock(sku, 10)
    shop.buy(sku, 3)
    assert shop.webhooks.wait_idle()
    shop.close()
    wait_until(lambda: committed() == 3)
    assert all(200 <= (a.status or 0) < 300 for a in shop.webhooks.attempts)
