"""An Amazon seller's orders whose ORDER_CHANGE notifications were lost enter intake by the next
poll, once: the sandbox seller loses notifications on demand and lists its orders through the
Orders API as Amazon does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from domain.stock import ChangeKind
from sandboxes.amazon.seller import AmazonSandbox
from sandboxes.amazon.sns import SnsTopic
from tests.helpers import change, random_sku
from tests.integration.intake_fixtures import RunningIntake, running_intake, wait_until
from tests.integration.orders_poll_fixtures import (
    channel_id,
    config_of,
    found_once,
    levels,
    poll,
    settled,
)

TOPIC = "arn:aws:sns:us-east-1:123456789012:sp-api-poll"


@dataclass
class Seller:
    sandbox: AmazonSandbox
    running: RunningIntake
    channel: str


@contextmanager
def seller(ledger, database_url, redis_url) -> Iterator[Seller]:
    sandbox = AmazonSandbox(topic=SnsTopic(TOPIC, retry_delays=(0.05, 0.05, 0.05)))
    channel = channel_id("amazon")
    with sandbox.server() as server:
        table = {
            "id": channel,
            **sandbox.channel_settings(server.url),
            "sns_topic_arns": [TOPIC],
            "sns_origins": [server.url],
        }
        with running_intake(ledger, database_url, redis_url, config_of(table)) as running:
            sandbox.topic.endpoint = f"{running.url}/webhooks/{channel}"
            yield Seller(sandbox, running, channel)
    sandbox.close()


def stocked(ledger, s: Seller, sku: str, units: int = 10) -> None:
    ledger.record(change(ChangeKind.RECEIPT, sku, units))
    s.sandbox.add_listing(sku, units)


def test_a_sale_whose_notification_is_lost_is_committed_by_the_next_poll_once(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("amz-lost")
    with seller(ledger, database_url, redis_url) as s:
        stocked(ledger, s, sku)
        s.sandbox.buy(sku, 3, notify=False)
        found_once(s.running, s.channel, queries, sku)


def test_an_order_seen_by_notification_and_by_poll_counts_once(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("amz-both")
    with seller(ledger, database_url, redis_url) as s:
        stocked(ledger, s, sku)
        s.sandbox.buy(sku, 2)
        wait_until(lambda: levels(queries, sku) == (10, 2))
        polled = poll(s.running, s.channel)
        settled(database_url, s.channel)
        assert (polled.found, polled.stored) == (1, 1)  # stored, and applied as known already
        assert levels(queries, sku) == (10, 2)


def test_a_cancellation_found_by_poll_is_applied(ledger, queries, database_url, redis_url):
    sku = random_sku("amz-cancel")
    with seller(ledger, database_url, redis_url) as s:
        stocked(ledger, s, sku)
        order_id = s.sandbox.buy(sku, 2)
        wait_until(lambda: levels(queries, sku) == (10, 2))
        s.sandbox.cancel(order_id, notify=False)

        polled = poll(s.running, s.channel)
        wait_until(lambda: levels(queries, sku) == (10, 0))
        assert polled.stored == 1


def test_a_notification_lost_on_the_way_is_found_by_the_poll(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("amz-lose")
    with seller(ledger, database_url, redis_url) as s:
        stocked(ledger, s, sku)
        lost = httpx.post(f"{s.sandbox.topic.public_url}/_sandbox/webhooks/lose", json={})
        assert lost.status_code == 204
        s.sandbox.buy(sku, 4)  # published, and lost on the way
        assert s.sandbox.topic.deliveries.wait_idle()
        assert [attempt.lost for attempt in s.sandbox.topic.sent] == [True]
        assert levels(queries, sku) == (10, 0)
        assert poll(s.running, s.channel).stored == 1
        wait_until(lambda: levels(queries, sku) == (10, 4))
