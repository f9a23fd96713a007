"""WooCommerce payloads to what they teach about an order, and WooCommerce's policy for its lines.

WooCommerce reports states, not deltas: it never retries, merges the updates of one order made
within 10 minutes, and builds each payload at delivery time from the order as it is then. Each
payload adds to what is known of the order (see `domain.orders`), newest modification winning: its
status, which lines it has and their SKUs and quantities, when it was completed; and per refund
(read from `GET /orders/<id>/refunds`: the webhook lists refunds without their lines) the units
of each line it refunded, whether they were restocked, and when.

From all that is known a line holds:

- `processing`, `on-hold`: its units committed (sold, not yet shipped), less units refunded and
  units shipped;
- `completed` (now or ever): its units shipped, less units refunded before completion. Shipped
  units never come back from a status alone: a completed order later refunded keeps its
  shipment, because money returned says nothing about goods returned; a refund after completion
  that restocks brings them back, as does a count;
- `pending`, `failed`, `cancelled`, `refunded`, `trash`, `checkout-draft`, or a deleted order:
  nothing committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeGuard

from application.intake import Delivery, Observation, Translation
from domain.errors import DomainError
from domain.orders import Facts, LineTarget, Units, stamp
from infrastructure.channels.base import ChannelReads, Lane, order_translation, translate_json
from infrastructure.channels.config import ChannelConfig

Payload = dict[str, Any]

_COMMITTING = frozenset({"processing", "on-hold"})
_SHIPPED = frozenset({"completed"})
_HOLDING_NOTHING = frozenset(
    {"pending", "failed", "cancelled", "refunded", "trash", "checkout-draft"}
)


def translate(channel: ChannelConfig, delivery: Delivery, reads: ChannelReads) -> Translation:
    return translate_json(
        delivery,
        _HANDLERS,
        lambda handler, p: handler(channel, p, delivery, reads),
        _describe,
    )


def lane(topic: str) -> Lane:
    # Every state of an order, cancellations included, takes one lane.
    return Lane.DECREMENTS if topic.startswith("order.") else Lane.INCREMENTS


# Orders ------------------------------------------------------------------------------------


def _order(
    channel: ChannelConfig, payload: Payload, delivery: Delivery, reads: ChannelReads
) -> Translation:
    order_id = _identifier(payload.get("id"), "the order id")
    status = payload.get("status")
    if status not in _COMMITTING | _SHIPPED | _HOLDING_NOTHING:
        known = ", ".join(sorted(_COMMITTING | _SHIPPED | _HOLDING_NOTHING))
        raise ValueError(f"order {order_id} has status {status!r}; invsync maps only {known}")
    modified = _gmt(_required_text(payload, "date_modified_gmt", order_id))
    seen = stamp(modified)
    items = payload.get("line_items")
    if not isinstance(items, list):
        raise ValueError(f"order {order_id} has no line_items list")
    shipped = status in _SHIPPED
    lines = dict(_line(channel, order_id, item, seen, shipped=shipped) for item in items)
    order = {
        "status": (seen, status),
        "lines": (seen, ",".join(sorted(lines))),
    }
    completed = payload.get("date_completed_gmt")
    if isinstance(completed, str) and completed:
        order["completed_at"] = (seen, stamp(_gmt(completed)))
    flags = frozenset({"completed"}) if status in _SHIPPED else frozenset()
    if payload.get("refunds"):
        for line_id, refund in _refunds(channel, order_id, reads):
            lines[line_id] = lines[line_id].merge(refund) if line_id in lines else refund
    return _update(
        channel,
        order_id,
        facts=Facts(latest=order, flags=flags),
        lines=lines,
        occurred_at=modified,
        status=status,
    )


def _deleted(
    channel: ChannelConfig, payload: Payload, delivery: Delivery, reads: ChannelReads
) -> Translation:
    """`order.deleted` names only the order, trashed or deleted for good: the store says which.
    A trashed order is read as it is now (status `trash`, with the store's own modification
    time, so a later restoration still wins); one deleted for good holds nothing, for ever."""
    if set(payload) != {"id"}:
        # The topic header is not signed: only a body shaped as WooCommerce's deletion (the
        # id alone) may delete, never a replayed order under another topic.
        raise ValueError("an order.deleted body names the order's id and nothing else")
    order_id = _identifier(payload.get("id"), "the order id")
    current = reads.order_document(channel, order_id)
    if current is not None:
        return _order(channel, current, delivery, reads)
    facts = Facts(flags=frozenset({"deleted"}))
    return _update(
        channel, order_id, facts=facts, lines={}, occurred_at=delivery.received_at, status="deleted"
    )


def _line(
    channel: ChannelConfig, order_id: str, item: object, seen: str, *, shipped: bool
) -> tuple[str, Facts]:
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
    # A completed order has shipped its lines' units: a fact that stays, whatever comes next.
    peaks = {"shipped": quantity} if shipped else {}
    facts = {"sku": (seen, channel.our_sku(sku)), "quantity": (seen, quantity)}
    return line_id, Facts(latest=facts, peaks=peaks)


def _refunds(
    channel: ChannelConfig, order_id: str, reads: ChannelReads
) -> Iterator[tuple[str, Facts]]:
    for refund in reads.order_refunds(channel, order_id):
        created = stamp(refund.created_at)
        for line in refund.lines:
            kind = "restocked" if line.restocked else "refunded"
            yield (
                str(line.line_id),
                Facts(latest={f"refund:{refund.id}": (created, f"{kind}:{line.quantity}")}),
            )


def _update(
    channel: ChannelConfig,
    order_id: str,
    *,
    facts: Facts,
    lines: dict[str, Facts],
    occurred_at: datetime,
    status: str,
) -> Translation:
    return order_translation(
        channel,
        order_id,
        facts=facts,
        lines=lines,
        targets=lambda order, known: targets(channel, order, known),
        occurred_at=occurred_at,
        reason=f"order {status}",
    )


def targets(
    channel: ChannelConfig, order: Facts, lines: Mapping[str, Facts]
) -> dict[str, LineTarget]:
    """What each line should hold in the ledger, from all that is known of the order."""
    status = order.value("status")
    present = set((order.value("lines") or "").split(","))
    completed_at = order.value("completed_at")
    completed = "completed" in order.flags
    found = {}
    for line_id, line in lines.items():
        sku = line.value("sku")
        if sku is None:
            continue  # a refund of a line no order payload has shown yet
        quantity = line.value("quantity", 0) if line_id in present else 0
        before, after_restocked = _refunded(line, completed_at)
        shipped = max(0, line.peak("shipped") - before) if completed else 0
        holds = status in _COMMITTING and "deleted" not in order.flags
        committed = max(0, quantity - before - shipped) if holds else 0
        units = Units(committed=committed, shipped=shipped, restocked=after_restocked)
        held = {channel.default_location: units} if units != Units() else {}
        found[line_id] = LineTarget(sku, held)  # WooCommerce has one stock per product
    return found


def _refunded(line: Facts, completed_at: str | None) -> tuple[int, int]:
    """Units refunded before the order was completed (never shipped), and units restocked by
    refunds after it (returned)."""
    before = after_restocked = 0
    for name, (created, value) in line.latest.items():
        if not name.startswith("refund:"):
            continue
        kind, _, units = str(value).partition(":")
        if completed_at is None or created <= completed_at:
            before += int(units)
        elif kind == "restocked":
            after_restocked += int(units)
    return before, after_restocked


def _required_text(payload: Payload, name: str, order_id: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str):
        raise ValueError(f"order {order_id} has no {name}")
    return value


def _identifier(value: object, what: str) -> str:
    if _is_count(value) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    raise ValueError(f"{what} is {value!r}, not a positive whole number")


# Products ----------------------------------------------------------------------------------


def _product(
    channel: ChannelConfig, product: Payload, delivery: Delivery, reads: ChannelReads
) -> Translation:
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
                sku=channel.our_sku(sku),
                location=channel.default_location,
                quantity=quantity,
                observed_at=_gmt(modified_gmt),
                reference=f"woocommerce://{channel.id}/products/{product.get('id')}",
            )
        ]
    )


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_HANDLERS: dict[str, Callable[[ChannelConfig, Payload, Delivery, ChannelReads], Translation]] = {
    "order.created": _order,
    "order.updated": _order,
    "order.restored": _order,
    "order.deleted": _deleted,
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
