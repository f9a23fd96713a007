"""The ledger's commands on the in-memory store: each fact once, rule breakers alone, what an
order teaches, rule changes, and giving up when other writers keep winning."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from application.errors import LedgerBusy
from application.outcomes import OutcomeStatus
from domain.allocation import ChannelRule, InvalidRule
from domain.orders import Facts, LineTarget, OrderUpdate, Units, stamp
from domain.stock import ChangeKind, Levels
from tests import ledger_scenarios as scenarios
from tests.helpers import change, random_sku
from tests.memory import MemoryRecorder, memory_ledger

K = ChangeKind
APPLIED, DUPLICATE, REJECTED = (
    OutcomeStatus.APPLIED,
    OutcomeStatus.DUPLICATE,
    OutcomeStatus.REJECTED,
)


def test_a_change_is_recorded_with_its_receipt(ledger, queries):
    sku = random_sku()
    outcome = ledger.record(change(K.RECEIPT, sku, 10, location="east", reference="po://7"))
    assert outcome.status is APPLIED
    assert outcome.receipt is not None
    assert (outcome.receipt.sku, outcome.receipt.reference) == (sku, "po://7")
    assert (outcome.receipt.first_version, outcome.receipt.last_version) == (2, 2)  # 1: created
    assert queries.get_item(sku).locations == {"east": Levels(on_hand=10)}


def test_a_business_key_recorded_before_is_a_duplicate_with_the_first_receipt(ledger, queries):
    sku = random_sku()
    first = ledger.record(change(K.RECEIPT, sku, 4, business_key=f"po:{sku}"))
    again = ledger.record(change(K.RECEIPT, sku, 9, business_key=f"po:{sku}"))
    assert (again.status, again.receipt) == (DUPLICATE, first.receipt)
    assert queries.get_item(sku).totals.on_hand == 4


def test_a_business_key_used_again_for_another_sku_is_refused_naming_the_first(ledger):
    sku, other = random_sku(), random_sku()
    ledger.record(change(K.RECEIPT, sku, 1, business_key="po:1"))
    refused = ledger.record(change(K.RECEIPT, other, 1, business_key="po:1"))
    assert refused.status is REJECTED
    assert f"first used for SKU {sku!r}" in str(refused.error)


def test_a_rule_breaker_is_rejected_alone_and_the_rest_of_its_batch_applied(ledger, queries):
    scenarios.a_rule_breaker_is_rejected_alone_in_a_batch(ledger, queries)


def test_a_fact_twice_in_one_batch_counts_once(ledger, queries):
    sku = random_sku()
    fact = change(K.RECEIPT, sku, 3)
    first, again = ledger.record_batch([fact, fact])
    assert (again.status, again.receipt) == (DUPLICATE, first.receipt)
    assert queries.get_item(sku).totals.on_hand == 3


def test_a_repeated_fact_that_would_now_break_a_rule_is_a_duplicate_not_a_refusal(ledger):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 5))
    hold = change(K.RESERVATION, sku, 2, reservation_id="r-1")
    assert ledger.record(hold).status is APPLIED
    # Alone, the repeat skips the receipt look-up and breaks the rule first: it must look then.
    assert ledger.record(hold).status is DUPLICATE


def order_update(order_id: str, sku: str, quantity: int, *, cancelled: bool = False) -> OrderUpdate:
    """One line of `quantity` units of `sku`; committed until the order is cancelled."""
    at = stamp(datetime.now(UTC))
    line = Facts(latest={"sku": (at, sku), "quantity": (at, quantity)})

    def targets(order: Facts, lines: Mapping[str, Facts]) -> dict[str, LineTarget]:
        held = 0 if "cancelled" in order.flags else lines["1"].value("quantity")
        return {"1": LineTarget(lines["1"].value("sku"), {"main": Units(committed=held)})}

    flags = frozenset({"cancelled"}) if cancelled else frozenset()
    return OrderUpdate(
        "shop",
        order_id,
        Facts(flags=flags),
        {"1": line},
        targets,
        datetime.now(UTC),
        f"test://orders/{order_id}",
        "order",
    )


def test_an_order_teaches_its_lines_once_and_its_cancellation_releases_them(ledger, queries):
    sku, order_id = random_sku(), random_sku("order")
    ledger.record(change(K.RECEIPT, sku, 10))
    update = order_update(order_id, sku, 3)
    [opened] = ledger.record_lessons([], [update])[1]
    [again] = ledger.record_lessons([], [update])[1]
    assert opened.status is APPLIED
    assert [c.status for c in opened.changes] == [APPLIED]
    assert (again.status, again.changes) == (DUPLICATE, ())
    assert queries.get_item(sku).totals.committed == 3
    [cancelled] = ledger.record_lessons([], [order_update(order_id, sku, 3, cancelled=True)])[1]
    assert cancelled.status is APPLIED
    assert queries.get_item(sku).totals.committed == 0
    assert queries.channel_order("shop", order_id) is not None


def test_stock_changes_and_lessons_are_recorded_in_one_call(ledger, queries):
    sku, order_id = random_sku(), random_sku("order")
    changes, orders = ledger.record_lessons(
        [change(K.RECEIPT, sku, 5)], [order_update(order_id, sku, 2)]
    )
    assert [c.status for c in changes] == [APPLIED]
    assert [o.status for o in orders] == [APPLIED]
    assert queries.get_item(sku).levels_at("main") == Levels(on_hand=5, committed=2)


def test_rule_changes_and_overrides_are_read_back_over_the_defaults(ledger, queries):
    default = ChannelRule(random_sku("shop"), share_percent=50)
    assert queries.channel_rules(default) == (default, None)
    ledger.change_channel_rules(
        ChannelRule(default.channel_id, share_percent=30), "merch", "margin"
    )
    ledger.override_sku_rules(default.channel_id, "BIG", {"safety_buffer": 2}, "merch", "bulky")
    rule, recorded = queries.channel_rules(default)
    assert rule.share_percent == 30
    assert recorded is not None
    [for_big] = queries.rules_for("BIG", [default])
    assert (for_big.share_percent, for_big.safety_buffer) == (30, 2)
    assert queries.rules_for("SMALL", [default])[0].safety_buffer == 0
    with pytest.raises(InvalidRule):
        ledger.override_sku_rules(default.channel_id, "BIG", {"colour": "red"}, "merch", "?")


def test_a_second_ledger_on_the_same_store_sees_the_first_ones_writes():
    store = random_sku("store")
    one, two = memory_ledger(store), memory_ledger(store)
    sku = random_sku()
    one.record(change(K.RECEIPT, sku, 1))
    two.record(change(K.RECEIPT, sku, 1))  # reads what `one` wrote
    one.record(change(K.RECEIPT, sku, 1))  # stale cache: refused by version, reloaded, retried
    assert two.record(change(K.RECEIPT, sku, 1)).receipt.last_version == 5


class _Conflicting(MemoryRecorder):
    """A store where another writer always got there first."""

    def insert_events(self, stored_events: Any, **kwargs: Any) -> Any:
        raise IntegrityError("another writer got there first")


def test_a_writer_that_keeps_losing_the_race_gives_up_with_ledger_busy(ledger, monkeypatch):
    monkeypatch.setattr(ledger.events, "recorder", _Conflicting())
    monkeypatch.setattr(ledger, "max_attempts", 2)
    with pytest.raises(LedgerBusy, match="gave up after 2 conflicting attempts"):
        ledger.record(change(K.RECEIPT, random_sku(), 1))


def test_a_failed_write_leaves_no_trace_in_the_cache(ledger, queries, monkeypatch):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    with monkeypatch.context() as patched:
        patched.setattr(ledger.events, "recorder", _Conflicting())
        patched.setattr(ledger, "max_attempts", 1)
        with pytest.raises(LedgerBusy):
            ledger.record(change(K.RECEIPT, sku, 5))
    assert queries.get_item(sku).totals.on_hand == 1
    assert ledger.record(change(K.RECEIPT, sku, 2)).receipt.last_version == 3
