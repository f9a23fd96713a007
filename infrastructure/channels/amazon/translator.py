"""Amazon `ORDER_CHANGE` notifications to stock changes, and the SNS subscription hand-shake.

Only merchant-fulfilled (MFN) orders move our stock: Amazon ships AFN orders from its own
warehouses, whose stock we never held.

Amazon reports an order's status, at least once and in any order. Each status implies the facts
before it, so a notification emits all of them under business keys naming the fact, and the
ledger applies each key once: a cancellation or a shipment that arrives before its order still
converges.

- `Pending`, `Unshipped`, `PartiallyShipped`: the item is sold, `<channel>:sale:<order>:<item>`;
- `Canceled`, or an open order whose buyer asked to cancel the item: sold, then released,
  `<channel>:cancel:<order>:<item>`;
- `Shipped`: sold, then shipped, `<channel>:ship:<order>:<item>`;
- any other status (`Unfulfillable`, `InvoiceUnconfirmed`, `PendingAvailability`): nothing yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from application.intake import Delivery, OrderMemory, Translation
from domain.errors import DomainError
from domain.stock import ChangeKind, StockChange
from infrastructure.channels.amazon import sns
from infrastructure.channels.base import Lane
from infrastructure.config import ChannelConfig

Payload = dict[str, Any]

ORDER_CHANGE = "ORDER_CHANGE"

# Seconds to wait for SNS to confirm a subscription; a failure is retried by the worker.
CONFIRMATION_TIMEOUT = 10.0

_OPEN = frozenset({"Pending", "Unshipped", "PartiallyShipped"})
_SOLD = (ChangeKind.SALE,)
_CANCELLED = (ChangeKind.SALE, ChangeKind.SALE_CANCELLATION)
_SHIPPED = (ChangeKind.SALE, ChangeKind.SHIPMENT)
_KEY_NAMES = {
    ChangeKind.SALE: "sale",
    ChangeKind.SALE_CANCELLATION: "cancel",
    ChangeKind.SHIPMENT: "ship",
}


def translate(channel: ChannelConfig, delivery: Delivery, memory: OrderMemory) -> Translation:
    envelope = _json_object(delivery.body)
    if envelope is None:
        return Translation.park("the body is not an SNS message (a JSON object)")
    kind = envelope.get("Type")
    if kind in (sns.SUBSCRIPTION_CONFIRMATION, sns.UNSUBSCRIBE_CONFIRMATION):
        return Translation()  # hand-shakes move no stock; `acknowledge` answers them
    if kind != sns.NOTIFICATION:
        return Translation.park(f"unknown SNS message Type {kind!r}")
    return _notification(channel, envelope.get("Message"))


def lane(topic: str) -> Lane:
    return Lane.DECREMENTS if topic == ORDER_CHANGE else Lane.INCREMENTS


def acknowledge(channel: ChannelConfig, delivery: Delivery) -> None:
    """Confirm an SNS subscription by GETting its `SubscribeURL`: SNS delivers nothing before.

    Raises:
        SignatureInvalid: the `SubscribeURL` is on neither an SNS host nor the configured sandbox.
        httpx.HTTPError: SNS could not be reached or did not answer 2xx; the worker retries.
    """
    if delivery.topic != sns.SUBSCRIPTION_CONFIRMATION:
        return
    message = sns.parse_message(delivery.body)
    if message["Type"] != sns.SUBSCRIPTION_CONFIRMATION:
        return  # a notification whose own type happens to share the name
    url = message["SubscribeURL"]
    # Checked again, not only at intake: the channel's sandbox host may have been removed since.
    sns.check_subscribe_url(url, sns.sandbox_host(channel))
    httpx.get(url, timeout=CONFIRMATION_TIMEOUT).raise_for_status()


def _notification(channel: ChannelConfig, message: object) -> Translation:
    notification = _json_object(message)
    if notification is None:
        return Translation.park("the SNS Message is not a JSON object")
    notification_type = notification.get("NotificationType")
    handler = _HANDLERS.get(notification_type) if isinstance(notification_type, str) else None
    if handler is None:
        return Translation()  # a notification that moves no stock: nothing to do
    try:
        return handler(channel, notification)
    except (KeyError, TypeError, ValueError, AttributeError, DomainError) as error:
        return Translation.park(f"cannot read {notification_type} notification: {error!r}")


@dataclass(frozen=True)
class _Order:
    channel: ChannelConfig
    id: str
    status: str
    occurred_at: datetime

    def item_changes(self, item: Payload) -> list[StockChange]:
        buyer_cancelled = item.get("IsBuyerRequestedCancel") is True
        kinds = _facts(self.status, buyer_cancelled)
        quantity = _quantity(item)
        if not kinds or (quantity == 0 and kinds == _SOLD):
            return []  # nothing sold on this item (yet)
        if quantity == 0:
            # Releasing "zero" would leave an earlier sale committed for ever: ask a person.
            raise ValueError(f"item {item.get('OrderItemId')!r} is {self.status} with Quantity 0")
        reason = "buyer_requested_cancel" if buyer_cancelled else self.status.lower()
        return [self._change(kind, item, quantity, reason) for kind in kinds]

    def _change(self, kind: ChangeKind, item: Payload, quantity: int, reason: str) -> StockChange:
        item_id = _text(item, "OrderItemId")
        return StockChange(
            kind=kind,
            sku=_text(item, "SellerSKU"),
            location=self.channel.location_for(item.get("SupplySourceId")),
            quantity=quantity,
            business_key=f"{self.channel.id}:{_KEY_NAMES[kind]}:{self.id}:{item_id}",
            source=self.channel.id,
            occurred_at=self.occurred_at,
            reference=f"amazon://{self.channel.id}/orders/{self.id}",
            reason="" if kind is ChangeKind.SALE else reason,
        )


def _order_change(channel: ChannelConfig, notification: Payload) -> Translation:
    change = notification["Payload"]["OrderChangeNotification"]
    summary = change["Summary"]
    fulfilment = summary.get("FulfillmentType")
    if fulfilment == "AFN":
        return Translation()  # Amazon's warehouse holds and ships that stock, not us
    if fulfilment != "MFN":
        return Translation.park(f"unknown FulfillmentType {fulfilment!r}: neither MFN nor AFN")
    order = _Order(
        channel=channel,
        id=_text(change, "AmazonOrderId"),
        status=_text(summary, "OrderStatus"),
        occurred_at=_occurred_at(notification, change),
    )
    return Translation(
        changes=tuple(fact for item in summary["OrderItems"] for fact in order.item_changes(item))
    )


_HANDLERS: dict[str, Callable[[ChannelConfig, Payload], Translation]] = {
    ORDER_CHANGE: _order_change,
}


def _facts(status: str, buyer_cancelled: bool) -> tuple[ChangeKind, ...]:
    if status == "Canceled" or (buyer_cancelled and status in _OPEN):
        return _CANCELLED
    if status == "Shipped":
        return _SHIPPED  # a cancellation asked for too late: the goods have left
    return _SOLD if status in _OPEN else ()


def _quantity(item: Payload) -> int:
    value = item["Quantity"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Quantity {value!r} is not a whole number of units")
    return value


def _text(payload: Payload, key: str) -> str:
    value = payload[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} {value!r} is not a non-empty string")
    return value


def _occurred_at(notification: Payload, change: Payload) -> datetime:
    trigger = change.get("OrderChangeTrigger") or {}
    value = trigger.get("TimeOfOrderChange") or notification.get("EventTime")
    if not isinstance(value, str):
        raise ValueError("neither OrderChangeTrigger.TimeOfOrderChange nor EventTime is given")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_object(text: object) -> Payload | None:
    if not isinstance(text, str | bytes):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
