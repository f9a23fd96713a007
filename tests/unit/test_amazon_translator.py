"""Amazon ORDER_CHANGE notifications to stock changes, checked by their effect on an item."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.intake import Delivery, Translation
from domain.stock import ChangeKind, Levels
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.translator import lane, translate
from infrastructure.channels.base import Lane
from tests.orders import Stock
from tests.unit.amazon_messages import (
    ORDER_ID,
    order_change,
    order_item,
    sns_confirmation,
    sns_notification,
)

CHANNEL = AmazonConfig(
    id="amz",
    default_location="main",
    locations={"warehouse-west": "west"},
)
SKU = "SellerSKUID1"
ITEM = "OIID34853450"


NO_READS = None  # Amazon's translator reads nothing from the channel


def delivery(message: dict[str, Any] | bytes, topic: str = "ORDER_CHANGE") -> Delivery:
    raw = message if isinstance(message, bytes) else json.dumps(message).encode()
    return Delivery(1, "amz", "k", topic, {}, raw, datetime.now(UTC))


def translated(notification: dict[str, Any] | str) -> Translation:
    return translate(CHANNEL, delivery(sns_notification(notification)), NO_READS)


def after(*notifications: dict[str, Any], on_hand: int = 10) -> Levels:
    stock = Stock()
    stock.receive(SKU, on_hand)
    stock.apply_all(translated(n) for n in notifications)
    return stock.items[SKU].levels_at("main")


def at(minute: int) -> str:
    return f"2026-03-01T00:{minute:02d}:00.000Z"


def test_an_unshipped_order_commits_its_items_under_the_order_s_reference():
    stock = Stock()
    stock.receive(SKU, 10)
    stock.apply(translated(order_change("Unshipped")))
    [sale] = stock.changes[1:]
    assert (sale.kind, sale.sku, sale.quantity, sale.location) == (ChangeKind.SALE, SKU, 2, "main")
    assert sale.business_key.startswith(f"amz:order:{ORDER_ID}:line:{ITEM}:main:sale")
    assert sale.source == "amz"
    assert sale.reference == f"amazon://amz/orders/{ORDER_ID}"
    assert sale.occurred_at == datetime(2026, 3, 1, 0, 9, 50, tzinfo=UTC)


@pytest.mark.parametrize("status", ["Pending", "Unshipped", "PartiallyShipped"])
def test_every_open_status_commits_the_items(status):
    assert after(order_change(status)) == Levels(on_hand=10, committed=2)


def test_an_item_shipped_from_a_supply_source_is_sold_at_our_location_for_it():
    stock = Stock()
    items = [order_item(supply_source="warehouse-west"), order_item("OI2", "B", 1)]
    stock.apply(translated(order_change("Unshipped", items)))
    assert stock.levels() == {
        ("B", "main"): Levels(committed=1),
        (SKU, "west"): Levels(committed=2),
    }


def test_a_cancelled_order_commits_nothing():
    assert after(order_change("Canceled")) == Levels(on_hand=10)


def test_a_buyer_requested_cancellation_of_an_open_order_releases_the_item():
    items = [order_item(buyer_cancel=True)]
    assert after(order_change("Unshipped"), order_change("Unshipped", items)) == Levels(on_hand=10)


def test_a_shipped_order_ships_even_if_the_buyer_asked_too_late():
    assert after(order_change("Shipped", [order_item(buyer_cancel=True)])) == Levels(on_hand=8)


def test_a_partially_shipped_order_ships_some_and_keeps_the_rest_committed():
    partly = order_item(quantity=3) | {"QuantityShipped": 1}
    assert after(order_change("PartiallyShipped", [partly])) == Levels(on_hand=9, committed=2)


def test_a_partially_shipped_order_cancelled_keeps_what_left_and_releases_the_rest():
    partly = order_item(quantity=3) | {"QuantityShipped": 1}
    levels = after(
        order_change("PartiallyShipped", [partly], time_of_change=at(1)),
        order_change("Canceled", [partly], time_of_change=at(2)),
    )
    assert levels == Levels(on_hand=9)


def test_an_order_amazon_fulfils_moves_none_of_our_stock():
    assert translated(order_change("Unshipped", fulfilment="AFN")) == Translation()


@pytest.mark.parametrize("status", ["Unfulfillable", "InvoiceUnconfirmed", "PendingAvailability"])
def test_other_statuses_move_nothing_yet(status):
    assert after(order_change(status)) == Levels(on_hand=10)


def test_an_item_with_no_units_sells_nothing():
    assert after(order_change("Unshipped", [order_item(quantity=0)])) == Levels(on_hand=10)
    assert after(order_change("Canceled", [order_item(quantity=0)])) == Levels(on_hand=10)


def test_the_event_time_stands_in_when_the_trigger_gives_none():
    [update] = translated(order_change(time_of_change=None)).orders
    assert update.occurred_at == datetime(2026, 3, 1, 0, 9, 53, 109000, tzinfo=UTC)


def test_hand_shakes_and_other_notifications_move_nothing():
    confirmation = sns_confirmation("https://sns.us-east-1.amazonaws.com/?Action=Confirm")
    assert translate(CHANNEL, delivery(confirmation), NO_READS) == Translation()
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
        (order_change(order_id=""), "AmazonOrderId"),
    ],
)
def test_what_cannot_be_read_is_parked_with_a_reason(notification, reason):
    parked = translated(notification).parked
    assert parked is not None
    assert reason in parked


def test_a_body_that_is_no_sns_message_is_parked():
    assert translate(CHANNEL, delivery(b"<xml/>"), NO_READS).parked == (
        "the body is not an SNS message (a JSON object)"
    )
    assert translate(CHANNEL, delivery({"Type": "Gossip"}), NO_READS).parked == (
        "unknown SNS message Type 'Gossip'"
    )


def test_order_changes_take_the_decrements_lane_and_the_rest_increments():
    assert lane("ORDER_CHANGE") is Lane.DECREMENTS
    assert lane("SubscriptionConfirmation") is Lane.INCREMENTS


# Net effect on an item --------------------------------------------------------------------


def test_an_order_then_its_cancellation_commits_nothing():
    assert after(order_change("Unshipped")) == Levels(on_hand=10, committed=2)
    assert after(order_change("Unshipped"), order_change("Canceled")) == Levels(on_hand=10)


def test_a_cancellation_before_its_order_still_commits_nothing():
    assert after(order_change("Canceled"), order_change("Unshipped")) == Levels(on_hand=10)


def test_an_order_then_its_shipment_leaves_fewer_on_hand_and_nothing_committed():
    assert after(order_change("Unshipped"), order_change("Shipped")) == Levels(on_hand=8)


def test_a_shipment_before_its_order_and_a_duplicate_count_once():
    shipped, unshipped = order_change("Shipped"), order_change("Unshipped")
    assert after(shipped, unshipped, shipped) == Levels(on_hand=8)


def test_an_amazon_fulfilled_order_leaves_our_stock_alone():
    assert after(order_change("Shipped", fulfilment="AFN")) == Levels(on_hand=10)


# Any order, any repetition ------------------------------------------------------------------


def _lifecycle(quantity: int, shipped_first: int, ending: str) -> tuple[list[dict], Levels]:
    """The notifications Amazon sends for one order, in the order it sends them, and what the
    item holds once they are all applied (from 10 on hand)."""
    item = order_item(quantity=quantity)
    sent = [
        order_change("Pending", [item], time_of_change=at(1)),
        order_change("Unshipped", [item], time_of_change=at(2)),
    ]
    shipped = 0
    if shipped_first:
        shipped = shipped_first
        partly = item | {"QuantityShipped": shipped}
        sent.append(order_change("PartiallyShipped", [partly], time_of_change=at(3)))
    if ending == "shipped":
        done = item | {"QuantityShipped": quantity}
        sent.append(order_change("Shipped", [done], time_of_change=at(4)))
        return sent, Levels(on_hand=10 - quantity)
    if ending == "buyer_cancel":
        asked = item | {"QuantityShipped": shipped, "IsBuyerRequestedCancel": True}
        sent.append(
            order_change(
                "Unshipped" if not shipped else "PartiallyShipped", [asked], time_of_change=at(4)
            )
        )
        return sent, Levels(on_hand=10 - shipped)
    if ending == "cancelled":
        sent.append(
            order_change("Canceled", [item | {"QuantityShipped": shipped}], time_of_change=at(4))
        )
        return sent, Levels(on_hand=10 - shipped)
    return sent, Levels(on_hand=10 - shipped, committed=quantity - shipped)


@given(
    data=st.data(),
    quantity=st.integers(1, 4),
    ending=st.sampled_from(["open", "shipped", "cancelled", "buyer_cancel"]),
)
def test_every_permutation_with_repeats_of_an_order_s_notifications_ends_the_same(
    data, quantity, ending
):
    shipped_first = data.draw(st.integers(0, quantity - 1))
    sent, expected = _lifecycle(quantity, shipped_first, ending)
    assert after(*sent) == expected
    repeats = data.draw(st.lists(st.sampled_from(sent), max_size=4))
    shuffled = data.draw(st.permutations([*sent, *repeats]))
    assert after(*shuffled) == expected


def test_a_mapped_seller_sku_is_recorded_under_ours():
    mapped = CHANNEL.model_copy(update={"sku_map": {"AMZ-1": SKU}})
    message = sns_notification(order_change("Unshipped", [order_item(sku="AMZ-1")]))
    stock = Stock()
    stock.receive(SKU, 10)
    stock.apply(translate(mapped, delivery(message), NO_READS))
    assert stock.levels() == {(SKU, "main"): Levels(on_hand=10, committed=2)}
