"""Walmart order webhooks end to end: signed over the method, the path and query as sent, a
timestamp and the body; stored once per event id; applied to the ledger."""

import base64
import hashlib
import hmac
import json
import random
import time
import uuid

import httpx
import pytest

from infrastructure.config import Config
from tests.channels import internal_headers, receipt_document
from tests.helpers import random_sku
from tests.integration.intake_fixtures import ERP_SECRET, channel_config, running_intake, wait_until

SECRET = "wm_secret"
PATH = "/webhooks/walmart-us?subscription=orders"


@pytest.fixture(scope="module")
def service(ledger, database_url, redis_url):
    walmart = {
        "id": "walmart-us",
        "kind": "walmart",
        "webhook_secrets": [SECRET],
        "push": {"enabled": False},
        "reconcile": {"enabled": False},
    }
    base = channel_config()
    config = Config.model_validate(
        {"channels": [*(c.model_dump() for c in base.channels), walmart]}
    )
    with running_intake(ledger, database_url, redis_url, config) as running:
        yield running


def post(service, event, *, at=None, path=PATH, secret=SECRET) -> httpx.Response:
    body = json.dumps(event).encode()
    timestamp = str(int(time.time() if at is None else at))
    digest = hashlib.sha256(body).hexdigest()
    signed = f"POST\n{path}\n{timestamp}\n{digest}".encode()
    signature = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    headers = {
        "WM_SEC.TIMESTAMP": timestamp,
        "WM_SEC.SIGNATURE": signature.decode(),
        "Content-Type": "application/json",
    }
    return httpx.post(f"{service.url}{path}", content=body, headers=headers)


def event(sub_event: str, order_id: str, sku: str, quantity: int, event_id: str | None = None):
    line = {
        "lineNumber": "1",
        "sku": sku,
        "quantity": {"unitOfMeasure": "EACH", "measurementValue": str(quantity)},
    }
    return {
        "source": {
            "eventType": "ORDER_UPDATES",
            "eventTime": "2026-12-01T10:00:00Z",
            "eventId": event_id or str(uuid.uuid4()),
        },
        "payload": {
            "subEventType": sub_event,
            "order": {"purchaseOrderId": order_id, "orderLines": [line]},
        },
    }


def stocked(service, queries, units: int) -> str:
    sku = random_sku("wm")
    body = receipt_document(sku, units, f"po-{uuid.uuid4()}")
    headers = internal_headers(ERP_SECRET, body, str(uuid.uuid4()))
    assert httpx.post(f"{service.url}/webhooks/erp", content=body, headers=headers).is_success
    wait_until(lambda: queries.known_skus([sku]))
    return sku


def test_an_order_commits_once_however_often_delivered_and_a_cancellation_releases_it(
    service, queries
):
    sku = stocked(service, queries, 10)
    order_id = str(random.randrange(10**12, 10**13))
    created = event("PO_CREATED", order_id, sku, 3, event_id="created-" + order_id)
    first = post(service, created)
    assert first.json() == {"status": "stored", "delivery_key": f"event:created-{order_id}"}
    assert post(service, created).json()["status"] == "duplicate"  # Walmart's retry
    wait_until(lambda: queries.get_item(sku).totals.committed == 3)
    assert post(service, event("INTENT_TO_CANCEL", order_id, sku, 3)).status_code == 200
    assert post(service, event("FRAUD_CANCEL", order_id, sku, 3)).status_code == 200
    wait_until(lambda: queries.get_item(sku).totals.committed == 0)
    assert queries.get_item(sku).totals.on_hand == 10


def test_a_delivery_signed_for_another_path_or_query_is_refused(service):
    created = event("PO_CREATED", "1", "SKU", 1)
    answer = post(service, created, path="/webhooks/walmart-us")
    assert answer.status_code == 200  # the same event signed for the path it is posted to
    tampered = event("PO_CREATED", "2", "SKU", 1)
    signed_for = "/webhooks/walmart-us?subscription=other"
    response = post_signed_for(service, tampered, signed_for)
    assert response.status_code == 401
    assert "WM_SEC.SIGNATURE" in response.json()["detail"]


def post_signed_for(service, event, signed_path) -> httpx.Response:
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    signed = f"POST\n{signed_path}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest())
    headers = {"WM_SEC.TIMESTAMP": timestamp, "WM_SEC.SIGNATURE": signature.decode()}
    return httpx.post(f"{service.url}{PATH}", content=body, headers=headers)


def test_a_stale_or_foreign_delivery_is_refused_and_nothing_is_stored(service):
    created = event("PO_CREATED", "3", "SKU", 1)
    stale = post(service, created, at=time.time() - 3600)
    assert stale.status_code == 401
    assert "replay" in stale.json()["detail"]
    assert post(service, created, secret="not-ours").status_code == 401
    assert post(service, created).json()["status"] == "stored"  # neither was stored
