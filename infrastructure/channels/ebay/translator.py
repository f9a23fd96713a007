"""What eBay deliveries teach the ledger.

Notification API topics carry no stock: `MARKETPLACE_ACCOUNT_DELETION` (which eBay requires
every application to accept) is stored like any delivery and logged with the eBay user it names,
so it can be found and acted on; invsync keeps no eBay buyer data to delete.

Orders come by polling the Fulfillment API (`order_listing.py`), as topic `order` with the
order's JSON: each line holds its quantity committed until it ships (`lineItemFulfillmentStatus`
FULFILLED, for good), nothing once the order is cancelled (`cancelStatus.cancelState`
CANCELED) or fully refunded before shipping (the seller will not ship it); the newest state by
`lastModifiedDate` decides, so the same order listed twice, or its states in any order, move the
ledger once. Lines without a SKU are not ours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from application.intake import Delivery, Translation
from domain.orders import Facts, LineTarget, Units, stamp
from infrastructure.channels.base import ChannelReads, Lane, order_translation, translate_json
from infrastructure.channels.ebay.config import EbayConfig

log = logging.getLogger(__name__)

ACCOUNT_DELETION = "MARKETPLACE_ACCOUNT_DELETION"
ORDER = "order"  # a Fulfillment API order, as `list_orders` found it
CANCELLED, REFUNDED, FULFILLED = "CANCELED", "FULLY_REFUNDED", "FULFILLED"

Payload = dict[str, Any]


def lane(topic: str) -> Lane:
    return Lane.DECREMENTS if topic == ORDER else Lane.INCREMENTS


def translate(channel: EbayConfig, delivery: Delivery, reads: ChannelReads) -> Translation:
    def apply(handler: Any, payload: Payload) -> Translation:
        return handler(channel, delivery, payload)  # type: ignore[no-any-return]

    return translate_json(delivery, _HANDLERS, apply)


def _account_deleted(channel: EbayConfig, delivery: Delivery, payload: Payload) -> Translation:
    data = payload["notification"]["data"]
    log.warning(
        "eBay channel %s: marketplace account deletion of user %s (%s), delivery %s: "
        "invsync keeps no eBay user data; delete it from any system fed from this one",
        channel.id,
        data.get("userId"),
        data.get("username"),
        delivery.delivery_key,
    )
    return Translation()


def _order(channel: EbayConfig, delivery: Delivery, payload: Payload) -> Translation:
    order_id = _text(payload, "orderId")
    modified = ebay_moment(_text(payload, "lastModifiedDate"))
    seen = stamp(modified)
    cancel_state = payload.get("cancelStatus", {}).get("cancelState", "NONE_REQUESTED")
    lines = dict(_line(channel, item, seen) for item in payload["lineItems"] if item.get("sku"))
    flags = {CANCELLED} if cancel_state == CANCELLED else set()
    if payload.get("orderPaymentStatus") == REFUNDED:
        flags.add(REFUNDED)
    facts = Facts(latest={"lines": (seen, ",".join(sorted(lines)))}, flags=frozenset(flags))
    return order_translation(
        channel,
        order_id,
        facts=facts,
        lines=lines,
        targets=lambda order, known: targets(channel, order, known),
        occurred_at=modified,
        reason=f"order {_state(flags, lines)}",
    )


def _line(channel: EbayConfig, item: Payload, seen: str) -> tuple[str, Facts]:
    line_id, quantity = _text(item, "lineItemId"), item["quantity"]
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise ValueError(f"line {line_id} has quantity {quantity!r}")
    latest = {"sku": (seen, channel.our_sku(_text(item, "sku"))), "quantity": (seen, quantity)}
    shipped = item.get("lineItemFulfillmentStatus") == FULFILLED
    return line_id, Facts(latest=latest, peaks={"shipped": quantity} if shipped else {})


def targets(channel: EbayConfig, order: Facts, lines: Mapping[str, Facts]) -> dict[str, LineTarget]:
    """What each line should hold: shipped units for good; the rest committed unless the order
    was cancelled or refunded."""
    present = set((order.value("lines") or "").split(","))
    holds = not order.flags & {CANCELLED, REFUNDED}
    found = {}
    for line_id, line in lines.items():
        quantity = line.value("quantity", 0) if line_id in present else 0
        shipped = min(line.peak("shipped"), quantity) if line_id in present else 0
        units = Units(committed=max(0, quantity - shipped) if holds else 0, shipped=shipped)
        held = {channel.default_location: units} if units != Units() else {}
        found[line_id] = LineTarget(line.value("sku"), held)
    return found


def ebay_moment(text: str) -> datetime:
    """An eBay timestamp (`2026-12-02T08:26:12.738Z`) as a UTC moment."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} names no time zone")
    return moment.astimezone(UTC)


def _text(payload: Payload, name: str) -> str:
    value = payload[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is {value!r}, not text")
    return value


_HANDLERS = {ACCOUNT_DELETION: _account_deleted, ORDER: _order}


def _state(flags: set[str], lines: Mapping[str, Facts]) -> str:
    if CANCELLED in flags:
        return "cancelled"
    if REFUNDED in flags:
        return "refunded"
    return "shipped" if any(line.peak("shipped") for line in lines.values()) else "placed"
