"""The decisions that make a batch's outcomes from what it tried and what was recorded before."""

import uuid
from datetime import UTC, datetime

from application.outcomes import (
    Outcome,
    OutcomeStatus,
    apply_changes,
    first_of_each_key,
    outcome_of,
    outcomes_of,
    refused_keys,
)
from application.receipts import Receipt
from domain.errors import InsufficientStock
from domain.inventory import InventoryItem
from domain.stock import ChangeKind
from tests.helpers import change

K = ChangeKind
APPLIED, DUPLICATE, REJECTED = (
    OutcomeStatus.APPLIED,
    OutcomeStatus.DUPLICATE,
    OutcomeStatus.REJECTED,
)


def receipt(business_key: str, sku: str) -> Receipt:
    now = datetime.now(UTC)
    return Receipt(business_key, sku, uuid.uuid4(), K.RECEIPT, 2, 2, now, now, "test", 0)


def test_the_first_change_of_each_key_is_kept_in_order():
    a, b = change(K.RECEIPT, "A", 1), change(K.RECEIPT, "B", 1)
    a_again = change(K.RECEIPT, "A", 9, business_key=a.business_key)
    assert list(first_of_each_key([a, b, a_again]).values()) == [a, b]


def test_a_key_recorded_before_is_a_duplicate_with_its_first_receipt():
    fact = change(K.RECEIPT, "A", 1)
    first = receipt(fact.business_key, "A")
    assert outcome_of(fact, {}, {fact.business_key: first}, repeated=False) == Outcome(
        fact, DUPLICATE, first
    )


def test_a_key_recorded_before_for_another_sku_is_refused_naming_it():
    fact = change(K.RECEIPT, "B", 1)
    outcome = outcome_of(fact, {}, {fact.business_key: receipt(fact.business_key, "A")}, False)
    assert outcome.status is REJECTED
    assert "first used for SKU 'A', not 'B'" in str(outcome.error)


def test_a_repeat_in_the_batch_shares_its_firsts_fate():
    item = InventoryItem("A")
    stock = change(K.RECEIPT, "A", 1)
    results = apply_changes([stock], {"A": item})
    assert outcomes_of([stock, stock], results, {})[1] == Outcome(
        stock, DUPLICATE, results[stock.business_key].receipt
    )
    adjustment = change(K.ADJUSTMENT, "A", -5, reason="damaged")
    refused = apply_changes([adjustment], {"A": item})
    assert refused_keys(refused) == [adjustment.business_key]
    again = outcomes_of([adjustment, adjustment], refused, {})
    assert [o.status for o in again] == [REJECTED, REJECTED]
    assert isinstance(again[1].error, InsufficientStock)


def test_a_key_used_for_two_skus_in_one_batch_refuses_the_second():
    a = change(K.RECEIPT, "A", 1, business_key="po:1")
    b = change(K.RECEIPT, "B", 1, business_key="po:1")
    results = apply_changes([a], {"A": InventoryItem("A")})
    first, second = outcomes_of([a, b], results, {})
    assert first.status is APPLIED
    assert second.status is REJECTED
    assert "first used for SKU 'A'" in str(second.error)
