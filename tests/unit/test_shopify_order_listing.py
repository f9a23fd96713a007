"""A Shopify order as the GraphQL listing shows it becomes the REST order its webhook carries:
the translator reads both alike, so an order seen by poll and by webhook, in any order and any
number of times, holds what it holds once."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.stock import Levels
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.shopify.order_listing import rest_order
from infrastructure.channels.shopify.translator import translate
from tests.orders import Stock, delivery

CHANNEL = ShopifyConfig(
    id="shop", webhook_secrets=("s",), default_location="main", locations={"24826418": "west"}
)
WEST = {"id": "gid://shopify/Location/24826418"}


def line(number: int, sku: str, quantity: int, current: int | None = None) -> dict[str, Any]:
    gid = f"gid://shopify/LineItem/{number}"
    return {"id": gid, "sku": sku, "quantity": quantity, "currentQuantity": current}


NODE = {
    "id": "gid://shopify/Order/1001",
    "createdAt": "2026-03-01T10:00:00Z",
    "updatedAt": "2026-03-01T10:05:00Z",
    "cancelledAt": None,
    "cancelReason": None,
    "retailLocation": None,
    "lineItems": {"nodes": [line(1, "A", 3, 2), line(2, "B", 2, 2)]},
    "fulfillments": [
        {
            "id": "gid://shopify/Fulfillment/700",
            "status": "SUCCESS",
            "location": WEST,
            "fulfillmentLineItems": {
                "nodes": [
                    {"quantity": 2, "lineItem": {"id": "gid://shopify/LineItem/2", "sku": "B"}}
                ]
            },
        }
    ],
    "refunds": [
        {
            "id": "gid://shopify/Refund/900",
            "refundLineItems": {
                "nodes": [
                    {
                        "id": "gid://shopify/RefundLineItem/901",
                        "quantity": 1,
                        "restockType": "CANCEL",
                        "location": None,
                        "lineItem": line(1, "A", 3),
                    }
                ]
            },
        }
    ],
}

# The same order as its `orders/updated` webhook carries it (CHANNELS.md §1.1).
WEBHOOK = {
    "id": 1001,
    "created_at": "2026-03-01T10:00:00Z",
    "updated_at": "2026-03-01T10:05:00Z",
    "cancelled_at": None,
    "cancel_reason": None,
    "location_id": None,
    "line_items": [
        {"id": 1, "sku": "A", "quantity": 3, "current_quantity": 2},
        {"id": 2, "sku": "B", "quantity": 2, "current_quantity": 2},
    ],
    "fulfillments": [
        {
            "id": 700,
            "order_id": 1001,
            "status": "success",
            "location_id": 24826418,
            "line_items": [{"id": 2, "sku": "B", "quantity": 2}],
        }
    ],
    "refunds": [
        {
            "id": 900,
            "order_id": 1001,
            "refund_line_items": [
                {
                    "id": 901,
                    "line_item_id": 1,
                    "quantity": 1,
                    "restock_type": "cancel",
                    "location_id": None,
                    "line_item": {"id": 1, "sku": "A", "quantity": 3},
                }
            ],
        }
    ],
}


def levels(*payloads: dict[str, Any]) -> dict[tuple[str, str], Levels]:
    stock = Stock()
    for sku in ("A", "B"):
        stock.receive(sku, 10)
        stock.receive(sku, 10, location="west")
    deliveries = (delivery("shop", "orders/updated", payload) for payload in payloads)
    stock.apply_all(translate(CHANNEL, d, None) for d in deliveries)  # type: ignore[arg-type]
    return stock.levels()


def test_a_listed_order_is_read_as_its_webhook_is():
    assert levels(rest_order(NODE)) == levels(WEBHOOK)
    assert levels(rest_order(NODE)) != levels()  # it moved stock: the comparison says something


@given(st.lists(st.sampled_from(["poll", "webhook"]), min_size=1, max_size=6))
def test_an_order_seen_by_poll_and_webhook_in_any_order_any_number_of_times_counts_once(routes):
    payloads = {"poll": rest_order(NODE), "webhook": WEBHOOK}
    assert levels(*(payloads[route] for route in routes)) == levels(WEBHOOK)
