"""Amazon `ORDER_CHANGE` notifications to what they teach about an order, and the SNS
subscription hand-shake.

Only merchant-fulfilled (MFN) orders move our stock: Amazon ships AFN orders from its own
warehouses, whose stock we never held.

Amazon reports an order's status at least once and in any order. Each notification adds to what
is known of the order (see `domain.orders`): its newest status (by `TimeOfOrderChange`), whether it
was ever `Canceled`, and per item its `Quantity`, the most units shipped yet (`QuantityShipped`, all
of them once `Shipped`) and whether the buyer asked to cancel it. From that an item holds:

- shipped units: shipped (`PartiallyShipped` ships some, `Shipped` all);
- the rest committed while the order is open (`Pending`, `Unshipped`, `PartiallyShipped`) and
  neither cancelled nor asked to be by the buyer; released once it is;
- nothing yet for any other status (`Unfulfillable`, `InvoiceUnconfirmed`, `PendingAvailability`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from application.intake import Delivery, Translation
from domain.errors import DomainError
from domain.orders import Facts, LineTarget, Units, stamp
from infrastructure.channels.amazon import sns
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.base import ChannelReads, Lane, order_translation, parsed_object
from infrastructure.channels.config import ChannelConfig

Payload = dict[str, Any]

ORDER_CHANGE = "ORDER_CHANGE"

# Seconds to wait for SNS to confirm a subscription; a failure is retried by the worker.
CONFIRMATION_TIMEOUT = 10.0

_OPEN = frozenset({"Pending", "Unshipped", "PartiallyShipped"})


def translate(channel: ChannelConfig, delivery: Delivery, reads: ChannelReads) -> Translation:
    envelope = parsed_object(delivery.body)
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


def acknowledge(channel: AmazonConfig, delivery: Delivery) -> None:
    """Confirm an SNS subscription by GETting its `SubscribeURL`: SNS delivers nothing before.

    Raises:
        SignatureInvalid: the `SubscribeURL` is at none of the channel's `sns_origins`.
        httpx.HTTPError: SNS could not be reached or did not answer 2xx; the worker retries.
    """
    if delivery.topic != sns.SUBSCRIPTION_CONFIRMATION:
        return
    message = sns.parse_message(delivery.body)
    if message["Type"] != sns.SUBSCRIPTION_CONFIRMATION:
        return  # a notification whose own type happens to share the name
    url = message["SubscribeURL"]
    # Checked again, not only at intake: the channel's SNS origins may have changed since.
    sns.check_subscribe_url(url, channel.sns_origins)
    httpx.get(url, timeout=CONFIRMATION_TIMEOUT).raise_for_status()


def _notification(channel: ChannelConfig, message: object) -> Translation:
    notification = parsed_object(message)
    if notification is None:
        return Translation.park("the SNS Message is not a JSON object")
    notification_type = notification.get("NotificationType")
    handler = _HANDLERS.get(notification_type) if isinstance(notification_type, str) else None
    if handler is None:
        return Translation()  # a notification that moves no stock: nothing to do
    try:
        return handler(channel, notification)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, DomainError) as error:
        return Translation.park(f"cannot read {notification_type} notification: {error!r}")


def _order_change(channel: ChannelConfig, notification: Payload) -> Translation:
    change = notification["Payload"]["OrderChangeNotification"]
    summary = change["Summary"]
    fulfilment = summary.get("FulfillmentType")
    if fulfilment == "AFN":
        return Translation()  # Amazon's warehouse holds and ships that stock, not us
    if fulfilment != "MFN":
        return Translation.park(f"unknown FulfillmentType {fulfilment!r}: neither MFN nor AFN")
    order_id = _text(change, "AmazonOrderId")
    status = _text(summary, "OrderStatus")
    occurred_at = _occurred_at(notification, change)
    seen = stamp(occurred_at)
    facts = Facts(
        latest={"status": (seen, status)},
        flags=frozenset({"cancelled"}) if status == "Canceled" else frozenset(),
    )
    lines = {
        _text(item, "OrderItemId"): _item(channel, item, status, seen)
        for item in summary["OrderItems"]
    }
    return order_translation(
        channel,
        order_id,
        facts=facts,
        lines=lines,
        targets=targets,
        occurred_at=occurred_at,
        reason=status.lower(),
    )


def _item(channel: ChannelConfig, item: Payload, status: str, seen: str) -> Facts:
    quantity = _quantity(item["Quantity"], "Quantity")
    shipped = _quantity(item.get("QuantityShipped") or 0, "QuantityShipped")
    if status == "Shipped":
        shipped = max(shipped, quantity)
    buyer_cancelled = item.get("IsBuyerRequestedCancel") is True and status in _OPEN
    return Facts(
        latest={
            "sku": ("", channel.our_sku(_text(item, "SellerSKU"))),
            "location": (seen, channel.location_for(item.get("SupplySourceId"))),
        },
        peaks={"quantity": quantity, "shipped": min(shipped, quantity)},
        flags=frozenset({"buyer_cancelled"}) if buyer_cancelled else frozenset(),
    )


def targets(order: Facts, lines: Mapping[str, Facts]) -> dict[str, LineTarget]:
    """What each item should hold in the ledger, from all that is known of the order."""
    status = order.value("status")
    released = "cancelled" in order.flags
    found = {}
    for item_id, item in lines.items():
        location = item.value("location")
        shipped = item.peak("shipped")
        open_units = item.peak("quantity") - shipped
        holds = status in _OPEN and not released and "buyer_cancelled" not in item.flags
        units = Units(committed=open_units if holds else 0, shipped=shipped)
        found[item_id] = LineTarget(
            item.value("sku"), {location: units} if units != Units() else {}
        )
    return found


_HANDLERS: dict[str, Callable[[ChannelConfig, Payload], Translation]] = {
    ORDER_CHANGE: _order_change,
}


def _quantity(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} {value!r} is not a whole number of units")
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
