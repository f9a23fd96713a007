"""A delivery's failure is its own: hostile or broken deliveries are parked at once with their
reason, and every good delivery batched with them is applied on the first pass."""

from __future__ import annotations

import json
import random

import httpx
import psycopg

from application.intake import DeliveryState
from application.ledger_queries import LedgerQueries
from infrastructure.channels.base import Lane
from tests.channels import internal_headers, receipt_document, shopify_headers, shopify_order
from tests.helpers import random_sku
from tests.integration.intake_fixtures import ERP_SECRET, SHOPIFY_SECRET, running_intake


def _post_internal(url: str, body: bytes, delivery_id: str) -> None:
    answer = httpx.post(
        f"{url}/webhooks/erp", content=body, headers=internal_headers(ERP_SECRET, body, delivery_id)
    )
    assert answer.status_code == 200, answer.text


def _post_shopify(url: str, body: bytes, webhook_id: str) -> None:
    headers = shopify_headers(SHOPIFY_SECRET, body, "orders/create", webhook_id)
    answer = httpx.post(f"{url}/webhooks/shopify-us", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def _states(intake, keys: set[str]) -> dict[str, tuple[str, str | None]]:
    found = {}
    for state in DeliveryState:
        for row in intake.inbox.deliveries(state, limit=1000):
            if row["delivery_key"] in keys:
                found[row["delivery_key"]] = (row["state"], row["reason"])
    return found


def test_bad_deliveries_are_parked_at_once_and_the_good_ones_beside_them_applied(
    ledger, queries, database_url, redis_url
):
    skus = [random_sku() for _ in range(20)]
    order_sku = random_sku()
    ledger.record_batch([])
    with running_intake(ledger, database_url, redis_url, workers=False) as running:
        tag = random.randrange(10**9)
        bad = {
            f"list-{tag}": json.dumps({"changes": ["x"]}).encode(),
            f"nested-{tag}": b"[" * 30_000 + b"]" * 30_000,
            f"nul-{tag}": receipt_document("bad\u0000sku", 1, f"nul-{tag}"),
            f"long-{tag}": receipt_document(random_sku(), 1, f"long-{tag}", "x" * 4000),
            f"huge-{tag}": receipt_document(random_sku(), 3_000_000_000, f"huge-{tag}"),
        }
        for key, body in bad.items():
            _post_internal(running.url, body, key)
        good = {}
        for n, sku in enumerate(skus):
            good[f"good-{tag}-{n}"] = sku
            _post_internal(running.url, receipt_document(sku, 5, f"r-{tag}-{n}"), f"good-{tag}-{n}")
        processed = running.intake.processor.process([], Lane.INCREMENTS.value)
        keys = {*bad, *good}
        assert len([r for r in processed if r.delivery.delivery_key in keys]) == len(keys)
        states = _states(running.intake, keys)
        for key in good:
            assert states[key] == ("processed", None)
        for key in bad:
            assert states[key][0] == "parked", (key, states[key])
        assert "RecursionError" in (states[f"nested-{tag}"][1] or "")
        assert "control character" in (states[f"nul-{tag}"][1] or "")
        assert "at most 255" in (states[f"long-{tag}"][1] or "")
        assert "1,000,000,000" in (states[f"huge-{tag}"][1] or "")
        assert all(queries.get_item(sku).totals.on_hand == 5 for sku in skus)

        # A line of three billion units, beside a good order: the good one is applied.
        ledger.record_batch([])
        _post_internal(running.url, receipt_document(order_sku, 9, f"o-{tag}"), f"open-{tag}")
        running.intake.processor.process([], Lane.INCREMENTS.value)
        _post_shopify(running.url, shopify_order(tag, [(1, order_sku, 3_000_000_000)]), f"s1-{tag}")
        _post_shopify(running.url, shopify_order(tag + 1, [(1, order_sku, 2)]), f"s2-{tag}")
        running.intake.processor.process([], Lane.DECREMENTS.value)
        assert queries.get_item(order_sku).totals.committed == 2
        assert _states(running.intake, {f"s1-{tag}"})[f"s1-{tag}"][0] == "parked"


def test_a_value_the_database_refuses_parks_its_delivery_alone(
    scratch_ledger, scratch_database, redis_url
):
    """The last line of defence: whatever the database still refuses (here a column narrowed
    under us) is found by halves and parked alone; the rest of the batch is applied."""
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        conn.execute("ALTER TABLE ledger_receipts ALTER COLUMN reference TYPE varchar(40)")
    with running_intake(scratch_ledger, scratch_database, redis_url, workers=False) as running:
        skus = [random_sku() for _ in range(7)]
        for n, sku in enumerate(skus):
            document = json.loads(receipt_document(sku, 3, f"k-{n}"))
            document["changes"][0]["reference"] = "erp://po/" + ("9" * 60 if n == 4 else str(n))
            _post_internal(running.url, json.dumps(document).encode(), f"d-{n}")
        running.intake.processor.process([], Lane.INCREMENTS.value)
        states = _states(running.intake, {f"d-{n}" for n in range(7)})
        assert states["d-4"][0] == "parked"
        assert "cannot store" in (states["d-4"][1] or "")
        assert {key: state for key, (state, _) in states.items() if key != "d-4"} == {
            f"d-{n}": "processed" for n in range(7) if n != 4
        }
        assert [LedgerQueries(scratch_ledger).get_item(s).totals.on_hand for s in skus[:4]] == [
            3,
            3,
            3,
            3,
        ]
