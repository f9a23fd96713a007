"""The WooCommerce sandbox answers and sends what WooCommerce documents (CHANNELS.md §2)."""

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from application.intake import Delivery
from domain.stock import ChangeKind
from infrastructure.channels.base import Accepted, Ping
from infrastructure.channels.sandbox import SandboxServer
from infrastructure.channels.woocommerce.sandbox import WebhookDelivery, WooCommerceSandbox
from infrastructure.channels.woocommerce.translator import translate
from infrastructure.channels.woocommerce.verifier import verify
from infrastructure.config import ChannelConfig
from tests.helpers import random_sku
from tests.integration.intake_fixtures import WOO_SECRET, running_intake, wait_until

KEY, SECRET = "ck_test", "cs_test"
HOOK_SECRET = "wc_webhook_secret"
CHANNEL = ChannelConfig(id="woo", kind="woocommerce", webhook_secrets=(HOOK_SECRET,))
API = "/wp-json/wc/v3"


@dataclass
class Receiver:
    """A webhook endpoint that keeps what it receives and answers `status`."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=self.status)


@dataclass
class Store:
    sandbox: WooCommerceSandbox
    url: str
    receiver: Receiver
    hook_url: str

    def api(self, method: str, path: str, **options) -> httpx.Response:
        options.setdefault("auth", (KEY, SECRET))
        return httpx.request(method, f"{self.url}{API}{path}", **options)


@pytest.fixture
def store() -> Iterator[Store]:
    sandbox, receiver = WooCommerceSandbox(KEY, SECRET, auto_deliver=False), Receiver()
    target = Starlette(routes=[Route("/webhooks/woo", receiver.hook, methods=["POST"])])
    with SandboxServer(sandbox.app) as server, SandboxServer(target) as hooks:
        yield Store(sandbox, server.url, receiver, f"{hooks.url}/webhooks/woo")
    sandbox.close()


class NoMemory:
    def recall(self, channel_id: str, order_id: str) -> None:
        return None


def verified_translation(sent: WebhookDelivery):
    headers = {name.lower(): value for name, value in sent.headers.items()}
    verdict = verify(CHANNEL, headers, sent.body, datetime.now(UTC))
    assert isinstance(verdict, Accepted)
    now = datetime.now(UTC)
    delivery = Delivery(1, "woo", verdict.delivery_key, verdict.topic, headers, sent.body, now)
    return translate(CHANNEL, delivery, NoMemory())


# REST API ------------------------------------------------------------------------------------


def test_a_batch_of_101_objects_is_refused_with_413_and_100_are_accepted(store):
    ids = [store.sandbox.add_product(f"S-{n}", 0) for n in range(101)]
    update = [{"id": i, "stock_quantity": 4} for i in ids]
    refused = store.api("POST", "/products/batch", json={"update": update})
    assert refused.status_code == 413
    assert refused.json() == {
        "code": "woocommerce_rest_request_entity_too_large",
        "message": "Unable to accept more than 100 items for this request.",
        "data": {"status": 413},
    }
    assert store.sandbox.stock("S-0") == 0
    accepted = store.api("POST", "/products/batch", json={"update": update[:100]})
    assert accepted.status_code == 200
    assert [item["stock_quantity"] for item in accepted.json()["update"]] == [4] * 100


def test_a_batch_refuses_per_item_what_it_cannot_update(store):
    tee = store.sandbox.add_product("TEE", None)
    small = store.sandbox.add_product("TEE-S", 1, parent=tee)
    mug = store.sandbox.add_product("MUG", 1)
    answer = store.api(
        "POST",
        f"/products/{tee}/variations/batch",
        json={"update": [{"id": small, "stock_quantity": 5}, {"id": mug, "stock_quantity": 5}]},
    )
    applied, refused = answer.json()["update"]
    assert applied["stock_quantity"] == 5
    assert refused["error"]["code"] == "woocommerce_rest_product_variation_invalid_id"
    assert store.sandbox.stock("MUG") == 1


def test_requests_without_credentials_get_woocommerces_401(store):
    answer = store.api("GET", "/products", auth=None)
    assert answer.status_code == 401
    assert answer.json() == {
        "code": "woocommerce_rest_cannot_view",
        "message": "Sorry, you cannot list resources.",
        "data": {"status": 401},
    }
    wrong = store.api("GET", "/products", auth=(KEY, "nope"))
    assert wrong.json()["message"] == "Consumer secret is invalid."


def test_keys_in_the_query_string_are_accepted_and_skus_find_variations(store):
    tee = store.sandbox.add_product("TEE", None)
    store.sandbox.add_product("TEE-S", 1, parent=tee)
    store.sandbox.add_product("MUG", 2)
    query = {"consumer_key": KEY, "consumer_secret": SECRET, "sku": "TEE-S,MUG"}
    answer = store.api("GET", "/products", auth=None, params=query)
    assert answer.status_code == 200
    assert {(p["sku"], p["parent_id"], p["stock_quantity"]) for p in answer.json()} == {
        ("TEE-S", tee, 1),
        ("MUG", 0, 2),
    }
    assert answer.headers["x-wp-total"] == "2"
    assert store.api("GET", "/products", params={"per_page": 101}).status_code == 400


# Webhooks ------------------------------------------------------------------------------------


def test_a_purchase_sends_signed_php_escaped_webhooks_that_verify_and_translate(store):
    store.sandbox.add_product("WOO-1", 5, name="Café mug")
    for topic in ("order.created", "order.updated", "product.updated"):
        store.sandbox.webhooks.add(topic, store.hook_url, HOOK_SECRET)
    order_id = store.sandbox.buy("WOO-1", 2)
    sent = {s.topic: s for s in store.sandbox.webhooks.deliver_pending()}
    assert {topic: s.status for topic, s in sent.items()} == {
        "order.created": 200,
        "order.updated": 200,
        "product.updated": 200,
    }
    order = sent["order.created"]
    assert b"Caf\\u00e9 mug" in order.body
    assert (
        f"https:\\/\\/shop.example\\/wp-json\\/wc\\/v3\\/orders\\/{order_id}".encode() in order.body
    )
    digest = hmac.new(HOOK_SECRET.encode(), order.body, hashlib.sha256).digest()
    assert order.headers["X-WC-Webhook-Signature"] == base64.b64encode(digest).decode()
    assert order.headers["X-WC-Webhook-Source"] == "https://shop.example/"
    assert (order.headers["X-WC-Webhook-Resource"], order.headers["X-WC-Webhook-Event"]) == (
        "order",
        "created",
    )
    assert store.receiver.received[0][1] == order.body  # the bytes as signed
    (sale,) = verified_translation(order).changes
    assert (sale.kind, sale.sku, sale.quantity) == (ChangeKind.SALE, "WOO-1", 2)
    (seen,) = verified_translation(sent["product.updated"]).observations
    assert (seen.sku, seen.quantity) == ("WOO-1", 3)


def test_a_payload_is_built_when_sent_and_one_delivery_waits_per_resource(store):
    store.sandbox.add_product("WOO-1", 5)
    store.sandbox.webhooks.add("product.updated", store.hook_url, HOOK_SECRET)
    store.sandbox.buy("WOO-1", 1)
    store.sandbox.set_stock("WOO-1", 40)
    (sent,) = store.sandbox.webhooks.deliver_pending()
    assert json.loads(sent.body)["stock_quantity"] == 40


def test_a_failed_delivery_is_never_retried_and_the_seventh_in_a_row_disables_the_webhook(store):
    store.sandbox.add_product("WOO-1", 100)
    hook = store.sandbox.webhooks.add("product.updated", store.hook_url, HOOK_SECRET)
    store.receiver.status = 500
    for failures in range(1, 7):
        store.sandbox.set_stock("WOO-1", failures)
        assert [s.status for s in store.sandbox.webhooks.deliver_pending()] == [500]
        assert store.sandbox.webhooks.deliver_pending() == []  # not retried
        assert (hook.status, hook.failure_count) == ("active", failures)
    store.sandbox.set_stock("WOO-1", 7)
    store.sandbox.webhooks.deliver_pending()
    assert hook.status == "disabled"
    store.receiver.status = 200
    store.sandbox.set_stock("WOO-1", 8)
    assert store.sandbox.webhooks.deliver_pending() == []
    assert len(store.receiver.received) == 7


def test_a_success_resets_the_failure_count(store):
    store.sandbox.add_product("WOO-1", 100)
    hook = store.sandbox.webhooks.add("product.updated", store.hook_url, HOOK_SECRET)
    store.receiver.status = 503
    for quantity in range(5):
        store.sandbox.set_stock("WOO-1", quantity)
        store.sandbox.webhooks.deliver_pending()
    store.receiver.status = 302  # a redirect counts as delivered; it is not followed
    store.sandbox.set_stock("WOO-1", 9)
    store.sandbox.webhooks.deliver_pending()
    assert (hook.status, hook.failure_count) == ("active", 0)


def test_the_creation_ping_is_unsigned_and_verifies_as_a_ping(store):
    hook = store.sandbox.webhooks.add("order.created", store.hook_url, HOOK_SECRET)
    assert store.sandbox.webhooks.ping(hook.id) == 200
    headers, body = store.receiver.received[0]
    assert body == f"webhook_id={hook.id}".encode()
    assert isinstance(verify(CHANNEL, headers, body, datetime.now(UTC)), Ping)


def test_the_control_routes_drive_the_store_over_http(store):
    control = f"{store.url}/_sandbox"
    assert httpx.post(f"{control}/products", json={"sku": "WOO-1", "stock": 3}).status_code == 201
    assert httpx.post(f"{control}/buy", json={"sku": "WOO-1", "quantity": 5}).status_code == 409
    assert httpx.post(f"{control}/buy", json={"sku": "WOO-1", "quantity": 2}).status_code == 201
    httpx.put(f"{control}/stock/WOO-1", json={"quantity": 9})
    assert httpx.get(f"{control}/stock").json() == {"WOO-1": 9}
    httpx.put(f"{control}/throttle", json={"retry_after": 3})
    assert store.api("GET", "/products").headers["retry-after"] == "3"
    httpx.delete(f"{control}/throttle")
    httpx.put(f"{control}/faults", json={"outage": True})
    assert store.api("GET", "/products").status_code == 503
    assert httpx.get(f"{control}/calls").json() == {"products.list": 2}


# End to end ----------------------------------------------------------------------------------


def test_a_shoppers_purchase_reaches_invsyncs_ledger(ledger, database_url, redis_url):
    from tests.integration.test_intake import committed, receive

    sku = random_sku()
    sandbox = WooCommerceSandbox(KEY, SECRET, delivery_delay=0.0)
    with running_intake(ledger, database_url, redis_url) as service:
        receive(service, sku, 10)
        wait_until(lambda: committed(ledger, sku) == 0)
        sandbox.add_product(sku, 10)
        for topic in ("order.created", "order.updated", "product.updated"):
            sandbox.webhooks.add(topic, f"{service.url}/webhooks/woo-eu", WOO_SECRET)
        order_id = sandbox.buy(sku, 3)
        wait_until(lambda: committed(ledger, sku) == 3)
        sandbox.set_order_status(order_id, "completed")
        wait_until(lambda: ledger.get_item(sku).totals.on_hand == 7)
        assert committed(ledger, sku) == 0
        assert {s.status for s in sandbox.webhooks.sent} == {200}
    sandbox.close()
