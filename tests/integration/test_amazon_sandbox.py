"""The Amazon sandbox speaks SP-API's, LWA's and SNS's wire formats: its notifications verify
with our SNS verifier and translate with our translator; its refusals look like Amazon's."""

import gzip
import json
import time
import uuid
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
from infrastructure.channels.amazon import sns, translator
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.verifier import make_verifier
from infrastructure.channels.base import Accepted, SignatureInvalid, SignedRequest
from infrastructure.config import Config
from sandboxes.amazon.seller import AmazonSandbox
from sandboxes.amazon.sns import SnsTopic
from sandboxes.server import SandboxServer
from tests.channels import internal_headers, receipt_document
from tests.helpers import random_sku
from tests.integration.amazon_models import sp_api_models
from tests.integration.intake_fixtures import (
    ERP_SECRET,
    channel_config,
    running_intake,
    wait_until,
)
from tests.orders import Stock

TOPIC = "arn:aws:sns:us-east-1:123456789012:sp-api-orders"
FAST_RETRIES = (0.05, 0.05, 0.05)


@dataclass
class Endpoint:
    """Our webhook endpoint as SNS sees it: what arrived, and the statuses to answer with."""

    answers: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def receive(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=self.answers.pop(0) if self.answers else 200)


NO_READS = None  # Amazon's translator reads nothing from the channel


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    endpoint = Endpoint()
    app = Starlette(routes=[Route("/webhooks/amazon-us", endpoint.receive, methods=["POST"])])
    with SandboxServer(app) as server:
        endpoint.url = server.url + "/webhooks/amazon-us"
        yield endpoint


@dataclass
class Running:
    sandbox: AmazonSandbox
    url: str

    @property
    def channel(self) -> AmazonConfig:
        return AmazonConfig(id="amazon-us", sns_topic_arns=(TOPIC,), sns_origins=(self.url,))

    def token(self) -> str:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": "Atzr|sandbox-refresh-token",
            "client_id": "amzn1.application-oa2-client.sandbox",
            "client_secret": "sandbox-client-secret",
        }
        return str(httpx.post(self.url + "/auth/o2/token", data=form).json()["access_token"])


def running(topic: SnsTopic) -> Iterator[Running]:
    sandbox = AmazonSandbox(topic=topic, apply_delay=0.05, feed_delay=0.1, models=sp_api_models())
    with sandbox.server() as server:
        yield Running(sandbox, server.url)
    sandbox.close()
    assert sandbox.model_violations == []  # its answers and reports are what the models allow


@pytest.fixture
def seller(endpoint: Endpoint) -> Iterator[Running]:
    yield from running(SnsTopic(TOPIC, endpoint.url, retry_delays=FAST_RETRIES))


def verified(seller: Running, headers: dict[str, str], body: bytes) -> Accepted:
    verify = make_verifier(sns.CertificateCache())
    verdict = verify(seller.channel, SignedRequest(headers, body), datetime.now(UTC))
    assert isinstance(verdict, Accepted)
    return verdict


def changes(seller: Running, received: list[tuple[dict[str, str], bytes]]):
    """The stock changes the deliveries make, each verified, translated and applied in turn."""
    stock = Stock()
    stock.receive("AMZ-1", 10)
    for headers, body in received:
        verdict = verified(seller, headers, body)
        delivery = Delivery(
            1, "amazon-us", verdict.delivery_key, verdict.topic, {}, body, datetime.now(UTC)
        )
        stock.apply(translator.translate(seller.channel, delivery, NO_READS))
    return [(c.kind, c.sku, c.quantity) for c in stock.changes[1:]]


def test_a_purchase_lowers_stock_and_its_order_change_verifies_and_translates(seller, endpoint):
    seller.sandbox.add_listing("AMZ-1", 5)
    order_id = seller.sandbox.buy("AMZ-1", 2)
    assert seller.sandbox.stock("AMZ-1") == 3
    wait_until(lambda: len(endpoint.received) == 1, timeout=5)
    headers, body = endpoint.received[0]
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["user-agent"] == "Amazon Simple Notification Service Agent"
    verdict = verified(seller, headers, body)
    notification = json.loads(json.loads(body)["Message"])
    assert verdict == Accepted(
        notification["NotificationMetadata"]["NotificationId"], "ORDER_CHANGE"
    )
    assert notification["Payload"]["OrderChangeNotification"]["AmazonOrderId"] == order_id
    assert changes(seller, endpoint.received) == [(ChangeKind.SALE, "AMZ-1", 2)]


def test_a_cancellation_gives_the_units_back_and_translates_to_a_release(seller, endpoint):
    seller.sandbox.add_listing("AMZ-1", 5)
    order_id = seller.sandbox.buy("AMZ-1", 2)
    # SNS posts several notifications at once: the cancellation is made once the order's
    # notification has arrived, so they are applied in the order the channel sent them.
    wait_until(lambda: len(endpoint.received) == 1, timeout=5)
    seller.sandbox.cancel(order_id)
    assert seller.sandbox.stock("AMZ-1") == 5
    wait_until(lambda: len(endpoint.received) == 2, timeout=5)
    kinds = changes(seller, endpoint.received)
    assert kinds == [(ChangeKind.SALE, "AMZ-1", 2), (ChangeKind.SALE_CANCELLATION, "AMZ-1", 2)]


def test_the_sandbox_certificate_is_trusted_only_where_the_channel_names_its_host(seller, endpoint):
    seller.sandbox.add_listing("AMZ-1", 1)
    seller.sandbox.buy("AMZ-1")
    wait_until(lambda: len(endpoint.received) == 1, timeout=5)
    headers, body = endpoint.received[0]
    production = AmazonConfig(id="amazon-us", sns_topic_arns=(TOPIC,))
    with pytest.raises(SignatureInvalid, match=r"amazonaws\.com"):
        make_verifier(sns.CertificateCache())(
            production, SignedRequest(headers, body), datetime.now(UTC)
        )


@pytest.fixture
def sha256_seller(endpoint: Endpoint) -> Iterator[Running]:
    topic = SnsTopic(TOPIC, endpoint.url, signature_version="2", retry_delays=FAST_RETRIES)
    yield from running(topic)


def test_signature_version_2_notifications_verify_too(sha256_seller, endpoint):
    sha256_seller.sandbox.add_listing("AMZ-1", 1)
    sha256_seller.sandbox.buy("AMZ-1")
    wait_until(lambda: len(endpoint.received) == 1, timeout=5)
    headers, body = endpoint.received[0]
    assert json.loads(body)["SignatureVersion"] == "2"
    verified(sha256_seller, headers, body)


def test_a_failed_delivery_is_retried_with_the_same_message(seller, endpoint):
    endpoint.answers = [500, 503]
    seller.sandbox.add_listing("AMZ-1", 1)
    seller.sandbox.buy("AMZ-1")
    wait_until(lambda: len(seller.sandbox.topic.sent) == 3, timeout=5)
    assert len({body for _, body in endpoint.received}) == 1
    assert [d.status for d in seller.sandbox.topic.sent] == [500, 503, 200]


def test_sns_gives_up_after_its_retries(seller, endpoint):
    endpoint.answers = [500] * 10
    seller.sandbox.add_listing("AMZ-1", 1)
    seller.sandbox.buy("AMZ-1")
    wait_until(lambda: len(seller.sandbox.topic.sent) == 4, timeout=5)
    time.sleep(0.3)  # three times the retry delay: no fifth attempt comes
    assert len(endpoint.received) == 4  # the first attempt and three retries


def test_a_duplicate_delivery_is_keyed_like_the_first(seller, endpoint):
    seller.sandbox.add_listing("AMZ-1", 1)
    seller.sandbox.buy("AMZ-1", duplicates=1)
    wait_until(lambda: len(endpoint.received) == 2, timeout=5)
    keys = {verified(seller, h, b).delivery_key for h, b in endpoint.received}
    assert len(keys) == 1


@pytest.fixture
def unconfirmed() -> Iterator[Running]:
    yield from running(SnsTopic(TOPIC, confirmed=False, retry_delays=FAST_RETRIES))


def test_a_subscription_is_confirmed_by_our_acknowledgement_before_anything_is_sent(
    unconfirmed, endpoint
):
    unconfirmed.sandbox.add_listing("AMZ-1", 5)
    unconfirmed.sandbox.topic.subscribe(endpoint.url)
    wait_until(lambda: len(endpoint.received) == 1, timeout=5)
    unconfirmed.sandbox.buy("AMZ-1")  # not sent: the subscription is not confirmed
    headers, body = endpoint.received[0]
    verdict = verified(unconfirmed, headers, body)
    assert verdict.topic == sns.SUBSCRIPTION_CONFIRMATION
    delivery = Delivery(
        1, "amazon-us", verdict.delivery_key, verdict.topic, {}, body, datetime.now(UTC)
    )
    translator.acknowledge(unconfirmed.channel, delivery)
    assert unconfirmed.sandbox.topic.confirmed
    unconfirmed.sandbox.buy("AMZ-1")
    wait_until(lambda: len(endpoint.received) == 2, timeout=5)
    assert json.loads(endpoint.received[1][1])["Type"] == "Notification"


# SP-API's and LWA's own answers -------------------------------------------------------------


def test_lwa_answers_a_token_with_its_lifetime_and_refuses_a_bad_grant(seller):
    assert seller.token().startswith("Atza|")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "x",
        "client_id": "amzn1.application-oa2-client.sandbox",
        "client_secret": "sandbox-client-secret",
    }
    answer = httpx.post(seller.url + "/auth/o2/token", data=form)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_an_expired_token_is_refused_as_sp_api_refuses_it(seller):
    token = seller.token()
    seller.sandbox.expire_tokens()
    answer = httpx.get(
        f"{seller.url}/listings/2021-08-01/items/A3TH9S8BH6GOGM/AMZ-1",
        params={"marketplaceIds": "ATVPDKIKX0DER"},
        headers={"x-amz-access-token": token},
    )
    assert answer.status_code == 403
    [error] = answer.json()["errors"]
    assert error["code"] == "Unauthorized"
    assert "expired" in error["details"]


def test_a_feed_for_another_seller_is_fatal_with_a_report_saying_why(seller):
    headers = {"x-amz-access-token": seller.token()}
    feeds = seller.url + "/feeds/2021-06-30"
    content_type = "application/json; charset=UTF-8"
    document = httpx.post(
        feeds + "/documents", json={"contentType": content_type}, headers=headers
    ).json()
    feed_document = {"header": {"sellerId": "SOMEONE-ELSE", "version": "2.0"}, "messages": []}
    refused = httpx.put(
        document["url"], content=json.dumps(feed_document), headers={"Content-Type": "text/csv"}
    )
    assert refused.status_code == 403  # S3 checks the content type it signed
    uploaded = httpx.put(
        document["url"], content=json.dumps(feed_document), headers={"Content-Type": content_type}
    )
    assert uploaded.status_code == 200
    body = {
        "feedType": "JSON_LISTINGS_FEED",
        "marketplaceIds": ["ATVPDKIKX0DER"],
        "inputFeedDocumentId": document["feedDocumentId"],
    }
    created = httpx.post(feeds + "/feeds", json=body, headers=headers)
    assert created.status_code == 202
    feed_url = f"{feeds}/feeds/{created.json()['feedId']}"
    wait_until(
        lambda: httpx.get(feed_url, headers=headers).json()["processingStatus"] == "FATAL",
        timeout=5,
    )
    result_id = httpx.get(feed_url, headers=headers).json()["resultFeedDocumentId"]
    result = httpx.get(f"{feeds}/documents/{result_id}", headers=headers).json()
    assert result["compressionAlgorithm"] == "GZIP"
    report = json.loads(gzip.decompress(httpx.get(result["url"]).content))
    assert "sellerId" in report["issues"][0]["message"]
    assert report["summary"]["messagesAccepted"] == 0


def test_the_control_routes_set_stock_buy_and_count_calls(seller):
    assert (
        httpx.put(seller.url + "/_sandbox/stock/AMZ-9", json={"quantity": 4}).json()["quantity"]
        == 4
    )
    assert (
        httpx.post(seller.url + "/_sandbox/buy", json={"sku": "AMZ-9", "quantity": 5}).status_code
        == 409
    )
    assert (
        httpx.post(seller.url + "/_sandbox/buy", json={"sku": "AMZ-9", "quantity": 3}).status_code
        == 201
    )
    assert httpx.get(seller.url + "/_sandbox/stock/AMZ-9").json()["quantity"] == 1
    httpx.put(seller.url + "/_sandbox/faults", json={"outage": True})
    assert seller.sandbox.faults.outage
    assert httpx.post(seller.url + "/auth/o2/token", data={}).status_code == 503
    assert httpx.get(seller.url + "/_sandbox/calls").json() == {"lwa.token": 1}


# End to end ---------------------------------------------------------------------------------


def test_a_purchase_and_its_cancellation_reach_the_ledger_through_a_running_intake(
    ledger, queries, database_url, redis_url
):
    sandbox = AmazonSandbox(topic=SnsTopic(TOPIC, retry_delays=FAST_RETRIES))
    with sandbox.server() as server:
        amazon = Running(sandbox, server.url).channel.model_dump()
        channels = [*(c.model_dump() for c in channel_config().channels), amazon]
        config = Config.model_validate({"channels": channels})
        with running_intake(ledger, database_url, redis_url, config) as service:
            sku = random_sku()
            receipt = receipt_document(sku, 10, f"po-{uuid.uuid4()}")
            headers = internal_headers(ERP_SECRET, receipt, str(uuid.uuid4()))
            httpx.post(f"{service.url}/webhooks/erp", content=receipt, headers=headers)
            wait_until(lambda: queries.known_skus([sku]))
            sandbox.topic.endpoint = f"{service.url}/webhooks/amazon-us"
            sandbox.add_listing(sku, 10)
            order_id = sandbox.buy(sku, 3, duplicates=1)
            wait_until(lambda: queries.get_item(sku).totals.committed == 3)
            sandbox.cancel(order_id)
            wait_until(lambda: queries.get_item(sku).totals.committed == 0)
            assert queries.get_item(sku).totals.on_hand == 10
            assert {d.status for d in sandbox.topic.sent} == {200}
    sandbox.close()
