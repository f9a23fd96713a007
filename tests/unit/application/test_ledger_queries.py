"""The ledger's reads on the in-memory store: stock, history pages and filters, SKUs, audits
and oversells."""

import pytest

from application.errors import UnknownSku
from application.receipts import AuditFilter, HistoryFilter
from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from tests import ledger_scenarios as scenarios
from tests.helpers import change, random_sku

K = ChangeKind


def test_a_sku_never_recorded_is_unknown(queries):
    with pytest.raises(UnknownSku, match="no stock has been recorded"):
        queries.get_item(random_sku())


def test_history_pages_newest_first_and_filters_by_kind_and_time(ledger, queries):
    scenarios.history_pages_newest_first_and_filters_by_kind_and_time(ledger, queries)
    assert queries.history(random_sku(), HistoryFilter()).events == []


def test_known_skus_and_the_sku_search_name_only_recorded_skus(ledger, queries):
    ledger.record_batch([change(K.RECEIPT, sku, 1) for sku in ("Mug-1", "mug-2", "Plate-1")])
    assert queries.known_skus(["Mug-1", "Nothing"]) == {"Mug-1"}
    assert queries.skus("MUG") == ["Mug-1", "mug-2"]
    assert queries.skus("", after="Mug-1", limit=1) == ["Plate-1"]


def test_an_audit_of_an_order_finds_its_own_receipts_and_those_under_it(ledger, queries):
    sku, order = random_sku(), "shop://orders/7"
    ledger.record(change(K.RECEIPT, sku, 10, reference="po://1"))
    ledger.record(change(K.SALE, sku, 2, reference=order))
    ledger.record(change(K.SHIPMENT, sku, 2, reference=f"{order}/fulfillments/1"))
    ledger.record(change(K.SALE, sku, 1, reference="shop://orders/70"))

    found = queries.audit(AuditFilter(order=order + "/"))
    assert [r.reference for r in found] == [f"{order}/fulfillments/1", order]
    assert [r.kind for r in queries.audit(AuditFilter(sku=sku), limit=1)] == [K.SALE]
    sales = queries.audit(AuditFilter(kinds=frozenset({K.SALE})))
    assert {r.reference for r in sales} == {order, "shop://orders/70"}


def test_oversells_are_listed_newest_first(ledger, queries):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    short = ledger.record(change(K.SALE, sku, 3, business_key="order:1"))
    ledger.record(change(K.SALE, sku, 1, business_key="order:2"))
    found = queries.oversells()
    assert [(r.business_key, r.shortfall) for r in found] == [("order:2", 1), ("order:1", 2)]
    assert found[1] == short.receipt
    assert queries.oversells(before=found[0].recorded_at) == [short.receipt]


def test_a_channels_rule_changes_read_newest_first_with_who_and_why(ledger, queries):
    ledger.change_channel_rules(ChannelRule("shop", safety_buffer=2), "ops", "weekend sale")
    ledger.override_sku_rules("shop", "MUG-1", {"max_quantity": 5}, "ops", "fragile")
    ledger.override_sku_rules("shop", "MUG-1", {}, "lead", "mugs are fine now")
    ledger.change_channel_rules(ChannelRule("elsewhere", safety_buffer=1), "ops", "not this one")

    changes = queries.rule_changes("shop")

    assert [(c.sku, c.rules, c.changed_by, c.reason) for c in changes] == [
        ("MUG-1", {}, "lead", "mugs are fine now"),
        ("MUG-1", {"max_quantity": 5}, "ops", "fragile"),
        (None, {**changes[2].rules, "safety_buffer": 2}, "ops", "weekend sale"),
    ]
    assert changes[0].at >= changes[1].at >= changes[2].at
    assert [c.version for c in changes] == [4, 3, 2]  # version 1 is the channel's creation
    assert queries.rule_changes("nowhere") == []
