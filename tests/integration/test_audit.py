"""The audit trail: `GET /api/v1/history` by order (the order and everything under it), who made
a change through the API (the token's name), and why (the reason, in the CSV too)."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from application.outcomes import OutcomeStatus
from application.receipts import AuditFilter, Receipt
from domain.stock import ChangeKind as K
from infrastructure.config import ApiToken
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.helpers import change, random_sku


@pytest.fixture(scope="module")
def client(ledger):
    with TestClient(create_app(Api(ledger))) as test_client:
        yield test_client


def _order(channel: str = "shop-x") -> str:
    return f"shopify://{channel}/orders/{uuid.uuid4().int % 10**12}"


def _history(client, **params) -> list[dict]:
    answer = client.get("/api/v1/history", params={"limit": 1000, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()["changes"]


def test_history_by_order_has_the_order_its_fulfilments_and_its_refunds(client, ledger):
    sku, order = random_sku(), _order()
    ledger.record(change(K.RECEIPT, sku, 5))
    outcomes = [
        ledger.record(change(K.SALE, sku, 2, reference=order)),
        ledger.record(change(K.SHIPMENT, sku, 2, reference=f"{order}/fulfillments/71")),
        ledger.record(change(K.RETURN, sku, 1, reference=f"{order}/refunds/9")),
        # Orders whose reference merely starts with the same characters are other orders.
        ledger.record(change(K.SALE, sku, 1, reference=f"{order}0")),
        ledger.record(change(K.SALE, sku, 1, reference=f"{order}-1/refunds/9")),
        ledger.record(change(K.SALE, sku, 1, reference=f"{order}.1")),
    ]
    assert {o.status for o in outcomes} == {OutcomeStatus.APPLIED}

    found = _history(client, order=order)
    assert [(c["kind"], c["reference"]) for c in found] == [
        ("return", f"{order}/refunds/9"),
        ("shipment", f"{order}/fulfillments/71"),
        ("sale", order),
    ]  # newest first
    assert _history(client, order=f"{order}/") == found  # a trailing slash changes nothing
    # `reference=` stays exact.
    assert [c["reference"] for c in _history(client, reference=order)] == [order]
    assert [c["kind"] for c in _history(client, order=order, kind="shipment")] == ["shipment"]
    assert _history(client, order=order, sku=random_sku()) == []


def test_history_by_order_pages_with_the_cursor(client, ledger):
    sku, order = random_sku(), _order()
    ledger.record(change(K.RECEIPT, sku, 5))
    ledger.record(change(K.SALE, sku, 3, reference=order))
    for n in range(3):
        ledger.record(change(K.SHIPMENT, sku, 1, reference=f"{order}/fulfillments/{n}"))
    first = client.get("/api/v1/history", params={"order": order, "limit": 3}).json()
    rest = client.get(
        "/api/v1/history", params={"order": order, "limit": 3, "cursor": first["next_cursor"]}
    ).json()
    assert len(first["changes"]) == 3
    assert [c["kind"] for c in rest["changes"]] == ["sale"]


def test_an_order_reference_with_like_wildcards_matches_only_itself(client, ledger):
    sku = random_sku()
    base = f"woocommerce://woo-{uuid.uuid4().hex[:6]}/orders"
    ledger.record(change(K.RECEIPT, sku, 5))
    ledger.record(change(K.SALE, sku, 1, reference=f"{base}/a_b%"))
    ledger.record(change(K.SALE, sku, 1, reference=f"{base}/axbyz"))
    ledger.record(change(K.SALE, sku, 1, reference=f"{base}/a_b%/refunds/1"))
    found = _history(client, order=f"{base}/a_b%")
    assert sorted(c["reference"] for c in found) == [f"{base}/a_b%", f"{base}/a_b%/refunds/1"]


@pytest.mark.parametrize("order", ["shopify://x/orders/1\x00", "", "/"])
def test_an_order_that_is_no_reference_is_a_400_problem(client, order):
    answer = client.get("/api/v1/history", params={"order": order})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"


# Characters either side of "/" in byte order, and beyond ASCII: the prefix range is bytewise.
# (An order's reference never ends in "/": the filter ignores a trailing one.)
_SEGMENT = st.text(alphabet="-./0_%aZé☃🐈", min_size=1, max_size=4).filter(
    lambda s: not s.endswith("/")
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    orders=st.lists(_SEGMENT, min_size=1, max_size=4, unique=True),
    tails=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["", "/", "/x", "x", "/a/b"]))),
)
def test_by_order_finds_exactly_the_references_under_it(ledger, queries, orders, tails):
    sku = random_sku()
    base = f"amazon://amz-{uuid.uuid4().hex[:8]}/orders/"
    references = [base + orders[i % len(orders)] + tail for i, tail in tails] or [base + orders[0]]
    ledger.record(change(K.RECEIPT, sku, 100))
    ledger.record_batch([change(K.SALE, sku, 1, reference=r) for r in references])
    for order in orders:
        asked = base + order
        found = queries.audit(AuditFilter(order=asked, sku=sku), limit=1000)
        expected = [r for r in references if r == asked or r.startswith(asked + "/")]
        assert sorted(r.reference for r in found) == sorted(expected)


def test_the_order_filter_is_served_by_an_index(ledger, database_url):
    order = _order()
    recorder = ledger.receipts
    with psycopg.connect(database_url) as conn:
        conn.execute("SET enable_seqscan = off")  # a table this small would be scanned anyway
        query, params = recorder.audit_query(AuditFilter(order=order), 50)
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {query.as_string(conn)}", params))
    assert "ledger_receipts_reference_idx" in plan, plan


# Who: the token's name --------------------------------------------------------------------------


def _token(name: str, secret: str) -> ApiToken:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return ApiToken(name=name, sha256=digest, scopes=("read", "write"))


def test_a_change_through_the_api_records_the_tokens_name(ledger):
    sku = random_sku()
    tokens = [_token("warehouse-bot", "s3cret"), _token("anna", "other")]
    with TestClient(create_app(Api(ledger, tokens=tokens))) as client:
        answer = client.post(
            "/api/v1/stock-changes",
            json={"kind": "receipt", "sku": sku, "quantity": 4, "business_key": sku},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert answer.status_code == 201, answer.text
        found = client.get(
            "/api/v1/history", params={"sku": sku}, headers={"Authorization": "Bearer other"}
        ).json()["changes"]
        by_who = client.get(
            "/api/v1/history",
            params={"channel": "warehouse-bot", "sku": sku},
            headers={"Authorization": "Bearer other"},
        ).json()["changes"]
    assert [c["source"] for c in found] == ["warehouse-bot"]
    assert by_who == found


def test_without_tokens_a_change_through_the_api_records_api(client):
    sku = random_sku()
    answer = client.post(
        "/api/v1/stock-changes",
        json={"kind": "receipt", "sku": sku, "quantity": 4, "business_key": sku},
    )
    assert answer.status_code == 201
    assert [c["source"] for c in _history(client, sku=sku)] == ["api"]


# Why: the reason -------------------------------------------------------------------------------


def test_the_recorder_stores_and_returns_a_receipts_reason(scratch_ledger):
    recorder = scratch_ledger.receipts
    item_id, now = uuid.uuid4(), datetime.now(UTC)
    receipt = Receipt(
        business_key=f"test:{item_id}",
        sku=random_sku(),
        item_id=item_id,
        kind=K.ADJUSTMENT,
        first_version=1,
        last_version=1,
        recorded_at=now,
        occurred_at=now,
        source="test",
        shortfall=0,
        reason="damaged",
    )
    event = StoredEvent(originator_id=item_id, originator_version=1, topic="t", state=b"{}")
    scratch_ledger.recorder.insert_events([event], receipts=[receipt])
    assert recorder.select_receipts([receipt.business_key]) == {receipt.business_key: receipt}
    assert recorder.select_audit(AuditFilter(sku=receipt.sku), 10) == [receipt]


def test_the_csv_export_has_a_reason_column(client):
    sku = random_sku()
    answer = client.post(
        "/api/v1/stock-changes",
        json=[
            {"kind": "receipt", "sku": sku, "quantity": 4, "business_key": f"{sku}-1"},
            {
                "kind": "adjustment",
                "sku": sku,
                "quantity": -1,
                "reason": "damaged",
                "business_key": f"{sku}-2",
            },
        ],
    )
    assert answer.status_code == 200, answer.text
    exported = client.get("/api/v1/history", params={"sku": sku, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert "reason" in rows[0]
    assert [(r["kind"], r["reason"]) for r in rows] == [
        ("adjustment", "damaged"),
        ("receipt", "receipt"),  # the ledger event's reason: the kind when none was given
    ]
