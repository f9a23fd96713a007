import json
from datetime import UTC, datetime

from application.intake import Delivery
from domain.stock import ChangeKind
from infrastructure.channels.base import Lane
from infrastructure.channels.shopify.translator import lane, translate
from infrastructure.config import ChannelConfig

CHANNEL = ChannelConfig(
    id="shop",
    kind="shopify",
    webhook_secrets=("s",),
    default_location="main",
    locations={"24826418": "west"},
)


class NoMemory:
    def recall(self, channel_id, order_id):
        return None


def delivery(topic: str, payload) -> Delivery:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Delivery(1, "shop", "k", topic, {}, body, datetime.now(UTC))


ORDER = {
    "id": 820982911946154508,
    "created_at": "2026-03-01T10:00:00-05:00",
    "location_id": 24826418,
    "cancelled_at": None,
    "line_items": [
        {"id": 466157049, "sku": "IPOD2008GREEN", "quantity": 2},
        {"id": 466157050, "sku": "GONE", "quantity": 0},
    ],
}


def test_an_order_sells_each_line_under_a_key_naming_the_fact():
    [sale] = translate(CHANNEL, delivery("orders/create", ORDER), NoMemory()).changes
    assert (sale.kind, sale.sku, sale.quantity, sale.location) == (
        ChangeKind.SALE,
        "IPOD2008GREEN",
        2,
        "west",
    )
    assert sale.business_key == "shop:sale:820982911946154508:466157049"
    assert sale.occurred_at == datetime.fromisoformat("2026-03-01T10:00:00-05:00")
    assert sale.reference == "shopify://shop/orders/820982911946154508"


def test_a_cancellation_carries_its_sale_so_either_order_of_arrival_converges():
    cancelled = {**ORDER, "cancelled_at": "2026-03-02T10:00:00Z", "cancel_reason": "customer"}
    changes = translate(CHANNEL, delivery("orders/cancelled", cancelled), NoMemory()).changes
    assert [(c.kind, c.business_key) for c in changes] == [
        (ChangeKind.SALE, "shop:sale:820982911946154508:466157049"),
        (ChangeKind.SALE_CANCELLATION, "shop:cancel:820982911946154508:466157049"),
    ]
    assert changes[1].reason == "customer"


def test_refunds_restock_by_type():
    refund = {
        "id": 9,
        "order_id": 4,
        "created_at": "2026-03-02T13:53:19-05:00",
        "refund_line_items": [
            {
                "id": 1,
                "quantity": 1,
                "restock_type": "return",
                "location_id": 24826418,
                "line_item": {"id": 5, "sku": "A"},
            },
            {"id": 2, "quantity": 2, "restock_type": "cancel", "line_item": {"id": 6, "sku": "B"}},
            {
                "id": 3,
                "quantity": 1,
                "restock_type": "no_restock",
                "line_item": {"id": 7, "sku": "C"},
            },
        ],
    }
    changes = translate(CHANNEL, delivery("refunds/create", refund), NoMemory()).changes
    assert [(c.kind, c.sku, c.quantity, c.location, c.business_key) for c in changes] == [
        (ChangeKind.RETURN, "A", 1, "west", "shop:refund:9:1"),
        (ChangeKind.SALE_CANCELLATION, "B", 2, "main", "shop:refund:9:2"),
    ]


def test_a_fulfillment_ships_its_lines():
    fulfillment = {
        "id": 55,
        "order_id": 4,
        "location_id": None,
        "line_items": [{"id": 5, "sku": "A", "quantity": 1}],
    }
    [ship] = translate(CHANNEL, delivery("fulfillments/create", fulfillment), NoMemory()).changes
    assert (ship.kind, ship.business_key) == (ChangeKind.SHIPMENT, "shop:fulfillment:55:5")


def test_a_level_update_is_an_observation_never_a_change():
    level = {
        "inventory_item_id": 808950810,
        "location_id": 24826418,
        "available": 6,
        "updated_at": "2026-03-01T10:00:00-05:00",
        "admin_graphql_api_id": "gid://x",
    }
    translation = translate(CHANNEL, delivery("inventory_levels/update", level), NoMemory())
    assert translation.changes == ()
    [seen] = translation.observations
    assert (seen.quantity, seen.location) == (6, "west")


def test_what_cannot_be_read_is_parked_with_a_reason():
    assert translate(CHANNEL, delivery("orders/create", b"<xml/>"), NoMemory()).parked == (
        "the body is not JSON"
    )
    assert (
        "non-empty sku"
        in translate(
            CHANNEL,
            delivery("orders/create", {**ORDER, "line_items": [{"id": 1, "quantity": 1}]}),
            NoMemory(),
        ).parked
    )
    assert (
        "line_items" in translate(CHANNEL, delivery("orders/create", {"id": 1}), NoMemory()).parked
    )


def test_topics_that_move_no_stock_do_nothing():
    translation = translate(CHANNEL, delivery("products/update", {"id": 1}), NoMemory())
    assert (translation.changes, translation.parked) == ((), None)


def test_sales_take_the_decrement_lane():
    assert lane("orders/create") is Lane.DECREMENTS
    assert lane("refunds/create") is Lane.INCREMENTS
