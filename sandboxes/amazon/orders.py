"""The Amazon sandbox's merchant-fulfilled orders and the ORDER_CHANGE notification each change of
one publishes (CHANNELS.md §3.1)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sandboxes.amazon.listings import amazon_time


class OutOfStock(ValueError):
    """Raised when a shopper asks for more than the seller's merchant-fulfilled stock."""


@dataclass
class Order:
    id: str
    sku: str
    quantity: int
    item_id: str
    status: str = "Unshipped"


class Topic(Protocol):
    @property
    def topic_arn(self) -> str: ...


class Seller(Protocol):
    """What a notification names of the seller (the sandbox's `AmazonSandbox`)."""

    @property
    def seller_id(self) -> str: ...

    @property
    def marketplace_id(self) -> str: ...

    @property
    def credentials(self) -> tuple[str, str, str]: ...

    @property
    def topic(self) -> Topic: ...


def order_change(order: Order, seller: Seller) -> dict[str, Any]:
    """The ORDER_CHANGE notification of `order` as it is now (CHANNELS.md §3.1)."""
    now = amazon_time(datetime.now(UTC))
    item = {
        "OrderItemId": order.item_id,
        "SellerSKU": order.sku,
        "SupplySourceId": None,
        "Quantity": order.quantity,
        "QuantityShipped": order.quantity if order.status == "Shipped" else 0,
        "IsBuyerRequestedCancel": False,
    }
    change = {
        "NotificationLevel": "OrderLevel",
        "SellerId": seller.seller_id,
        "AmazonOrderId": order.id,
        "OrderChangeType": "OrderStatusChange",
        "OrderChangeTrigger": {"TimeOfOrderChange": now, "ChangeReason": "OrderStatusChange"},
        "Summary": {
            "MarketplaceId": seller.marketplace_id,
            "OrderStatus": order.status,
            "FulfillmentType": "MFN",
            "OrderItems": [item],
        },
    }
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": now,
        "Payload": {"OrderChangeNotification": change},
        "NotificationMetadata": {
            "ApplicationId": seller.credentials[0],
            "SubscriptionId": str(uuid.uuid5(uuid.NAMESPACE_URL, seller.topic.topic_arn)),
            "PublishTime": now,
            "NotificationId": str(uuid.uuid4()),
        },
    }
