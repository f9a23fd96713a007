"""Amazon end to end: an SNS subscription confirmed, then ORDER_CHANGE notifications applied,
with a local stand-in for the SNS host serving our signing certificate."""

import json
import random
import time
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from infrastructure.config import Config
from sandboxes.amazon.sns import self_signed_pem
from tests.channels import internal_headers, receipt_document
from tests.helpers import random_sku
from tests.integration.intake_fixtures import ERP_SECRET, channel_config, running_intake, wait_until
from tests.sns import CERTIFICATE_PATH, SnsHost, signed
from tests.unit.amazon_messages import (
    TOPIC_ARN,
    order_change,
    order_item,
    sns_confirmation,
    sns_notification,
)


@pytest.fixture(scope="module")
def sns():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    host = SnsHost()
    host.files[CERTIFICATE_PATH] = self_signed_pem(key)
    host.files["/confirm"] = b"<ConfirmSubscriptionResponse/>"
    host.start()
    yield host, key
    host.stop()


@pytest.fixture(scope="module")
def service(ledger, database_url, redis_url, sns):
    host, _ = sns
    base = channel_config()
    amazon = {
        "id": "amazon-us",
        "kind": "amazon",
        "sns_topic_arns": [TOPIC_ARN],
        "sns_origins": [f"http://{host.host}"],
    }
    config = Config.model_validate({"channels": [*(c.model_dump() for c in base.channels), amazon]})
    with running_intake(ledger, database_url, redis_url, config) as running:
        yield running


def post_sns(service, host, key, message) -> httpx.Response:
    body = json.dumps(signed(message, key, host.url(CERTIFICATE_PATH), version="2")).encode()
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": message["Type"],
        "x-amz-sns-message-id": message["MessageId"],
        "x-amz-sns-topic-arn": TOPIC_ARN,
    }
    return httpx.post(f"{service.url}/webhooks/amazon-us", content=body, headers=headers)


def test_a_subscription_confirmation_is_confirmed_by_the_worker(service, sns):
    host, key = sns
    before = host.requested("/confirm")
    answer = post_sns(service, host, key, sns_confirmation(host.url("/confirm?Token=abc")))
    assert answer.status_code == 200
    wait_until(lambda: host.requested("/confirm") == before + 1)


def test_order_change_notifications_commit_then_release_stock(service, sns, ledger, queries):
    host, key = sns
    sku = random_sku()
    body = receipt_document(sku, 10, f"po-{uuid.uuid4()}")
    assert (
        httpx.post(
            f"{service.url}/webhooks/erp",
            content=body,
            headers=internal_headers(ERP_SECRET, body, str(uuid.uuid4())),
        ).status_code
        == 200
    )
    wait_until(lambda: queries.known_skus([sku]))
    order = f"903-{random.randrange(10**6, 10**7)}-{random.randrange(10**6, 10**7)}"
    items = [order_item("OI-1", sku, 3)]
    unshipped = sns_notification(order_change("Unshipped", items, order_id=order))
    assert post_sns(service, host, key, unshipped).status_code == 200
    assert post_sns(service, host, key, unshipped).json()["status"] == "duplicate"
    wait_until(lambda: queries.get_item(sku).totals.committed == 3)
    canceled = sns_notification(order_change("Canceled", items, order_id=order))
    assert post_sns(service, host, key, canceled).status_code == 200
    wait_until(lambda: queries.get_item(sku).totals.committed == 0)
    assert queries.get_item(sku).totals.on_hand == 10


def test_a_notification_from_an_unlisted_topic_is_refused(service, sns):
    host, key = sns
    other = sns_notification(order_change(), topic_arn="arn:aws:sns:us-east-1:1:other")
    answer = post_sns(service, host, key, other)
    assert answer.status_code == 401


def test_a_subscription_url_that_answers_404_parks_its_delivery_after_one_fetch(
    service, sns, ledger, queries
):
    host, key = sns
    sku = random_sku()
    answer = post_sns(service, host, key, sns_confirmation(host.url("/gone?Token=x")))
    assert answer.status_code == 200
    receipt = receipt_document(sku, 4, f"after-404-{uuid.uuid4()}")
    posted = httpx.post(
        f"{service.url}/webhooks/erp",
        content=receipt,
        headers=internal_headers(ERP_SECRET, receipt, str(uuid.uuid4())),
    )
    assert posted.status_code == 200

    def parked():
        rows = httpx.get(f"{service.url}/api/v1/deliveries?state=parked").json()["deliveries"]
        return [
            r for r in rows if r["topic"] == "SubscriptionConfirmation" and "404" in r["reason"]
        ]

    wait_until(parked)
    wait_until(lambda: queries.known_skus([sku]))
    time.sleep(2)  # no retry storm: the URL was asked once, not again and again
    assert host.requested("/gone") == 1
