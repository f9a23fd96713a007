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
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from application.intake import Delivery
from infrastructure.channels.base import Accepted, Ping, SignedRequest
from infrastructure.channels.woocommerce.auth import OAuth1Query
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.channels.woocommerce.translator import translate
from infrastructure.channels.woocommerce.verifier import verify
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox
from sandboxes.woocommerce.webhooks import WebhookDelivery
from tests.helpers import random_sku
from tests.integration.intake_fixtures import WOO_SECRET, running_intake, wait_until
from tests.integration.tls import tls_server

KEY, SECRET = "ck_test", "cs_test"
HOOK_SECRET = "wc_webhook_secret"
CHANNEL = WooCommerceConfig(id="woo", webhook_secrets=(HOOK_SECRET,))
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
        """A REST call signed as WooCommerce wants it over plain HTTP: OAuth 1.0a."""
        options.setdefault("auth", OAuth1Query(KEY, SECRET))
        return httpx.request(method, f"{self.url}{API}{path}", **options)


@pytest.fixture
def store() -> Iterator[Store]:
    sandbox, receiver = WooCommerceSandbox(KEY, SECRET, auto_deliver=False), Receiver()
    target = Starlette(routes=[Route("/webhooks/woo", receiver.hook, methods=["POST"])])
    with SandboxServer(sandbox.app) as server, SandboxServer(target) as hooks:
        yield Store(sandbox, server.url, receiver, f"{hooks.url}/webhooks/woo")
    sandbox.close()


class NoRefunds:
    def order_refunds(self, channel_id: object, order_id: str) -> list:
        return []


def verified_translation(sent: WebhookDelivery):
    headers = {name.lower(): value for name, value in sent.headers.items()}
    verdict = verify(CHANNEL, SignedRequest(headers, sent.body), datetime.now(UTC))
    assert isinstance(verdict, Accepted)
    now = datetime.now(UTC)
    delivery = Delivery(1, "woo", verdict.delivery_key, verdict.topic, headers, sent.body, now)
    return translate(CHANNEL, delivery, NoRefunds())


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


CANNOT_LIST = {
    "code": "woocommerce_rest_cannot_view",
    "message": "Sorry, you cannot list resources.",
    "data": {"status": 401},
}


def test_requests_without_credentials_get_woocommerces_401(store):
    answer = store.api("GET", "/products", auth=None)
    assert answer.status_code == 401
    assert answer.json() == CANNOT_LIST
    wrong = store.api("GET", "/products", auth=OAuth1Query(KEY, "nope"))
    assert wrong.json()["message"] == "Invalid signature - provided signature does not match."


def test_over_plain_http_basic_credentials_and_keys_in_the_query_are_not_looked_at(store):
    basic = store.api("GET", "/products", auth=(KEY, SECRET))
    assert (basic.status_code, basic.json()) == (401, CANNOT_LIST)
    query = {"consumer_key": KEY, "consumer_secret": SECRET}
    keys = store.api("GET", "/products", auth=None, params=query)
    assert (keys.status_code, keys.json()) == (401, CANNOT_LIST)


def test_over_plain_http_an_oauth_signature_is_checked_and_its_nonce_used_once(store):
    store.sandbox.add_product("MUG", 2)
    signed = httpx.Client().build_request(
        "GET", f"{store.url}{API}/products", params={"sku": "MUG"}
    )
    signed = next(OAuth1Query(KEY, SECRET).auth_flow(signed))
    with httpx.Client() as client:
        first, replay = client.send(signed), client.send(signed)
    assert [p["sku"] for p in first.json()] == ["MUG"]
    assert (replay.status_code, replay.json()["message"]) == (
        401,
        "Invalid nonce - nonce has already been used.",
    )
    store.sandbox.add_key("ck_read", "cs_read", write=False)
    update = {"update": [{"id": store.sandbox.add_product("CUP", 1), "stock_quantity": 3}]}
    read_only = OAuth1Query("ck_read", "cs_read")
    refused = store.api("POST", "/products/batch", json=update, auth=read_only)
    assert refused.json()["message"] == "The API key provided does not have write permissions."


def test_an_oauth_signature_may_come_in_the_authorization_header_with_hmac_sha1(store):
    store.sandbox.add_product("MUG", 2)
    client = Client(KEY, client_secret=SECRET, signature_method=SIGNATURE_HMAC_SHA1)
    url, headers, _ = client.sign(f"{store.url}{API}/products?sku=MUG", "GET")
    answer = httpx.get(url, headers=headers)
    assert headers["Authorization"].startswith("OAuth ")
    assert [p["sku"] for p in answer.json()] == ["MUG"]


def test_over_https_keys_are_accepted_as_basic_credentials_or_in_the_query(tmp_path):
    sandbox = WooCommerceSandbox(KEY, SECRET, auto_deliver=False)
    tee = sandbox.add_product("TEE", None)
    sandbox.add_product("TEE-S", 1, parent=tee)
    sandbox.add_product("MUG", 2)
    with tls_server(sandbox.app, tmp_path) as server, httpx.Client(verify=server.trust) as client:
        url = f"{server.url}{API}/products"
        query = {"consumer_key": KEY, "consumer_secret": SECRET, "sku": "TEE-S,MUG"}
        answer = client.get(url, params=query)
        assert answer.status_code == 200
        assert {(p["sku"], p["parent_id"], p["stock_quantity"]) for p in answer.json()} == {
            ("TEE-S", tee, 1),
            ("MUG", 0, 2),
        }
        assert answer.headers["x-wp-total"] == "2"
        assert client.get(url, params={"per_page": 101}, auth=(KEY, SECRET)).status_code == 400
        wrong = client.get(url, auth=(KEY, "nope"))
        assert (wrong.status_code, wrong.json()["message"]) == (401, "Consumer secret is invalid.")
        assert client.get(url, auth=OAuth1Query(KEY, SECRET)).status_code == 200
    sandbox.close()


def test_keys_in_the_query_string_find_skus_and_variations(store):
    tee = store.sandbox.add_product("TEE", None)
    store.sandbox.add_product("TEE-S", 1, parent=tee)
    answer = store.api("GET", "/products", params={"sku": "TEE-S"})
    assert [(p["sku"], p["parent_id"]) for p in answer.json()] == [("TEE-S", tee)]
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
    (update,) = verified_translation(order).orders
    assert (update.order_id, update.skus()) == (str(order_id), {"WOO-1"})
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
    assert isinstance(verify(CHANNEL, SignedRequest(headers, body), datetime.now(UTC)), Ping)


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


def test_a_shoppers_purchase_reaches_invsyncs_ledger(ledger, queries, database_url, redis_url):
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
        wait_until(lambda: queries.get_item(sku).totals.on_hand == 7)
        assert committed(ledger, sku) == 0
        assert {s.status for s in sandbox.webhooks.sent} == {200}
    sandbox.close()


# Stock management off ------------------------------------------------------------------------


def test_stock_quantity_is_accepted_and_ignored_where_stock_is_not_managed(store):
    loose = store.sandbox.add_product("LOOSE", None)  # the product's "Manage stock?" is off
    answer = store.api("PUT", f"/products/{loose}", json={"stock_quantity": 7})
    assert answer.status_code == 200
    assert (answer.json()["manage_stock"], answer.json()["stock_quantity"]) == (False, None)
    assert store.sandbox.stock("LOOSE") is None
    mug = store.sandbox.add_product("MUG", 4)
    store.sandbox.set_stock_management(False)  # the store's "Enable stock management" is off
    update = {"update": [{"id": mug, "manage_stock": True, "stock_quantity": 9}]}
    (item,) = store.api("POST", "/products/batch", json=update).json()["update"]
    assert (item["manage_stock"], item["stock_quantity"]) == (False, None)
    assert store.sandbox.stock("MUG") == 4
    store.sandbox.set_stock_management(True)
    assert store.api("GET", f"/products/{mug}").json()["stock_quantity"] == 4


# Orders, refunds, deletions ------------------------------------------------------------------


def refund_lines(refund: dict) -> list[tuple[int, str, int, str]]:
    return [
        (line["quantity"], line["sku"], line["refund_total"], line["meta_data"][0]["value"])
        for line in refund["line_items"]
    ]


def test_a_partial_refund_lists_negative_quantities_and_the_line_it_refunds(store):
    store.sandbox.add_product("WOO-1", 10)
    store.sandbox.add_product("WOO-2", 10)
    order_id = store.sandbox.checkout({"WOO-1": 3, "WOO-2": 1})
    first, second = store.sandbox.line_ids(order_id)
    kept = store.sandbox.refund(order_id, {first: 1}, restock=False, reason="broken")
    back = store.sandbox.refund(order_id, {first: 1, second: 1}, restock=True)
    assert (store.sandbox.stock("WOO-1"), store.sandbox.stock("WOO-2")) == (8, 10)
    refunds = store.api("GET", f"/orders/{order_id}/refunds").json()
    assert [r["id"] for r in refunds] == [back, kept]  # newest first
    assert refund_lines(refunds[1]) == [(-1, "WOO-1", 10.0, str(first))]
    assert refund_lines(refunds[0]) == [
        (-1, "WOO-1", 10.0, str(first)),
        (-1, "WOO-2", 10.0, str(second)),
    ]
    assert refunds[1]["reason"] == "broken"
    assert refunds[1]["amount"] == "10.00"
    assert store.api("GET", f"/orders/{order_id}/refunds/{kept}").json() == refunds[1]
    order = store.api("GET", f"/orders/{order_id}").json()
    assert order["status"] == "processing"
    assert order["refunds"] == [
        {"id": back, "reason": "", "total": "-20.00"},
        {"id": kept, "reason": "broken", "total": "-10.00"},
    ]
    meta = {
        line["sku"]: {m["key"]: m["value"] for m in line["meta_data"]}
        for line in order["line_items"]
    }
    assert meta == {
        "WOO-1": {"_reduced_stock": "2", "_restock_refunded_items": "1"},
        "WOO-2": {"_reduced_stock": "0", "_restock_refunded_items": "1"},
    }


def test_a_refund_sends_order_updated_with_the_refunds_and_restocking_sends_product_updated(
    store,
):
    store.sandbox.add_product("WOO-1", 10)
    order_id = store.sandbox.buy("WOO-1", 2)
    for topic in ("order.updated", "product.updated"):
        store.sandbox.webhooks.add(topic, store.hook_url, HOOK_SECRET)
    (line,) = store.sandbox.line_ids(order_id)
    refund_id = store.sandbox.refund(order_id, {line: 2}, restock=True)
    sent = {s.topic: json.loads(s.body) for s in store.sandbox.webhooks.deliver_pending()}
    assert sent["order.updated"]["status"] == "refunded"  # every unit refunded
    assert sent["order.updated"]["refunds"] == [{"id": refund_id, "reason": "", "total": "-20.00"}]
    assert sent["product.updated"]["stock_quantity"] == 10


def test_what_cannot_be_refunded_or_found_is_refused(store):
    store.sandbox.add_product("WOO-1", 10)
    order_id = store.sandbox.buy("WOO-1", 2)
    (line,) = store.sandbox.line_ids(order_id)
    with pytest.raises(ValueError, match="2 units left to refund, not 3"):
        store.sandbox.refund(order_id, {line: 3}, restock=True)
    assert store.api("GET", "/orders/999/refunds").json() == []  # no refunds of no order
    unknown = store.api("GET", "/orders/999").json()
    assert (unknown["code"], unknown["data"]["status"]) == (
        "woocommerce_rest_shop_order_invalid_id",
        404,
    )
    missing = store.api("GET", f"/orders/{order_id}/refunds/5").json()
    assert missing["code"] == "woocommerce_rest_invalid_order_refund_id"
    assert store.api("GET", "/orders/999/refunds/5").json()["code"] == (
        "woocommerce_rest_invalid_order_id"
    )
    assert store.api("GET", f"/orders/{order_id}", auth=None).status_code == 401


def test_a_cancelled_order_puts_back_only_what_refunds_did_not_restock(store):
    store.sandbox.add_product("WOO-1", 10)
    order_id = store.sandbox.buy("WOO-1", 3)
    (line,) = store.sandbox.line_ids(order_id)
    store.sandbox.refund(order_id, {line: 1}, restock=True)
    assert store.sandbox.stock("WOO-1") == 8
    store.sandbox.set_order_status(order_id, "cancelled")
    assert store.sandbox.stock("WOO-1") == 10


def test_a_trashed_or_deleted_order_sends_order_deleted_with_its_id_and_a_restored_one_itself(
    store,
):
    store.sandbox.add_product("WOO-1", 10)
    for topic in ("order.deleted", "order.restored"):
        store.sandbox.webhooks.add(topic, store.hook_url, HOOK_SECRET)
    order_id = store.sandbox.buy("WOO-1", 2)
    store.sandbox.trash_order(order_id)
    (deleted,) = store.sandbox.webhooks.deliver_pending()
    assert (deleted.topic, deleted.body) == ("order.deleted", f'{{"id":{order_id}}}'.encode())
    assert deleted.headers["X-WC-Webhook-Event"] == "deleted"
    assert store.sandbox.stock("WOO-1") == 8  # trashing moves no stock
    assert store.api("GET", f"/orders/{order_id}").json()["status"] == "trash"
    store.sandbox.restore_order(order_id)
    (restored,) = store.sandbox.webhooks.deliver_pending()
    assert restored.topic == "order.restored"
    assert json.loads(restored.body)["status"] == "processing"
    assert verified_translation(restored).orders  # a state invsync understands
    store.sandbox.delete_order(order_id)
    (gone,) = store.sandbox.webhooks.deliver_pending()
    assert json.loads(gone.body) == {"id": order_id}
    assert store.api("GET", f"/orders/{order_id}").status_code == 404


def test_the_control_routes_refund_trash_restore_and_switch_stock_management(store):
    control = f"{store.url}/_sandbox"
    httpx.post(f"{control}/products", json={"sku": "WOO-1", "stock": 5})
    order_id = httpx.post(f"{control}/buy", json={"sku": "WOO-1", "quantity": 2}).json()["order_id"]
    (line,) = store.sandbox.line_ids(order_id)
    refund = {"lines": {str(line): 1}, "restock": True}
    assert httpx.post(f"{control}/orders/{order_id}/refunds", json=refund).status_code == 201
    assert store.sandbox.stock("WOO-1") == 4
    too_many = {"lines": {str(line): 5}}
    assert httpx.post(f"{control}/orders/{order_id}/refunds", json=too_many).status_code == 409
    assert httpx.post(f"{control}/orders/{order_id}/trash").status_code == 204
    assert httpx.post(f"{control}/orders/{order_id}/restore").status_code == 204
    assert httpx.post(f"{control}/orders/{order_id}/completed").status_code == 204
    assert store.api("GET", f"/orders/{order_id}").json()["status"] == "completed"
    assert httpx.post(f"{control}/orders/999/trash").status_code == 404
    settings = httpx.put(f"{control}/settings", json={"manage_stock": False})
    assert settings.json() == {"manage_stock": False}
