"""The Walmart sandbox behaves as Walmart documents (CHANNELS.md §5, §7): its events are signed
as the documented vector is, so our verifier accepts them as sent; its API wants the WM_*
headers and a live token; feeds are held to 5 MB and 10 an hour."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from infrastructure.channels.base import Accepted, SignedRequest
from infrastructure.channels.walmart import translator
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.walmart.verifier import verify
from sandboxes.server import SandboxServer
from sandboxes.walmart.seller import WalmartSandbox
from sandboxes.walmart.signer import WalmartSigner
from sandboxes.webhooks import Message
from tests.orders import delivery

CHANNEL = WalmartConfig(
    id="walmart-us",
    webhook_secrets=("wm_secret",),
    push={"enabled": False},
    reconcile={"enabled": False},
)


@pytest.fixture
def walmart() -> Iterator[tuple[WalmartSandbox, httpx.Client]]:
    seller = WalmartSandbox(feed_delay=0.05)
    with SandboxServer(seller.app) as server, httpx.Client(base_url=server.url) as client:
        yield seller, client
    seller.close()


def token(client: httpx.Client, seller: WalmartSandbox) -> dict[str, str]:
    answer = client.post(
        "/v3/token",
        auth=seller.credentials,
        data={"grant_type": "client_credentials"},
        headers={"WM_SVC.NAME": "Walmart Marketplace", "WM_QOS.CORRELATION_ID": "t-1"},
    )
    assert answer.json()["expires_in"] == 900
    return {
        "WM_SEC.ACCESS_TOKEN": answer.json()["access_token"],
        "WM_SVC.NAME": "Walmart Marketplace",
        "WM_QOS.CORRELATION_ID": "c-1",
    }


def test_the_signer_signs_the_documented_vector(monkeypatch):
    monkeypatch.setattr("sandboxes.walmart.signer.time.time", lambda: 1700000000.4)
    signer = WalmartSigner("wm_secret", lambda: "https://hub.example.com/webhooks/walmart")
    signed = signer.sign(Message("PO_CREATED", b'{"eventType":"PO_CREATED"}'))
    assert signed.headers["WM_SEC.TIMESTAMP"] == "1700000000"
    assert signed.headers["WM_SEC.SIGNATURE"] == "QuEsEwtkT2x9hKZ4xyi+jwEqLVDLImAHLJTKIni3UJQ="


def test_an_order_event_is_accepted_and_read_by_our_verifier_and_translator(walmart):
    seller, _ = walmart
    seller.webhooks.url = "http://127.0.0.1:9/webhooks/walmart-us?subscription=1"  # nobody there
    seller.add_item("SKU-1", 5)
    seller.webhooks.retry_delays = ()
    order_id = seller.buy("SKU-1", 2)
    assert seller.webhooks.wait_idle()
    [attempt] = seller.webhooks.attempts
    headers = {name.lower(): value for name, value in attempt.headers.items()}
    request = SignedRequest(headers, attempt.body, "POST", "/webhooks/walmart-us?subscription=1")
    verdict = verify(CHANNEL, request, datetime.now(UTC))
    assert isinstance(verdict, Accepted)
    assert verdict.topic == "PO_CREATED"
    translation = translator.translate(
        CHANNEL, delivery(CHANNEL.id, verdict.topic, attempt.body), None
    )
    [update] = translation.orders
    assert (update.order_id, update.lines["1"].peak("quantity")) == (order_id, 2)
    assert seller.stock("SKU-1") == 3


def test_calls_without_walmarts_headers_or_a_live_token_are_refused(walmart):
    seller, client = walmart
    seller.add_item("SKU-1", 5)
    headers = token(client, seller)
    assert client.get("/v3/inventory", params={"sku": "SKU-1"}, headers=headers).json() == {
        "sku": "SKU-1",
        "quantity": {"unit": "EACH", "amount": 5},
    }
    for missing in ("WM_SVC.NAME", "WM_QOS.CORRELATION_ID"):
        without = {k: v for k, v in headers.items() if k != missing}
        assert (
            client.get("/v3/inventory", params={"sku": "SKU-1"}, headers=without).status_code == 400
        )
    no_token = {k: v for k, v in headers.items() if k != "WM_SEC.ACCESS_TOKEN"}
    assert client.get("/v3/inventory", params={"sku": "SKU-1"}, headers=no_token).status_code == 401
    seller.expire_tokens()
    assert client.get("/v3/inventory", params={"sku": "SKU-1"}, headers=headers).status_code == 401


def test_feeds_are_held_to_five_megabytes_and_ten_an_hour(walmart):
    seller, client = walmart
    seller.add_item("SKU-1", 0)
    headers = token(client, seller)
    items = [{"sku": "SKU-1", "quantity": {"unit": "EACH", "amount": 4}}]
    feed = json.dumps({"InventoryHeader": {"version": "1.4"}, "Inventory": items}).encode()
    huge = b" " * (5 * 1024 * 1024 + 1)

    def post(content: bytes) -> httpx.Response:
        files = {"file": ("inventory.json", content, "application/json")}
        return client.post(
            "/v3/feeds", params={"feedType": "inventory"}, files=files, headers=headers
        )

    assert post(huge).status_code == 413
    answers = [post(feed) for _ in range(9)]  # the refused one counted as a feed too
    assert {a.status_code for a in answers} == {200}
    throttled = post(feed)
    assert throttled.status_code == 429
    refill = int(throttled.headers["X-Next-Replenishment-Time"]) / 1000
    assert 300 < refill - time.time() <= 360  # the next of ten an hour
    feed_id = answers[0].json()["feedId"]
    deadline = time.monotonic() + 5
    while (
        status := client.get(
            f"/v3/feeds/{feed_id}", params={"includeDetails": "true"}, headers=headers
        ).json()
    )["feedStatus"] != "PROCESSED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status["itemDetails"]["itemIngestionStatus"][0]["ingestionStatus"] == "SUCCESS"
    assert seller.stock("SKU-1") == 4
