"""Messages as Amazon SP-API and SNS write them (CHANNELS.md §3.1, §3.2), for the Amazon tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:sp-api-order-change"
ORDER_ID = "903-8868176-2219830"


def order_item(
    item_id: str = "OIID34853450",
    sku: str = "SellerSKUID1",
    quantity: Any = 2,
    *,
    supply_source: str | None = None,
    buyer_cancel: bool = False,
) -> dict[str, Any]:
    return {
        "OrderItemId": item_id,
        "SellerSKU": sku,
        "SupplySourceId": supply_source,
        "Quantity": quantity,
        "QuantityShipped": 0,
        "IsBuyerRequestedCancel": buyer_cancel,
    }


def order_change(
    status: str = "Unshipped",
    items: list[dict[str, Any]] | None = None,
    *,
    fulfilment: str = "MFN",
    order_id: str = ORDER_ID,
    time_of_change: str | None = "2026-03-01T00:09:50.000Z",
    notification_id: str | None = None,
) -> dict[str, Any]:
    """An `ORDER_CHANGE` notification, trimmed as in `OrderChangeNotification.json`."""
    trigger = {"TimeOfOrderChange": time_of_change, "ChangeReason": "OrderStatusChange"}
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": "2026-03-01T00:09:53.109Z",
        "Payload": {
            "OrderChangeNotification": {
                "NotificationLevel": "OrderLevel",
                "SellerId": "A3TH9S8BH6GOGM",
                "AmazonOrderId": order_id,
                "OrderChangeType": "OrderStatusChange",
                "OrderChangeTrigger": trigger if time_of_change else {},
                "Summary": {
                    "MarketplaceId": "ATVPDKIKX0DER",
                    "OrderStatus": status,
                    "FulfillmentType": fulfilment,
                    "OrderItems": [order_item()] if items is None else items,
                },
            }
        },
        "NotificationMetadata": {
            "ApplicationId": "app-id-1",
            "SubscriptionId": "subscription-id-1",
            "PublishTime": "2026-03-01T00:09:54.000Z",
            "NotificationId": notification_id or str(uuid.uuid4()),
        },
    }


def sns_notification(inner: dict[str, Any] | str, topic_arn: str = TOPIC_ARN) -> dict[str, Any]:
    """An unsigned SNS Notification carrying `inner` (JSON-encoded unless already text)."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Message": inner if isinstance(inner, str) else json.dumps(inner),
        "Timestamp": "2026-03-01T00:09:54.120Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def sns_confirmation(
    subscribe_url: str, kind: str = "SubscriptionConfirmation", topic_arn: str = TOPIC_ARN
) -> dict[str, Any]:
    """An unsigned SNS SubscriptionConfirmation (or UnsubscribeConfirmation)."""
    return {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37fb687f5d51e6e2425c464de12884c2",
        "TopicArn": topic_arn,
        "Message": f"You have chosen to subscribe to the topic {topic_arn}.",
        "SubscribeURL": subscribe_url,
        "Timestamp": "2026-03-01T00:00:00.000Z",
    }
