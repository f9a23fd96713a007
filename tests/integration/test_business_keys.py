"""A business key names one fact about one SKU: the same key again for another SKU is not a
duplicate to ignore in silence but a mistake to refuse, naming the SKU the key was first used
for (the API answers 422, intake parks the delivery)."""

import uuid

import httpx
import pytest
from starlette.testclient import TestClient

from application.outcomes import OutcomeStatus
from domain.stock import ChangeKind
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.channels import internal_headers, receipt_document
from tests.helpers import assert_problem, change, random_sku
from tests.integration.intake_fixtures import ERP_SECRET, running_intake, wait_until


def test_a_key_used_again_for_another_sku_is_rejected_naming_the_first(ledger, queries):
    first, other, key = random_sku(), random_sku(), f"po-{uuid.uuid4()}"
    ledger.record(change(ChangeKind.RECEIPT, first, 5, business_key=key))
    [again, same] = [
        ledger.record(change(ChangeKind.RECEIPT, other, 7, business_key=key)),
        ledger.record(change(ChangeKind.RECEIPT, first, 5, business_key=key)),
    ]
    assert again.status is OutcomeStatus.REJECTED
    assert repr(first) in str(again.error)
    assert same.status is OutcomeStatus.DUPLICATE  # the same fact again is still a duplicate
    assert queries.known_skus([other]) == set()


def test_within_one_batch_the_second_sku_of_a_key_is_rejected(ledger, queries):
    first, other, key = random_sku(), random_sku(), f"po-{uuid.uuid4()}"
    outcomes = ledger.record_batch(
        [
            change(ChangeKind.RECEIPT, first, 5, business_key=key),
            change(ChangeKind.RECEIPT, other, 7, business_key=key),
            change(ChangeKind.RECEIPT, first, 5, business_key=key),
        ]
    )
    assert [o.status for o in outcomes] == [
        OutcomeStatus.APPLIED,
        OutcomeStatus.REJECTED,
        OutcomeStatus.DUPLICATE,
    ]
    assert repr(first) in str(outcomes[1].error)
    assert queries.known_skus([other]) == set()


def test_the_api_answers_422_naming_the_first_sku(ledger, queries):
    first, other = random_sku(), random_sku()
    body = {"kind": "receipt", "sku": first, "quantity": 2, "business_key": f"po-{first}"}
    with TestClient(create_app(Api(ledger))) as client:
        assert client.post("/api/v1/stock-changes", json=body).status_code == 201
        answer = client.post("/api/v1/stock-changes", json={**body, "sku": other})
    assert first in assert_problem(answer, 422)["detail"]
    assert queries.known_skus([other]) == set()


@pytest.fixture(scope="module")
def service(ledger, database_url, redis_url):
    with running_intake(ledger, database_url, redis_url) as running:
        yield running


def test_intake_parks_a_delivery_reusing_a_key_for_another_sku(service, ledger, queries):
    first, other, key = random_sku(), random_sku(), f"po-{uuid.uuid4()}"
    for sku in (first, other):
        body = receipt_document(sku, 3, key)
        headers = internal_headers(ERP_SECRET, body, str(uuid.uuid4()))
        answer = httpx.post(f"{service.url}/webhooks/erp", content=body, headers=headers)
        assert answer.status_code == 200, answer.text

    def parked() -> list[str]:
        rows = httpx.get(f"{service.url}/api/v1/deliveries?state=parked").json()["deliveries"]
        return [r["reason"] for r in rows if first in (r["reason"] or "")]

    wait_until(parked)
    # Either delivery may be applied first (two lanes' workers race): the key stays with the
    # SKU it named first, and the other delivery is parked saying so.
    winner, loser = (
        (first, other) if f"SKU {first!r}, not {other!r}" in parked()[0] else (other, first)
    )
    assert f"first used for SKU {winner!r}, not {loser!r}" in parked()[0]
    assert queries.known_skus([first, other]) == {winner}
