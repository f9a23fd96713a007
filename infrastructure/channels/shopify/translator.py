"""Shopify payloads to what they teach about an order, and Shopify's policy for order lines.

Every order topic (`orders/*`, `fulfillments/create`, `refunds/create`) becomes an `OrderUpdate`:
the facts it shows, named so that overlapping deliveries converge (see `domain.orders`):

- an order payload shows each line's SKU and `quantity`, its removals (`quantity` less
  `current_quantity` less what its own `refunds` list took back), its fulfilments and refunds,
  and whether the order is cancelled;
- `orders/edited` shows removals per edit; `fulfillments/create` units shipped per fulfilment;
  `refunds/create` units per refund and restock type (CHANNELS.md §1.1).

From all that is known a line should hold, at the order's location, `quantity` less removals, less
refunds that cancel, less units shipped, committed (nothing once the order is cancelled); the
shipped units at each fulfilment's location; the units returned (`return`, `legacy_restock`) at
each refund's location. A refund without restock gives money back, not goods: it moves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from application.intake import Delivery, Observation, Translation
from domain.orders import Facts, LineTarget, Units, stamp
from infrastructure.channels.base import ChannelReads, Lane, order_translation, translate_json
from infrastructure.channels.config import ChannelConfig

Payload = dict[str, Any]

_RETURNS = frozenset({"return", "legacy_restock"})
_NOTHING = Facts()


def translate(channel: ChannelConfig, delivery: Delivery, reads: ChannelReads) -> Translation:
    return translate_json(delivery, _HANDLERS, lambda handler, p: handler(channel, p, delivery))


def lane(topic: str) -> Lane:
    # Everything about an order can sell (a fulfilment before its order sells, then ships).
    order_topics = topic.startswith("orders/") or topic in ("fulfillments/create", "refunds/create")
    return Lane.DECREMENTS if order_topics else Lane.INCREMENTS


# Order payloads ----------------------------------------------------------------------------


def _order(channel: ChannelConfig, order: Payload, delivery: Delivery) -> Translation:
    order_id = _id(order["id"])
    seen = stamp(_time(order.get("updated_at") or order.get("created_at"), delivery))
    refunded = _refunded_per_line(order.get("refunds"))
    facts = Facts(
        latest={"location": (seen, channel.location_for(order.get("location_id")))},
        flags=frozenset({"cancelled"}) if order.get("cancelled_at") else frozenset(),
    )
    lines: dict[str, Facts] = {}
    for line in order["line_items"]:
        lines[_id(line["id"])] = _ordered_line(channel, line, refunded, seen)
    for fulfillment in order.get("fulfillments") or ():
        _add(lines, _fulfilled(channel, fulfillment))
    for refund in order.get("refunds") or ():
        _add(lines, _refund_lines(channel, refund))
    reason = "order"
    if order.get("cancelled_at"):
        reason = f"order cancelled: {order.get('cancel_reason') or 'no reason given'}"
    return _update(
        channel, order_id, delivery, facts=facts, lines=lines, document=order, reason=reason
    )


def _ordered_line(
    channel: ChannelConfig, line: Payload, refunded: Mapping[str, int], seen: str
) -> Facts:
    quantity = _count(line["quantity"], "quantity")
    peaks = {"quantity": quantity}
    current = line.get("current_quantity")
    if current is not None and refunded is not _NO_REFUNDS:
        # `current_quantity` excludes refunded and removed units; the refunds are counted
        # from their own documents, so only the removals are taken from here.
        removed = quantity - _count(current, "current_quantity") - refunded.get(_id(line["id"]), 0)
        peaks["removed"] = max(0, removed)
    return Facts(latest=_sku(channel, line), peaks=peaks)


_NO_REFUNDS: Mapping[str, int] = {}


def _refunded_per_line(refunds: object) -> Mapping[str, int]:
    if not isinstance(refunds, list):
        return _NO_REFUNDS  # the payload does not say: do not read removals from it
    totals: dict[str, int] = {}
    for refund in refunds:
        for item in refund.get("refund_line_items") or ():
            line_id = _id(item.get("line_item_id") or item["line_item"]["id"])
            totals[line_id] = totals.get(line_id, 0) + _count(item["quantity"], "quantity")
    return totals


def _edited(channel: ChannelConfig, payload: Payload, delivery: Delivery) -> Translation:
    edit = payload["order_edit"]
    edit_id = _id(edit["id"])
    lines = {
        _id(removal["id"]): Facts(tallies={"edit_removed": {edit_id: _count(removal["delta"])}})
        for removal in (edit.get("line_items") or {}).get("removals") or ()
    }
    order = {
        "id": edit["order_id"],
        "updated_at": edit.get("committed_at") or edit.get("created_at"),
    }
    return _update(
        channel, _id(edit["order_id"]), delivery, lines=lines, document=order, reason="edited"
    )


def _fulfillment(channel: ChannelConfig, fulfillment: Payload, delivery: Delivery) -> Translation:
    lines: dict[str, Facts] = {}
    _add(lines, _fulfilled(channel, fulfillment))
    fulfillment_id = _id(fulfillment["id"])
    return _update(
        channel,
        _id(fulfillment["order_id"]),
        delivery,
        lines=lines,
        document=fulfillment,
        reason="fulfilled",
        suffix=f"/fulfillments/{fulfillment_id}",
    )


def _refund(channel: ChannelConfig, refund: Payload, delivery: Delivery) -> Translation:
    lines: dict[str, Facts] = {}
    _add(lines, _refund_lines(channel, refund))
    return _update(
        channel,
        _id(refund["order_id"]),
        delivery,
        lines=lines,
        document=refund,
        reason="refund",
        suffix=f"/refunds/{_id(refund['id'])}",
    )


def _fulfilled(channel: ChannelConfig, fulfillment: Payload) -> Iterable[tuple[str, Facts]]:
    if fulfillment.get("status") in ("cancelled", "error", "failure"):
        return  # nothing left the building
    fulfillment_id = _id(fulfillment["id"])
    location = channel.location_for(fulfillment.get("location_id"))
    for line in fulfillment["line_items"]:
        units = _count(line["quantity"])
        yield (
            _id(line["id"]),
            Facts(
                latest=_sku(channel, line), tallies={f"shipped@{location}": {fulfillment_id: units}}
            ),
        )


def _refund_lines(channel: ChannelConfig, refund: Payload) -> Iterable[tuple[str, Facts]]:
    refund_id = _id(refund["id"])
    for item in refund["refund_line_items"]:
        line = item.get("line_item") or {}
        line_id = _id(item.get("line_item_id") or line["id"])
        units = _count(item["quantity"])
        restock = item.get("restock_type") or "no_restock"
        key = f"{refund_id}:{_id(item['id'])}"
        if restock == "cancel":
            name = "cancelled"
        elif restock in _RETURNS:
            name = f"returned@{channel.location_for(item.get('location_id'))}"
        else:
            name = "refunded_only"  # money back, goods not: stock unchanged
        facts = Facts(tallies={name: {key: units}})
        if "quantity" in line:  # the line's own quantity, as ordered
            facts = facts.merge(
                Facts(latest=_sku(channel, line), peaks={"quantity": _count(line["quantity"])})
            )
        yield line_id, facts


def _add(lines: dict[str, Facts], more: Iterable[tuple[str, Facts]]) -> None:
    for line_id, facts in more:
        lines[line_id] = lines[line_id].merge(facts) if line_id in lines else facts


def _update(
    channel: ChannelConfig,
    order_id: str,
    delivery: Delivery,
    *,
    lines: dict[str, Facts],
    document: Payload,
    reason: str,
    facts: Facts = _NOTHING,
    suffix: str = "",
) -> Translation:
    return order_translation(
        channel,
        order_id,
        facts=facts,
        lines=lines,
        targets=lambda order, known: targets(channel, order, known),
        occurred_at=_time(document.get("updated_at") or document.get("created_at"), delivery),
        reason=reason,
        document=suffix,
    )


# The policy --------------------------------------------------------------------------------


def targets(
    channel: ChannelConfig, order: Facts, lines: Mapping[str, Facts]
) -> dict[str, LineTarget]:
    """What each line whose SKU is known should hold in the ledger, from all that is known."""
    sale_location = order.value("location", channel.default_location)
    found = {}
    for line_id, line in lines.items():
        sku = line.value("sku")
        if not sku:
            continue  # an edit's removal of a line no order payload has shown yet
        locations: dict[str, dict[str, int]] = {}
        for name, entries in line.tallies.items():
            kind, _, location = name.partition("@")
            if kind in ("shipped", "returned"):
                units = sum(entries.values())
                locations.setdefault(location, {})[
                    "shipped" if kind == "shipped" else "restocked"
                ] = units
        shipped = sum(u.get("shipped", 0) for u in locations.values())
        owed = (
            line.peak("quantity")
            - max(line.peak("removed"), line.total("edit_removed"))
            - line.total("cancelled")
        )
        committed = 0 if "cancelled" in order.flags else max(0, owed - shipped)
        if committed:
            locations.setdefault(sale_location, {})["committed"] = committed
        found[line_id] = LineTarget(
            sku, {location: Units(**units) for location, units in locations.items()}
        )
    return found


# Inventory levels --------------------------------------------------------------------------


def _level(channel: ChannelConfig, level: Payload, delivery: Delivery) -> Translation:
    # No SKU in this payload: the inventory item's id stands in until the gateway maps it.
    return Translation(
        observations=[
            Observation(
                channel_id=channel.id,
                sku=f"shopify-inventory-item:{level['inventory_item_id']}",
                location=channel.location_for(level.get("location_id")),
                quantity=int(level["available"]),
                observed_at=_time(level.get("updated_at"), delivery),
                reference=str(level.get("admin_graphql_api_id", "")),
            )
        ]
    )


_HANDLERS: dict[str, Callable[[ChannelConfig, Payload, Delivery], Translation]] = {
    "orders/create": _order,
    "orders/updated": _order,
    "orders/paid": _order,
    "orders/cancelled": _order,
    "orders/fulfilled": _order,
    "orders/partially_fulfilled": _order,
    "orders/edited": _edited,
    "fulfillments/create": _fulfillment,
    "refunds/create": _refund,
    "inventory_levels/update": _level,
}


# Reading fields ----------------------------------------------------------------------------


def _id(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    raise ValueError(f"{value!r} is not a Shopify id")


def _count(value: object, what: str = "quantity") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} {value!r} is not a whole number of units")
    return value


def _sku(channel: ChannelConfig, line: Payload) -> dict[str, tuple[str, Any]]:
    """The line's SKU as a fact. A line without one (a custom item, a tip) is no stock of ours:
    it is known, and holds nothing."""
    sku = line.get("sku")
    if sku is None or sku == "":
        return {}
    if not isinstance(sku, str) or not sku.strip():
        raise ValueError(f"line {line.get('id')!r} has SKU {sku!r}")
    return {"sku": ("", channel.our_sku(sku))}


def _time(value: Any, delivery: Delivery) -> datetime:
    if not value:
        return delivery.received_at
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
