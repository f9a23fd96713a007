"""A WooCommerce store's order, end to end: the sandbox store sends its webhooks to a running
intake, which reads the refunds' lines from the store's API; the ledger follows every step."""

from __future__ import annotations

import random

from domain.stock import ChangeKind
from infrastructure.config import Config
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.channels import woocommerce_table
from tests.helpers import change, random_sku
from tests.integration.intake_fixtures import running_intake, wait_until

KEY, SECRET, HOOK_SECRET = "ck_e2e", "cs_e2e", "wh-e2e"


def test_an_order_refunded_in_part_trashed_restored_and_completed_moves_the_ledger_exactly(
    ledger, queries, database_url, redis_url
):
    sku = random_sku("woo")
    channel = f"woo-e2e-{random.randrange(10**6)}"
    store = WooCommerceSandbox(KEY, SECRET, delivery_delay=0.01)
    store.add_product(sku, 10)
    ledger.record_batch([])
    with SandboxServer(store.app) as server:
        config = Config.model_validate(
            {
                "channels": [
                    woocommerce_table(channel, server.url, KEY, SECRET, HOOK_SECRET),
                    {"id": "erp", "kind": "internal", "webhook_secrets": ["erp"]},
                ]
            }
        )
        with running_intake(ledger, database_url, redis_url, config) as running:
            for topic in ("order.created", "order.updated", "order.deleted", "order.restored"):
                store.webhooks.add(topic, f"{running.url}/webhooks/{channel}", HOOK_SECRET)
            ledger.record(change(ChangeKind.RECEIPT, sku, 10))

            def levels() -> tuple[int, int]:
                totals = queries.get_item(sku).totals
                return totals.on_hand, totals.committed

            order_id = store.buy(sku, 3)
            wait_until(lambda: levels() == (10, 3))
            [line] = store.line_ids(order_id)
            store.refund(order_id, {line: 1}, restock=True)
            wait_until(lambda: levels() == (10, 2))  # the refund's line, read from the API
            store.trash_order(order_id)
            wait_until(lambda: levels() == (10, 0))
            store.restore_order(order_id)
            wait_until(lambda: levels() == (10, 2))
            store.set_order_status(order_id, "completed")
            wait_until(lambda: levels() == (8, 0))
    store.close()
