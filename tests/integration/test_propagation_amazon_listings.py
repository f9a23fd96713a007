"""Propagation to Amazon end to end: a SKU the seller has no listing for is recorded as not
applied (Amazon would have ACCEPTED its patch), and the seller's own fulfillment fields survive
every push."""

import psycopg

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.channels.amazon.gateway import AmazonGateway
from infrastructure.channels.amazon.lwa import LwaCredentials
from infrastructure.channels.gateway import Gate
from infrastructure.config import PushConfig
from interfaces.composition import running_propagation
from sandboxes.amazon.seller import AmazonSandbox
from tests.helpers import change, random_sku
from tests.integration.amazon_models import sp_api_models
from tests.integration.propagation_fixtures import eventually

CHANNEL = "amazon-listings"
RULES = (ChannelRule(CHANNEL, safety_buffer=1),)


def pushed(database_url: str, sku: str) -> tuple[int, int | None] | None:
    """The outbox row's pushed version and the quantity Amazon acknowledged, once pushed."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT pushed_version, acknowledged_quantity FROM availability_outbox "
            "WHERE channel_id = %s AND sku = %s AND pushed_version > 0",
            (CHANNEL, sku),
        ).fetchone()
    return None if row is None else (row[0], row[1])


def test_a_sku_amazon_has_no_listing_for_is_never_patched_nor_taken_as_applied(
    scratch_ledger, scratch_database, redis_url
):
    sandbox = AmazonSandbox(apply_delay=0.02, feed_delay=0.05, models=sp_api_models())
    listed, unlisted = random_sku(), random_sku()
    sandbox.add_listing(listed, 0, lead_time_to_ship_max_days=6, restock_date="2027-04-01")
    with sandbox.server() as server:

        def gateway(gate: Gate) -> AmazonGateway:
            return AmazonGateway(
                server.url,
                sandbox.seller_id,
                sandbox.marketplace_id,
                LwaCredentials(*sandbox.credentials),
                token_url=f"{server.url}/auth/o2/token",
                channel_id=CHANNEL,
                timeout=1.0,
                feed_poll_interval=0.05,
                gate=gate,
            )

        push = PushConfig(rate_per_second=4, batch_window_seconds=0)
        with running_propagation(
            scratch_database,
            redis_url,
            {CHANNEL: (gateway, push)},
            RULES,
            namespace=f"test-{random_sku()}",
        ):
            scratch_ledger.record(change(ChangeKind.RECEIPT, listed, 10))
            eventually(lambda: sandbox.stock(listed) == 9, 20, "the listed SKU reaches Amazon")
            scratch_ledger.record(change(ChangeKind.RECEIPT, unlisted, 10))  # alone: a patch
            eventually(lambda: pushed(scratch_database, unlisted) is not None, 20, "answered")
            scratch_ledger.record(change(ChangeKind.SALE, listed, 4))
            eventually(lambda: sandbox.stock(listed) == 5, 20, "the sale reaches Amazon")
    sandbox.close()
    assert sandbox.model_violations == []
    assert pushed(scratch_database, unlisted)[1] is None  # not acknowledged as shown
    assert pushed(scratch_database, listed)[1] == 5
    assert sandbox.stock(unlisted) is None
    assert sandbox.fulfillment_availability(listed) == [
        {
            "fulfillment_channel_code": "DEFAULT",
            "quantity": 5,
            "lead_time_to_ship_max_days": 6,
            "restock_date": "2027-04-01",
        }
    ]
