"""An order as the Orders API shows it (getOrders, getOrderItems) becomes the ORDER_CHANGE
notification its last change publishes: what the translator reads of it is what it reads of the
notification, under the same business keys, so an order seen by poll and by notification, in any
order and any number of times, holds what it holds once."""

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from application.intake import Delivery
from infrastructure.channels.amazon import translator
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.order_listing import polled
from tests.orders import Stock
from tests.unit.amazon_messages import ORDER_ID, order_change, order_item, sns_notification

CHANNEL = AmazonConfig(id="amazon-us", locations={"SS-1": "east"})
CHANGED = "2026-03-02T10:15:00.250Z"


def listed(status: str, *items: dict) -> tuple[dict, list[dict]]:
    order = {
        "AmazonOrderId": ORDER_ID,
        "PurchaseDate": "2026-03-02T10:00:00Z",
        "LastUpdateDate": CHANGED,
        "OrderStatus": status,
        "FulfillmentChannel": "MFN",
        "MarketplaceId": "ATVPDKIKX0DER",
        "FulfillmentInstruction": {"FulfillmentSupplySourceId": "SS-1"},
    }
    return order, list(items)


def item(item_id: str, sku: str, ordered: int, **more) -> dict:
    return {
        "ASIN": "B000000001",
        "OrderItemId": item_id,
        "SellerSKU": sku,
        "QuantityOrdered": ordered,
        **more,
    }


def translated(topic: str, body: bytes):
    delivery = Delivery(1, CHANNEL.id, "key", topic, {}, body, datetime.now(UTC))
    return translator.translate(CHANNEL, delivery, None)


def held(update):
    """What each line should hold in the ledger, from all the update knows."""
    return update.targets(update.facts, update.lines)


def test_a_polled_order_teaches_what_its_notification_teaches():
    order = polled(
        CHANNEL, *listed("Unshipped", item("OI-1", "SKU-1", 3), item("OI-2", "SKU-2", 1))
    )
    notification = order_change(
        "Unshipped",
        [
            order_item("OI-1", "SKU-1", 3, supply_source="SS-1"),
            order_item("OI-2", "SKU-2", 1, supply_source="SS-1"),
        ],
        order_id=ORDER_ID,
        time_of_change=CHANGED,
    )
    webhook = translated("ORDER_CHANGE", json.dumps(sns_notification(notification)).encode())
    [from_poll] = translated(order.topic, order.body).orders
    [from_webhook] = webhook.orders
    assert from_poll.order_id == from_webhook.order_id == ORDER_ID
    assert from_poll.lines == from_webhook.lines
    assert from_poll.targets == from_webhook.targets
    assert from_poll.facts == from_webhook.facts
    assert order.modified_at == datetime(2026, 3, 2, 10, 15, 0, 250000, tzinfo=UTC)


def test_a_buyers_cancellation_request_written_as_text_releases_the_item():
    cancel = {"BuyerRequestedCancel": {"IsBuyerRequestedCancel": "true", "BuyerCancelReason": "x"}}
    order = polled(CHANNEL, *listed("Unshipped", item("OI-1", "SKU-1", 2, **cancel)))
    [update] = translated(order.topic, order.body).orders
    assert held(update)["OI-1"].locations == {}


def test_shipped_units_and_the_supply_source_come_from_the_order_and_its_items():
    order = polled(
        CHANNEL, *listed("PartiallyShipped", item("OI-1", "SKU-1", 3, QuantityShipped=1))
    )
    [update] = translated(order.topic, order.body).orders
    [(location, units)] = held(update)["OI-1"].locations.items()
    assert location == "east"
    assert (units.committed, units.shipped) == (2, 1)


def notified(status: str) -> bytes:
    items = [order_item("OI-1", "SKU-1", 3, supply_source="SS-1")]
    notification = order_change(status, items, order_id=ORDER_ID, time_of_change=CHANGED)
    return json.dumps(sns_notification(notification)).encode()


def levels(*bodies: bytes):
    stock = Stock()
    stock.receive("SKU-1", 10, location="east")
    stock.apply_all(translated("ORDER_CHANGE", body) for body in bodies)
    return stock.levels()


@given(st.lists(st.sampled_from(["poll", "notification"]), min_size=1, max_size=6))
def test_an_order_seen_by_poll_and_notification_in_any_order_any_number_of_times_counts_once(
    routes,
):
    bodies = {
        "poll": polled(CHANNEL, *listed("Unshipped", item("OI-1", "SKU-1", 3))).body,
        "notification": notified("Unshipped"),
    }
    assert levels(*(bodies[route] for route in routes)) == levels(bodies["notification"])
    assert levels(bodies["poll"]) != levels()  # it moved stock: the comparison says something
