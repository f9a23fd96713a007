"""WooCommerce payloads to stock changes.

WooCommerce reports states, not deltas: it never retries, merges the updates of one order made
within 10 minutes, and builds each payload at delivery time from the order as it is then. So we
remember, per order line, what the last state we applied holds in our ledger (units committed,
units shipped) and emit only the difference to what the current status holds:

- `processing`, `on-hold`: the line's units are committed (sold, not yet shipped);
- `completed`: the line's units are shipped;
- `pending`, `failed`, `cancelled`, `refunded`, `trash`, `checkout-draft`: nothing is committed.

Shipped units never come back from a status alone: a completed order later refunded keeps its
shipment, because money returned says nothing about goods returned; a return or a count brings
the units back. Refunds without a status change (partial refunds) leave the lines' quantities as
they are in the payload, so they move nothing here either.

Business keys name a transition, `<channel>:order:<id>:line:<line>:<kind>:<date_modified_gmt>`:
a delivery processed twice from the same remembered state yields the same keys and counts once,
and a payload no newer than the remembered one is stale and changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

from application.intake import Delivery, Observation, OrderMemory, Translation
from domain.errors import DomainError
from domain.stock import ChangeKind, StockChange
from infrastructure.channels.base import Lane, translate_json
from infrastructure.config import ChannelConfig

Payload = dict[str, Any]

_COMMITTING = frozenset({"processing", "on-hold"})
_SHIPPED = frozenset({"completed"})
_HOLDING_NOTHING = frozenset(
    {"pending", "failed", "cancelled", "refunded", "trash", "checkout-draft"}
)


@dataclass(frozen=True)
class _Line:
    id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class _Order:
    id: str
    status: str
    modified_gmt: str  # as sent: it is part of the business keys
    modified: datetime
    lines: tuple[_Line, ...]


@dataclass(frozen=True)
class _Held:
    """What one order line holds in our ledger."""

    sku: str
    committed: int = 0
    shipped: int = 0


def translate(channel: ChannelConfig, delivery: Delivery, memory: OrderMemory) -> Translation:
    return translate_json(
        delivery, _HANDLERS, lambda handler, p: handler(channel, p, memory), _describe
    )


def lane(topic: str) -> Lane:
    # Every state of an order, cancellations included, takes one lane: they apply in sequence.
    return Lane.DECREMENTS if topic.startswith("order.") else Lane.INCREMENTS


# Orders ------------------------------------------------------------------------------------


def _order(channel: ChannelConfig, payload: Payload, memory: OrderMemory) -> Translation:
    order = _read_order(payload)
    remembered = memory.recall(channel.id, order.id)
    if remembered is not None and order.modified <= _gmt(remembered["date_modified_gmt"]):
        return Translation()  # stale or already applied: the remembered state is as new
    before = _read_held(remembered)
    after = _now_held(order, before)
    changes = [
        change
        for line_id, held in after.items()
        for change in _moves(channel, order, line_id, before.get(line_id, _Held(held.sku)), held)
    ]
    return Translation(changes=changes, remember={order.id: _state(order, after)})


def _now_held(order: _Order, before: Mapping[str, _Held]) -> dict[str, _Held]:
    """What each line holds once this order state is applied, lines removed since included."""
    after = {}
    for line in order.lines:
        previous = before.get(line.id, _Held(line.sku))
        if previous.sku != line.sku and (previous.committed or previous.shipped):
            raise ValueError(
                f"line {line.id} of order {order.id} changed SKU from {previous.sku!r} to "
                f"{line.sku!r} while holding stock: move the stock by hand, then retry"
            )
        after[line.id] = _holding(order.status, line.quantity, previous.shipped, line.sku)
    for line_id, previous in before.items():
        if line_id not in after:  # an edit removed the line: it commits nothing any more
            after[line_id] = _Held(previous.sku, committed=0, shipped=previous.shipped)
    return after


def _holding(status: str, quantity: int, shipped: int, sku: str) -> _Held:
    if status in _SHIPPED:
        return _Held(sku, committed=0, shipped=max(shipped, quantity))
    if status in _COMMITTING:
        # Reopened after shipping: only the units not yet shipped are still owed.
        return _Held(sku, committed=max(quantity - shipped, 0), shipped=shipped)
    return _Held(sku, committed=0, shipped=shipped)


def _moves(
    channel: ChannelConfig, order: _Order, line_id: str, before: _Held, after: _Held
) -> Iterator[StockChange]:
    """The changes that take the ledger from `before` to `after` for one line.

    A shipment releases committed units, so the sale it ships must be committed first: an order
    going from pending straight to completed is sold, then shipped. Any committed units neither
    still owed nor shipped are released last.
    """
    shipping = after.shipped - before.shipped
    needed = after.committed + shipping  # committed units the shipment will release
    change = functools.partial(_change, channel, order, line_id, after.sku)
    if needed > before.committed:
        yield change(kind=ChangeKind.SALE, units=needed - before.committed)
    if shipping:
        yield change(kind=ChangeKind.SHIPMENT, units=shipping)
    if before.committed > needed:
        yield change(kind=ChangeKind.SALE_CANCELLATION, units=before.committed - needed)


def _change(
    channel: ChannelConfig, order: _Order, line_id: str, sku: str, *, kind: ChangeKind, units: int
) -> StockChange:
    return StockChange(
        kind=kind,
        sku=sku,
        location=channel.default_location,  # WooCommerce has one stock per product
        quantity=units,
        business_key=(
            f"{channel.id}:order:{order.id}:line:{line_id}:{kind.value}:{order.modified_gmt}"
        ),
        source=channel.id,
        occurred_at=order.modified,
        reference=f"woocommerce://{channel.id}/orders/{order.id}",
        reason=f"order {order.status}",
    )


def _state(order: _Order, held: Mapping[str, _Held]) -> dict[str, Any]:
    return {
        "date_modified_gmt": order.modified_gmt,
        "status": order.status,
        "lines": {
            line_id: {"sku": h.sku, "committed": h.committed, "shipped": h.shipped}
            for line_id, h in held.items()
        },
    }


def _read_held(remembered: Mapping[str, Any] | None) -> dict[str, _Held]:
    if remembered is None:
        return {}
    return {
        str(line_id): _Held(str(line["sku"]), int(line["committed"]), int(line["shipped"]))
        for line_id, line in remembered["lines"].items()
    }


def _read_order(payload: Payload) -> _Order:
    order_id = _identifier(payload.get("id"), "the order id")
    status = payload.get("status")
    if status not in _COMMITTING | _SHIPPED | _HOLDING_NOTHING:
        known = ", ".join(sorted(_COMMITTING | _SHIPPED | _HOLDING_NOTHING))
        raise ValueError(f"order {order_id} has status {status!r}; invsync maps only {known}")
    modified_gmt = payload.get("date_modified_gmt")
    if not isinstance(modified_gmt, str):
        raise ValueError(f"order {order_id} has no date_modified_gmt")
    items = payload.get("line_items")
    if not isinstance(items, list):
        raise ValueError(f"order {order_id} has no line_items list")
    return _Order(
        order_id,
        status,
        modified_gmt,
        _gmt(modified_gmt),
        tuple(_read_line(order_id, i) for i in items),
    )


def _read_line(order_id: str, item: object) -> _Line:
    if not isinstance(item, dict):
        raise ValueError(f"a line of order {order_id} is not an object")
    line_id = _identifier(item.get("id"), f"the id of a line of order {order_id}")
    sku = item.get("sku")
    if not isinstance(sku, str) or not sku.strip():
        raise ValueError(
            f"line {line_id} of order {order_id} has no SKU: give its product a SKU in "
            "WooCommerce, then retry the delivery"
        )
    quantity = item.get("quantity")
    if not _is_count(quantity) or quantity < 0:
        raise ValueError(f"line {line_id} of order {order_id} has quantity {quantity!r}")
    return _Line(line_id, sku, quantity)


def _identifier(value: object, what: str) -> str:
    if _is_count(value) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    raise ValueError(f"{what} is {value!r}, not a positive whole number")


# Products ----------------------------------------------------------------------------------


def _product(channel: ChannelConfig, product: Payload, memory: OrderMemory) -> Translation:
    sku = product.get("sku")
    quantity = product.get("stock_quantity")
    managed = product.get("manage_stock") is True  # a variation may say "parent"
    if not isinstance(sku, str) or not sku or not managed or not _is_count(quantity):
        return Translation()  # WooCommerce counts no stock of this SKU to compare with ours
    modified_gmt = product.get("date_modified_gmt")
    if not isinstance(modified_gmt, str):
        raise ValueError(f"product {product.get('id')!r} has no date_modified_gmt")
    return Translation(
        observations=[
            Observation(
                channel_id=channel.id,
                sku=sku,
                location=channel.default_location,
                quantity=quantity,
                observed_at=_gmt(modified_gmt),
                reference=f"woocommerce://{channel.id}/products/{product.get('id')}",
            )
        ]
    )


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_HANDLERS: dict[str, Callable[[ChannelConfig, Payload, OrderMemory], Translation]] = {
    "order.created": _order,
    "order.updated": _order,
    "product.updated": _product,
}


def _gmt(value: str) -> datetime:
    """WooCommerce's `*_gmt` times are naive ISO strings in UTC; say so."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not an ISO 8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error}"
    return str(error) if isinstance(error, ValueError | DomainError) else repr(error)
