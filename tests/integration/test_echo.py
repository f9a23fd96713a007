"""Echo suppression: the webhook a channel sends because of our own push is filed as an echo,
not as drift; a quantity we did not push is not."""

import time

import httpx
import psycopg

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from tests.channels import woocommerce_body, woocommerce_headers
from tests.helpers import change, random_sku
from tests.integration.intake_fixtures import WOO_SECRET, running_intake

CHANNEL = "woo-eu"


def observations(database_url, sku):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT quantity, echo FROM channel_observations "
                "WHERE channel_id = %s AND sku = %s ORDER BY id",
                [CHANNEL, sku],
            ).fetchall()
        if len(rows) == 2:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"observations of {sku} not recorded: {rows}")


def test_the_product_update_our_push_caused_is_an_echo_and_another_quantity_is_not(
    ledger, database_url, redis_url
):
    sku = random_sku()
    with AvailabilityRunner(eventsourcing_env(database_url), (ChannelRule(CHANNEL),)) as runner:
        ledger.record(change(ChangeKind.RECEIPT, sku, 8))
        assert runner.wait(ledger.recorder.max_notification_id(), timeout=10)
    with psycopg.connect(database_url) as conn:  # what a pusher records when the channel took 8
        conn.execute(
            "UPDATE availability_outbox SET pushed_position = position, acknowledged_quantity = 8,"
            " acknowledged_at = now() WHERE channel_id = %s AND sku = %s",
            [CHANNEL, sku],
        )
    with running_intake(ledger, database_url, redis_url) as running:
        for product_id, quantity in ((1, 8), (2, 5)):
            product = {
                "id": product_id,
                "sku": sku,
                "manage_stock": True,
                "stock_quantity": quantity,
                "date_modified_gmt": "2026-11-29T10:00:00",
            }
            body = woocommerce_body(product)
            answer = httpx.post(
                f"{running.url}/webhooks/{CHANNEL}",
                content=body,
                headers=woocommerce_headers(WOO_SECRET, body, "product.updated"),
            )
            assert answer.status_code == 200
        assert observations(database_url, sku) == [(8, True), (5, False)]
