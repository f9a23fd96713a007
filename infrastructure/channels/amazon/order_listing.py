"""Amazon's merchant-fulfilled orders changed in a window, listed for reconciliation: so an order
whose ORDER_CHANGE notification was lost still reaches intake.

The Orders API (ordersV0): `getOrders` with `LastUpdatedAfter`, `FulfillmentChannels=MFN` and
pages of 100 (the most `MaxResultsPerPage` takes) followed by `NextToken`, then `getOrderItems`
for each order. Each order comes as the ORDER_CHANGE notification its last change publishes,
inside an SNS notification envelope: the message the translator reads, under the topic the
verifier gives notifications (`ORDER_CHANGE`), with the order's and its items' own ids as the
business keys, so an order seen by notification and by poll counts once. The envelope is not
signed: it comes from our own SP-API call, never through the webhook endpoint.

The documented rates are low: `getOrders` 0.0167 a second (burst 20), `getOrderItems` 0.5 (burst
30). Each page after the first waits for its turn as long as the rate spaces them, instead of
giving up after the gateway's `timeout`; a 429 still ends the listing (`Throttled`).

`LastUpdatedBefore` must be at least two minutes before now: a window ending later is asked
without it, and orders changed after `until` are left to the next window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from infrastructure.channels.amazon import sns
from infrastructure.channels.amazon.client import objects, required
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.gateway import AmazonGateway
from infrastructure.channels.amazon.translator import ORDER_CHANGE
from infrastructure.channels.base import PolledOrder
from infrastructure.channels.gateway import ChannelError

ORDERS = "/orders/v0/orders"
ORDER_PAGE = 100  # the most orders one getOrders page holds
SETTLED = timedelta(minutes=2)  # how long before now `LastUpdatedBefore` must be
HEADERS = {"x-amz-sns-message-type": sns.NOTIFICATION}


def list_orders(
    channel: AmazonConfig, gateway: AmazonGateway, since: datetime, until: datetime
) -> Iterator[PolledOrder]:
    """The seller's merchant-fulfilled orders last changed from `since` to `until`, each as
    the ORDER_CHANGE notification of its last change, in the order Amazon lists them (which it
    does not document; the sandbox: oldest change first).

    Raises:
        Throttled: Amazon throttled a call, or no turn came in time.
        ChannelError: SP-API refused a call or answered an order without its ids.
        ChannelUnavailable, ChannelAuthFailed: as the gateway's reads.
    """
    for order in _orders(channel, gateway, since, until):
        order_id = required(order, "AmazonOrderId")
        path = f"{ORDERS}/{quote(order_id, safe='')}/orderItems"
        items = list(_pages(gateway, "getOrderItems", path, {}, "OrderItems"))
        yield polled(channel, order, items)


def polled(
    channel: AmazonConfig, order: Mapping[str, Any], items: list[dict[str, Any]]
) -> PolledOrder:
    """An order (`getOrders`) and its items (`getOrderItems`) as the notification of its last
    change, in its SNS envelope."""
    order_id, changed = required(order, "AmazonOrderId"), required(order, "LastUpdateDate")
    notification = {
        "NotificationVersion": "1.0",
        "NotificationType": ORDER_CHANGE,
        "PayloadVersion": "1.0",
        "EventTime": changed,
        "Payload": {"OrderChangeNotification": _order_change(channel, order, items)},
    }
    envelope = {
        "Type": sns.NOTIFICATION,
        "MessageId": f"poll:{order_id}:{changed}",
        "Timestamp": changed,
        "Message": json.dumps(notification),
    }
    return PolledOrder(
        order_id=order_id,
        modified_at=_moment(changed),
        topic=ORDER_CHANGE,
        body=json.dumps(envelope).encode(),
        headers=HEADERS,
    )


def _order_change(
    channel: AmazonConfig, order: Mapping[str, Any], items: list[dict[str, Any]]
) -> dict[str, Any]:
    changed = order["LastUpdateDate"]
    source = (order.get("FulfillmentInstruction") or {}).get("FulfillmentSupplySourceId")
    return {
        "NotificationLevel": "OrderLevel",
        "SellerId": channel.seller_id,
        "AmazonOrderId": order["AmazonOrderId"],
        "OrderChangeType": "OrderStatusChange",
        "OrderChangeTrigger": {"TimeOfOrderChange": changed, "ChangeReason": "OrderStatusChange"},
        "Summary": {
            "MarketplaceId": order.get("MarketplaceId", channel.marketplace_id),
            "OrderStatus": order.get("OrderStatus"),
            "FulfillmentType": order.get("FulfillmentChannel"),
            "OrderItems": [_item(item, source) for item in items],
        },
    }


def _item(item: Mapping[str, Any], source: object) -> dict[str, Any]:
    """An `OrderItem` as a notification's item: its quantities under their notification names,
    the buyer's cancellation request (a "true" text in the Orders API) as a boolean."""
    cancel = item.get("BuyerRequestedCancel") or {}
    return {
        "OrderItemId": item.get("OrderItemId"),
        "SellerSKU": item.get("SellerSKU"),
        "SupplySourceId": source,
        "Quantity": item.get("QuantityOrdered"),
        "QuantityShipped": item.get("QuantityShipped") or 0,
        "IsBuyerRequestedCancel": str(cancel.get("IsBuyerRequestedCancel")).lower() == "true",
    }


def _orders(
    channel: AmazonConfig, gateway: AmazonGateway, since: datetime, until: datetime
) -> Iterator[dict[str, Any]]:
    criteria = {
        "MarketplaceIds": channel.marketplace_id,
        "LastUpdatedAfter": _amazon_time(since),
        "FulfillmentChannels": "MFN",
        "MaxResultsPerPage": str(ORDER_PAGE),
    }
    if until <= datetime.now(UTC) - SETTLED:
        criteria["LastUpdatedBefore"] = _amazon_time(until)
    kept = {"MarketplaceIds": channel.marketplace_id}  # required beside a NextToken too
    for order in _pages(gateway, "getOrders", ORDERS, criteria, "Orders", kept=kept):
        if _moment(required(order, "LastUpdateDate")) <= until:
            yield order


def _pages(
    gateway: AmazonGateway,
    operation: str,
    path: str,
    criteria: Mapping[str, str],
    key: str,
    *,
    kept: Mapping[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The objects under `payload.<key>` of every page, the next asked by its `NextToken`
    (with the `kept` parameters) on a turn waited for as long as the rate spaces them."""
    params, wait = criteria, None
    while True:
        answer = gateway.get(operation, path, params, wait) or {}
        payload = answer.get("payload") or {}
        yield from objects(payload.get(key))
        token = payload.get("NextToken")
        if not isinstance(token, str) or not token:
            return
        params = {**(kept or {}), "NextToken": token}
        wait = 1.5 / gateway.rates[operation]  # beyond the gate's spacing of the rate


def _amazon_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _moment(text: str) -> datetime:
    """An ISO 8601 date of an answer, in UTC when it names no zone.

    Raises:
        ChannelError: the text is no ISO 8601 date.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ChannelError(f"SP-API answered {text!r} for a date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
