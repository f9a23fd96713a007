"""Webhook intake end to end: real HTTP, PostgreSQL, Redis and Dramatiq workers."""

import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from application.errors import UnknownSku
from application.ledger_queries import LedgerQueries
from application.receipts import HistoryFilter
from tests.channels import (
    internal_headers,
    receipt_document,
    shopify_headers,
    shopify_order,
    woocommerce_body,
    woocommerce_headers,
)
from tests.helpers import assert_problem, random_sku
from tests.integration.intake_fixtures import (
    ERP_SECRET,
    SHOPIFY_SECRET,
    WOO_SECRET,
    running_intake,
    wait_until,
)


@pytest.fixture(scope="module")
def service(ledger, database_url, redis_url):
    with running_intake(ledger, database_url, redis_url) as running:
        yield running


def post_shopify(
    service,
    body: bytes,
    topic: str = "orders/create",
    webhook_id: str | None = None,
    secret: str = SHOPIFY_SECRET,
) -> httpx.Response:
    headers = shopify_headers(secret, body, topic, webhook_id or str(uuid.uuid4()))
    return httpx.post(f"{service.url}/webhooks/shopify-us", content=body, headers=headers)


def receive(service, sku: str, quantity: int) -> None:
    body = receipt_document(sku, quantity, f"po-{uuid.uuid4()}")
    answer = httpx.post(
        f"{service.url}/webhooks/erp",
        content=body,
        headers=internal_headers(ERP_SECRET, body, str(uuid.uuid4())),
    )
    assert answer.status_code == 200, answer.text


def committed(ledger, sku: str) -> int:
    try:
        return LedgerQueries(ledger).get_item(sku).totals.committed
    except UnknownSku:
        return -1


def inbox_rows(database_url: str, channel_id: str, key: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM inbox_deliveries WHERE channel_id = %s AND delivery_key = %s",
            [channel_id, key],
        ).fetchone()[0]


def test_a_signed_order_reaches_the_ledger(service, ledger, queries):
    sku = random_sku()
    receive(service, sku, 10)
    wait_until(lambda: committed(ledger, sku) == 0)
    answer = post_shopify(service, shopify_order(1001, [(1, sku, 3)]))
    assert answer.status_code == 200
    assert answer.json()["status"] == "stored"
    wait_until(lambda: committed(ledger, sku) == 3)
    sold = queries.history(sku, HistoryFilter()).events[0]
    assert sold.business_key == "shopify-us:order:1001:line:1:main:sale:v1"
    assert sold.source == "shopify-us"


def test_the_same_delivery_sent_three_times_at_once_changes_the_ledger_once(
    service, ledger, queries, database_url
):
    sku = random_sku()
    receive(service, sku, 10)
    wait_until(lambda: committed(ledger, sku) == 0)
    body = shopify_order(2002, [(7, sku, 2)])
    webhook_id = str(uuid.uuid4())
    with ThreadPoolExecutor(3) as pool:
        answers = list(
            pool.map(lambda _: post_shopify(service, body, webhook_id=webhook_id), range(3))
        )
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert sorted(a.json()["status"] for a in answers) == ["duplicate", "duplicate", "stored"]
    wait_until(lambda: committed(ledger, sku) == 2)
    assert inbox_rows(database_url, "shopify-us", webhook_id) == 1
    assert len(queries.history(sku, HistoryFilter()).events) == 2


def test_the_same_sale_in_two_different_deliveries_counts_once(service, ledger):
    sku = random_sku()
    receive(service, sku, 10)
    wait_until(lambda: committed(ledger, sku) == 0)
    body = shopify_order(3003, [(9, sku, 4)])
    assert post_shopify(service, body, "orders/create").status_code == 200
    assert post_shopify(service, body, "orders/updated").status_code == 200
    wait_until(lambda: committed(ledger, sku) == 4)
    other = random_sku()  # a later delivery, applied after both: the first two are done
    receive(service, other, 1)
    wait_until(lambda: committed(ledger, other) == 0)
    assert committed(ledger, sku) == 4


def test_a_cancellation_before_its_order_converges(service, ledger, queries):
    sku = random_sku()
    receive(service, sku, 10)
    wait_until(lambda: committed(ledger, sku) == 0)
    cancelled = shopify_order(4004, [(3, sku, 5)], cancelled_at="2026-11-28T11:00:00Z")
    assert post_shopify(service, cancelled, "orders/cancelled").status_code == 200
    # A cancelled order teaches, and holds nothing: no stock event at all.
    wait_until(lambda: queries.channel_order("shopify-us", "4004") is not None)
    assert len(queries.history(sku, HistoryFilter()).events) == 1
    assert post_shopify(service, shopify_order(4004, [(3, sku, 5)])).status_code == 200
    marker = random_sku()
    receive(service, marker, 1)
    wait_until(lambda: committed(ledger, marker) == 0)
    item = queries.get_item(sku)
    assert item.totals.committed == 0
    assert item.totals.on_hand == 10


def test_a_refund_with_restock_returns_the_units(service, ledger, queries):
    sku = random_sku()
    receive(service, sku, 5)
    wait_until(lambda: committed(ledger, sku) == 0)
    refund = json.dumps(
        {
            "id": 929361464,
            "order_id": 450789469,
            "created_at": "2026-11-28T13:53:19-05:00",
            "refund_line_items": [
                {
                    "id": 1,
                    "line_item_id": 5,
                    "quantity": 2,
                    "restock_type": "return",
                    "line_item": {"id": 5, "sku": sku, "quantity": 2},
                },
                {
                    "id": 2,
                    "line_item_id": 6,
                    "quantity": 1,
                    "restock_type": "no_restock",
                    "line_item": {"id": 6, "sku": sku, "quantity": 1},
                },
            ],
        }
    ).encode()
    assert post_shopify(service, refund, "refunds/create").status_code == 200
    wait_until(lambda: queries.get_item(sku).totals.on_hand == 7)


def test_a_forged_or_tampered_webhook_is_refused_and_nothing_is_stored(service, database_url):
    body = shopify_order(5005, [(1, "ANY", 1)])
    webhook_id = str(uuid.uuid4())
    forged = post_shopify(service, body, webhook_id=webhook_id, secret="wrong")
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    headers = shopify_headers(SHOPIFY_SECRET, body, "orders/create", webhook_id)
    tampered = httpx.post(
        f"{service.url}/webhooks/shopify-us", content=body + b" ", headers=headers
    )
    assert tampered.status_code == 401
    unsigned = httpx.post(f"{service.url}/webhooks/shopify-us", content=body)
    assert unsigned.status_code == 401
    assert inbox_rows(database_url, "shopify-us", webhook_id) == 0
    metrics = httpx.get(f"{service.url}/metrics").text
    assert 'invsync_webhooks_rejected_total{channel="shopify-us",reason="signature"}' in metrics


def test_an_old_secret_still_verifies_during_rotation(service):
    answer = post_shopify(service, shopify_order(5006, [(1, random_sku(), 1)]), secret="old-secret")
    assert answer.status_code == 200


def test_an_unknown_channel_is_404_and_an_oversized_body_413(service):
    assert httpx.post(f"{service.url}/webhooks/nobody", content=b"{}").status_code == 404
    big = b"x" * 70_000
    answer = httpx.post(
        f"{service.url}/webhooks/shopify-us",
        content=big,
        headers=shopify_headers(SHOPIFY_SECRET, big, "orders/create", "big"),
    )
    assert answer.status_code == 413


def test_a_body_streamed_past_the_limit_without_a_length_is_413_and_nothing_is_stored(
    service, database_url
):
    webhook_id = str(uuid.uuid4())

    def chunks():
        for _ in range(70):  # 70,000 bytes, the channel file's limit 65,536
            yield b" " * 1000

    answer = httpx.post(
        f"{service.url}/webhooks/shopify-us",
        content=chunks(),  # chunked: no Content-Length to refuse it by
        headers=shopify_headers(SHOPIFY_SECRET, b"", "orders/create", webhook_id),
    )
    assert "65536 bytes" in assert_problem(answer, 413)["detail"]
    assert answer.headers["connection"] == "close"
    assert inbox_rows(database_url, "shopify-us", webhook_id) == 0


def test_a_webhook_request_the_endpoint_does_not_take_gets_the_api_s_answers(service):
    url = f"{service.url}/webhooks/shopify-us"
    assert_problem(httpx.post(f"{url}?x=%00", content=b"{}"), 400)  # a NUL, as anywhere
    assert_problem(httpx.put(url, content=b"{}"), 405)
    assert_problem(httpx.post(f"{url}/more", content=b"{}"), 404)
    assert_problem(httpx.post(f"{service.url}/webhooks/", content=b"{}"), 404)


def test_an_expired_internal_timestamp_is_refused(service):
    body = receipt_document(random_sku(), 1, "po-old")
    headers = internal_headers(ERP_SECRET, body, "old", timestamp=1_000_000_000)
    answer = httpx.post(f"{service.url}/webhooks/erp", content=body, headers=headers)
    assert answer.status_code == 401
    assert "5 minutes" in answer.json()["detail"]


def test_a_sale_of_an_unknown_sku_waits_and_applies_itself_once_it_is_received(service, ledger):
    sku, other = random_sku(), random_sku()
    answer = post_shopify(service, shopify_order(6006, [(1, sku, 2), (2, other, 1)]))
    assert answer.status_code == 200
    key = answer.json()["delivery_key"]

    def waiting():
        rows = httpx.get(f"{service.url}/api/v1/deliveries?state=waiting").json()["deliveries"]
        return next((r for r in rows if r["delivery_key"] == key), None)

    wait_until(waiting)
    assert sorted(waiting()["waiting_for"]) == sorted([sku, other])
    assert sku in waiting()["reason"]
    receive(service, sku, 5)
    wait_until(lambda: committed(ledger, sku) == 0)
    time.sleep(1.5)  # a sweep or two: one of its SKUs is still unknown, so it still waits
    assert waiting() is not None
    assert committed(ledger, sku) == 0
    receive(service, other, 5)
    # Nobody retries it: the sweeper sees both SKUs known and sends it again.
    wait_until(lambda: committed(ledger, sku) == 2 and committed(ledger, other) == 1)
    assert waiting() is None
    assert httpx.post(f"{service.url}/api/v1/deliveries/999999999/retry").status_code == 404


def test_an_untranslatable_signed_delivery_is_answered_2xx_and_parked(service):
    body = b"not json at all"
    answer = post_shopify(service, body, topic="orders/create")
    assert answer.status_code == 200
    key = answer.json()["delivery_key"]

    def parked_reason():
        rows = httpx.get(f"{service.url}/api/v1/deliveries?state=parked").json()["deliveries"]
        return next((r["reason"] for r in rows if r["delivery_key"] == key), None)

    wait_until(parked_reason)
    assert parked_reason() == "the body is not JSON"
    assert httpx.get(f"{service.url}/api/v1/deliveries?state=nonsense").status_code == 400


def test_a_parked_delivery_is_read_with_its_payload_and_discarded_for_good(service):
    body = b'{"id": "<script>alert(1)</script>", "\xff": 1'
    key = post_shopify(service, body, topic="orders/create").json()["delivery_key"]

    def listed(state: str):
        rows = httpx.get(f"{service.url}/api/v1/deliveries?state={state}").json()["deliveries"]
        return next((r for r in rows if r["delivery_key"] == key), None)

    wait_until(lambda: listed("parked"))
    delivery_id = listed("parked")["id"]
    payload = httpx.get(f"{service.url}/api/v1/deliveries/{delivery_id}").json()
    assert payload["body"] == body.decode(errors="replace")
    assert payload["headers"]["x-shopify-topic"] == "orders/create"
    assert payload["state"] == "parked"

    gone = httpx.delete(f"{service.url}/api/v1/deliveries/{delivery_id}")
    assert gone.json() == {"status": "discarded", "id": delivery_id}
    assert listed("parked") is None
    assert listed("discarded")["reason"] == "discarded by api"
    # Discarded is final: it is neither retried nor discarded again.
    assert httpx.post(f"{service.url}/api/v1/deliveries/{delivery_id}/retry").status_code == 404
    assert httpx.delete(f"{service.url}/api/v1/deliveries/{delivery_id}").status_code == 404
    for missing in ("999999999", "abc"):
        assert httpx.get(f"{service.url}/api/v1/deliveries/{missing}").status_code == 404
        assert httpx.delete(f"{service.url}/api/v1/deliveries/{missing}").status_code == 404


def test_a_waiting_delivery_discarded_never_applies_once_its_sku_is_received(service, ledger):
    sku = random_sku()
    key = post_shopify(service, shopify_order(6007, [(1, sku, 2)])).json()["delivery_key"]

    def waiting():
        rows = httpx.get(f"{service.url}/api/v1/deliveries?state=waiting").json()["deliveries"]
        return next((r for r in rows if r["delivery_key"] == key), None)

    wait_until(waiting)
    assert httpx.delete(f"{service.url}/api/v1/deliveries/{waiting()['id']}").status_code == 200
    receive(service, sku, 5)
    wait_until(lambda: LedgerQueries(ledger).known_skus([sku]))
    time.sleep(1.5)  # a sweep or two: a waiting delivery would have been sent again by now
    assert committed(ledger, sku) == 0


def test_a_woocommerce_order_processing_cancelled_processing_nets_exactly(service, ledger, queries):
    sku = random_sku()
    receive(service, sku, 10)
    wait_until(lambda: committed(ledger, sku) == 0)
    order_id = random.randrange(10**6, 10**9)

    def post(status: str, minute: int) -> None:
        body = woocommerce_body(
            {
                "id": order_id,
                "status": status,
                "date_modified_gmt": f"2026-11-28T10:{minute:02d}:00",
                "line_items": [
                    {"id": 315, "product_id": 93, "variation_id": 0, "quantity": 2, "sku": sku}
                ],
                "_links": {
                    "self": [{"href": f"https://shop.example/wp-json/wc/v3/orders/{order_id}"}]
                },
            }
        )
        answer = httpx.post(
            f"{service.url}/webhooks/woo-eu",
            content=body,
            headers=woocommerce_headers(WOO_SECRET, body, "order.updated"),
        )
        assert answer.status_code == 200, answer.text

    post("processing", 1)
    wait_until(lambda: committed(ledger, sku) == 2)
    post("cancelled", 2)
    wait_until(lambda: committed(ledger, sku) == 0)
    post("processing", 3)
    wait_until(lambda: committed(ledger, sku) == 2)
    post("processing", 1)  # a stale copy arriving late changes nothing
    post("completed", 4)
    wait_until(lambda: queries.get_item(sku).totals.on_hand == 8)
    assert committed(ledger, sku) == 0


def test_the_woocommerce_creation_ping_is_answered_200_unsigned(service, database_url):
    answer = httpx.post(
        f"{service.url}/webhooks/woo-eu",
        content=b"webhook_id=12",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    unsigned_json = httpx.post(f"{service.url}/webhooks/woo-eu", content=b'{"id": 1}')
    assert unsigned_json.status_code == 401
