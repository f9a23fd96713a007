"""Amazon ORDER_CHANGE notifications to stock changes, checked by their effect on an item."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from application.intake import Delivery, Translation
from domain.inventory import InventoryItem
from domain.stock import ChangeKind, Levels
from infrastructure.channels.amazon.translator import lane, translate
from infrastructure.channels.base import Lane
from infrastructure.config import ChannelConfig
from tests.helpers import change
from tests.unit.amazon_messages import (
    ORDER_ID,
    order_change,
    order_item,
    sns_confirmation,
    sns_notification,
)

CHANNEL = ChannelConfig(
    id="amz",
    kind="amazon",
    default_location="main",
    locations={"warehouse-west": "west"},
)
SKU = "SellerSKUID1"
ITEM = "OIID34853450"


class NoMemory:
    def recall(self, channel_id, order_id):
        return None


def delivery(message: dict[str, Any] | bytes, topic: str = "ORDER_CHANGE") -> Delivery:
    raw = message if isinstance(message, bytes) else json.dumps(message).encode()
    return Delivery(1, "amz", "k", topic, {}, raw, datetime.now(UTC))


def translated(notification: dict[str, Any] | str) -> Translation:
    return translate(CHANNEL, delivery(sns_notification(notification)), NoMemory())


class Ledger:
    """Applies translations to one item at most once per business key, as the ledger does."""

    def __init__(self, on_hand: int) -> None:
        self.item = InventoryItem(SKU)
        self.item.record(change(ChangeKind.RECEIPT, SKU, on_hand))
        self.applied: set[str] = set()

    def apply(self, translation: Translation) -> Levels:
        for fact in translation.changes:
            if fact.business_key not in self.applied:
                self.applied.add(fact.business_key)
                self.item.record(fact)
        return self.item.levels_at("main")


def test_an_unshipped_order_sells_each_item_under_a_key_naming_the_fact():
    [sale] = translated(order_change("Unshipped")).changes
    assert (sale.kind, sale.sku, sale.quantity, sale.location) == (ChangeKind.SALE, SKU, 2, "main")
    assert sale.business_key == f"amz:sale:{ORDER_ID}:{ITEM}"
    assert sale.source == "amz"
    assert sale.reference == f"amazon://amz/orders/{ORDER_ID}"
    assert sale.occurred_at == datetime(2026, 3, 1, 0, 9, 50, tzinfo=UTC)


@pytest.mark.parametrize("status", ["Pending", "Unshipped", "PartiallyShipped"])
def test_every_open_status_commits_the_items(status):
    assert [c.kind for c in translated(order_change(status)).changes] == [ChangeKind.SALE]


def test_an_item_shipped_from_a_supply_source_is_sold_at_our_location_for_it():
    items = [order_item(supply_source="warehouse-west"), order_item("OI2", "B", 1)]
    changes = translated(order_change("Unshipped", items)).changes
    assert [(c.sku, c.location) for c in changes] == [(SKU, "west"), ("B", "main")]


def test_a_cancelled_order_carries_its_sale_so_either_order_of_arrival_converges():
    changes = translated(order_change("Canceled")).changes
    assert [(c.kind, c.business_key, c.reason) for c in changes] == [
        (ChangeKind.SALE, f"amz:sale:{ORDER_ID}:{ITEM}", ""),
        (ChangeKind.SALE_CANCELLATION, f"amz:cancel:{ORDER_ID}:{ITEM}", "canceled"),
    ]


def test_a_buyer_requested_cancellation_of_an_open_order_releases_the_item():
    items = [order_item(buyer_cancel=True), order_item("OI2", "B", 1)]
    changes = translated(order_change("Unshipped", items)).changes
    assert [(c.kind, c.sku, c.reason) for c in changes] == [
        (ChangeKind.SALE, SKU, ""),
        (ChangeKind.SALE_CANCELLATION, SKU, "buyer_requested_cancel"),
        (ChangeKind.SALE, "B", ""),
    ]


def test_a_shipped_order_carries_its_sale_then_ships_even_if_the_buyer_asked_too_late():
    changes = translated(order_change("Shipped", [order_item(buyer_cancel=True)])).changes
    assert [(c.kind, c.business_key) for c in changes] == [
        (ChangeKind.SALE, f"amz:sale:{ORDER_ID}:{ITEM}"),
        (ChangeKind.SHIPMENT, f"amz:ship:{ORDER_ID}:{ITEM}"),
    ]


def test_an_order_amazon_fulfils_moves_none_of_our_stock():
    assert translated(order_change("Unshipped", fulfilment="AFN")) == Translation()


@pytest.mark.parametrize("status", ["Unfulfillable", "InvoiceUnconfirmed", "PendingAvailability"])
def test_other_statuses_move_nothing_yet(status):
    assert translated(order_change(status)) == Translation()


def test_an_item_with_no_units_sells_nothing():
    assert translated(order_change("Unshipped", [order_item(quantity=0)])) == Translation()


def test_the_event_time_stands_in_when_the_trigger_gives_none():
    [sale] = translated(order_change(time_of_change=None)).changes
    assert sale.occurred_at == datetime(2026, 3, 1, 0, 9, 53, 109000, tzinfo=UTC)


def test_hand_shakes_and_other_notifications_move_nothing():
    confirmation = sns_confirmation("https://sns.us-east-1.amazonaws.com/?Action=Confirm")
    assert translate(CHANNEL, delivery(confirmation), NoMemory()) == Translation()
    other = {"NotificationType": "ANY_OFFER_CHANGED", "Payload": {}}
    assert translated(other) == Translation()


@pytest.mark.parametrize(
    ("notification", "reason"),
    [
        ("plain text", "the SNS Message is not a JSON object"),
        (order_change(fulfilment="SFN"), "unknown FulfillmentType 'SFN'"),
        ({"NotificationType": "ORDER_CHANGE", "Payload": {}}, "OrderChangeNotification"),
        (order_change(items=[order_item(quantity="2")]), "Quantity '2'"),
        (order_change(items=[order_item(sku="")]), "SellerSKU"),
        (order_change("Canceled", [order_item(quantity=0)]), "Canceled with Quantity 0"),
        (order_change(order_id=""), "AmazonOrderId"),
    ],
)
def test_what_cannot_be_read_is_parked_with_a_reason(notification, reason):
    parked = translated(notification).parked
    assert parked is not None
    assert reason in parked


def test_a_body_that_is_no_sns_message_is_parked():
    assert translate(CHANNEL, delivery(b"<xml/>"), NoMemory()).parked == (
        "the body is not an SNS message (a JSON object)"
    )
    assert translate(CHANNEL, delivery({"Type": "Gossip"}), NoMemory()).parked == (
        "unknown SNS message Type 'Gossip'"
    )


def test_order_changes_take_the_decrements_lane_and_the_rest_increments():
    assert lane("ORDER_CHANGE") is Lane.DECREMENTS
    assert lane("SubscriptionConfirmation") is Lane.INCREMENTS


# Net effect on an item, with the ledger's once-per-key rule ------------------------------------


def test_an_order_then_its_cancellation_commits_nothing():
    ledger = Ledger(on_hand=10)
    assert ledger.apply(translated(order_change("Unshipped"))) == Levels(on_hand=10, committed=2)
    assert ledger.apply(translated(order_change("Canceled"))) == Levels(on_hand=10)


def test_a_cancellation_before_its_order_still_commits_nothing():
    ledger = Ledger(on_hand=10)
    assert ledger.apply(translated(order_change("Canceled"))) == Levels(on_hand=10)
    assert ledger.apply(translated(order_change("Unshipped"))) == Levels(on_hand=10)


def test_an_order_then_its_shipment_leaves_fewer_on_hand_and_nothing_committed():
    ledger = Ledger(on_hand=10)
    ledger.apply(translated(order_change("Unshipped")))
    assert ledger.apply(translated(order_change("Shipped"))) == Levels(on_hand=8)


def test_a_shipment_before_its_order_and_a_duplicate_count_once():
    ledger = Ledger(on_hand=10)
    ledger.apply(translated(order_change("Shipped")))
    ledger.apply(translated(order_change("Unshipped")))
    assert ledger.apply(translated(order_change("Shipped"))) == Levels(on_hand=8)


def test_an_amazon_fulfilled_order_leaves_our_stock_alone():
    ledger = Ledger(on_hand=10)
    assert ledger.apply(translated(order_change("Shipped", fulfilment="AFN"))) == Levels(on_hand=10)
