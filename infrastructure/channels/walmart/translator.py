"""Walmart order events and listed orders to what they teach about an order, and Walmart's policy
for its lines.

Walmart orders have no status of their own; their lines do (`Created`, `Acknowledged`,
`Shipped`, `Cancelled`), each with the units in it. What arrives, at least once and in any
order:

- `PO_CREATED` (alone, or as an `ORDER_UPDATES` sub-event): the new order's lines and units;
- `PO_LINE_AUTOCANCELLED`, `FRAUD_CANCEL`: the lines named are cancelled, all their units;
- `INTENT_TO_CANCEL`: the customer asked to cancel the lines named. It is a request, not a
  cancellation: the seller may still ship, or cancel the line through Walmart, which the orders
  poll then shows as `Cancelled`. So it moves no stock; it is kept (a flag on the line) and
  its units stay committed until Walmart cancels them;
- a listed order (`GET /v3/orders`, under our own topic `LISTED_ORDER`): each line's units per
  status, so partial shipments and cancellations converge however the events went.

Each adds to what is known of the order (see `domain.orders`): per line its SKU, its units, the
most of them seen shipped and the most seen cancelled (units only ever move on from
`Created`/`Acknowledged`, so the largest counts seen are the truest). A line then holds its
shipped units shipped, and the rest less the cancelled ones committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from application.intake import Delivery, Translation
from domain.orders import Facts, LineTarget, Units
from infrastructure.channels.base import ChannelReads, Lane, order_translation, translate_json
from infrastructure.channels.walmart.config import WalmartConfig

Payload = dict[str, Any]

PO_CREATED = "PO_CREATED"
PO_LINE_AUTOCANCELLED = "PO_LINE_AUTOCANCELLED"
INTENT_TO_CANCEL = "INTENT_TO_CANCEL"
FRAUD_CANCEL = "FRAUD_CANCEL"
# An order as `GET /v3/orders` lists it: our topic for what reconciliation's poll stores.
LISTED_ORDER = "LISTED_ORDER"
ORDER_TOPICS = frozenset({PO_CREATED, PO_LINE_AUTOCANCELLED, INTENT_TO_CANCEL, FRAUD_CANCEL})

_SHIPPED = "shipped"
_CANCELLED = frozenset({"cancelled", "canceled"})


def translate(channel: WalmartConfig, delivery: Delivery, reads: ChannelReads) -> Translation:
    return translate_json(delivery, _HANDLERS, lambda handler, p: handler(channel, p))


def lane(topic: str) -> Lane:
    return Lane.DECREMENTS if topic in ORDER_TOPICS | {LISTED_ORDER} else Lane.INCREMENTS


def targets(order: Facts, lines: Mapping[str, Facts]) -> dict[str, LineTarget]:
    """What each line should hold in the ledger, from all that is known of the order."""
    found = {}
    for line_id, line in lines.items():
        quantity = line.peak("quantity")
        shipped = min(line.peak("shipped"), quantity)
        cancelled = min(line.peak("cancelled"), quantity - shipped)
        units = Units(committed=quantity - shipped - cancelled, shipped=shipped)
        location = line.value("location")
        found[line_id] = LineTarget(
            line.value("sku"), {location: units} if units != Units() else {}
        )
    return found


# Events -------------------------------------------------------------------------------------


def _event(sub_event: str) -> Callable[[WalmartConfig, Payload], Translation]:
    def handle(channel: WalmartConfig, body: Payload) -> Translation:
        payload = body["payload"]
        order = payload.get("order") if isinstance(payload.get("order"), dict) else payload
        occurred_at = _iso(body["source"]["eventTime"])
        lines = {
            _text(line, "lineNumber"): _event_line(channel, line, sub_event)
            for line in _list(order["orderLines"], "orderLines")
        }
        return _translation(channel, order, lines, occurred_at, sub_event.lower())

    return handle


def _event_line(channel: WalmartConfig, line: Payload, sub_event: str) -> Facts:
    quantity = _units(_quantity_of(line["quantity"]), "quantity")
    status = str(line.get("status") or "").lower()
    cancelled = quantity if sub_event in (PO_LINE_AUTOCANCELLED, FRAUD_CANCEL) else 0
    if status in _CANCELLED:
        cancelled = quantity
    return _line_facts(
        channel,
        _text(line, "sku"),
        peaks={
            "quantity": quantity,
            "shipped": quantity if status == _SHIPPED else 0,
            "cancelled": cancelled,
        },
        flags={"cancel_requested"} if sub_event == INTENT_TO_CANCEL else set(),
    )


# Listed orders -------------------------------------------------------------------------------


def _listed(channel: WalmartConfig, order: Payload) -> Translation:
    lines = {
        _text(line, "lineNumber"): _listed_line(channel, line)
        for line in _list(order["orderLines"]["orderLine"], "orderLine")
    }
    dates = [_millis(line["statusDate"]) for line in order["orderLines"]["orderLine"]]
    occurred_at = max(dates) if dates else _millis(order["orderDate"])
    return _translation(channel, order, lines, occurred_at, "listed")


def _listed_line(channel: WalmartConfig, line: Payload) -> Facts:
    quantity = _units(_quantity_of(line["orderLineQuantity"]), "orderLineQuantity")
    units = dict(_status_units(line["orderLineStatuses"]["orderLineStatus"]))
    return _line_facts(
        channel,
        _text(line["item"], "sku"),
        peaks={
            "quantity": quantity,
            "shipped": units.get(_SHIPPED, 0),
            "cancelled": sum(units.get(name, 0) for name in _CANCELLED),
        },
    )


def _status_units(statuses: object) -> Iterator[tuple[str, int]]:
    totals: dict[str, int] = {}
    for status in _list(statuses, "orderLineStatus"):
        name = _text(status, "status").lower()
        totals[name] = totals.get(name, 0) + _units(
            _quantity_of(status["statusQuantity"]), "statusQuantity"
        )
    yield from totals.items()


# Shared -------------------------------------------------------------------------------------


def _translation(
    channel: WalmartConfig,
    order: Payload,
    lines: Mapping[str, Facts],
    occurred_at: datetime,
    reason: str,
) -> Translation:
    return order_translation(
        channel,
        _text(order, "purchaseOrderId"),
        facts=Facts(),
        lines=lines,
        targets=targets,
        occurred_at=occurred_at,
        reason=reason,
    )


def _line_facts(
    channel: WalmartConfig, sku: str, peaks: dict[str, int], flags: set[str] | None = None
) -> Facts:
    location = channel.location_for(channel.ship_node or None)
    return Facts(
        latest={"sku": ("", channel.our_sku(sku)), "location": ("", location)},
        peaks=peaks,
        flags=frozenset(flags or ()),
    )


def _quantity_of(quantity: Payload) -> object:
    """The units of a Walmart quantity object, whichever of its documented names holds them."""
    for name in ("amount", "measurementValue", "measurement"):
        if name in quantity:
            return quantity[name]
    raise KeyError("amount")


def _units(value: object, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} {value!r} is not a whole number of units")
    return value


def _text(payload: Payload, key: str) -> str:
    value = payload[key]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} {value!r} is not a non-empty string")
    return value


def _list(value: object, what: str) -> list[Payload]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return value


def _iso(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"eventTime {value!r} is not an ISO 8601 time")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _millis(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a time in epoch milliseconds")
    return datetime.fromtimestamp(value / 1000, UTC)


_HANDLERS: dict[str, Callable[[WalmartConfig, Payload], Translation]] = {
    **{topic: _event(topic) for topic in ORDER_TOPICS},
    LISTED_ORDER: _listed,
}
