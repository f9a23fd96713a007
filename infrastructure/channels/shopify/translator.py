"""Shopify payloads to stock changes.

Business keys name the fact, not the delivery: a sale is `<channel>:sale:<order>:<line>`, so
`orders/create`, `orders/updated` and a later reconciliation poll apply it once. A cancellation
also carries its sale's key, so a cancellation that arrives before its order still converges:
the sale is applied first (or found already applied), then released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from application.intake import Delivery, Observation, OrderMemory, Translation
from domain.stock import ChangeKind, StockChange
from infrastructure.channels.base import Lane, translate_json
from infrastructure.config import ChannelConfig

Payload = dict[str, Any]


def translate(channel: ChannelConfig, delivery: Delivery, memory: OrderMemory) -> Translation:
    return translate_json(delivery, _HANDLERS, lambda handler, p: handler(channel, p, delivery))


def lane(topic: str) -> Lane:
    return Lane.DECREMENTS if topic in ("orders/create", "orders/updated") else Lane.INCREMENTS


def _order(channel: ChannelConfig, order: Payload, delivery: Delivery) -> Translation:
    changes = list(_sales(channel, order))
    if order.get("cancelled_at"):
        changes += _cancellations(channel, order)
    return Translation(changes=changes)


def _cancelled(channel: ChannelConfig, order: Payload, delivery: Delivery) -> Translation:
    return Translation(changes=[*_sales(channel, order), *_cancellations(channel, order)])


def _sales(channel: ChannelConfig, order: Payload) -> Iterator[StockChange]:
    return _per_line(
        channel, order, kind=ChangeKind.SALE, fact="sale", occurred=order.get("created_at")
    )


def _cancellations(channel: ChannelConfig, order: Payload) -> Iterator[StockChange]:
    return _per_line(
        channel,
        order,
        kind=ChangeKind.SALE_CANCELLATION,
        fact="cancel",
        occurred=order.get("cancelled_at"),
        reason=order.get("cancel_reason") or "cancelled",
    )


def _per_line(
    channel: ChannelConfig,
    order: Payload,
    *,
    kind: ChangeKind,
    fact: str,
    occurred: Any,
    reason: str = "",
) -> Iterator[StockChange]:
    """One change per order line, keyed `<channel>:<fact>:<order>:<line>`."""
    for line in _lines(order):
        yield _change(
            channel,
            kind,
            line,
            line["quantity"],
            key=f"{channel.id}:{fact}:{order['id']}:{line['id']}",
            location=order.get("location_id"),
            occurred=occurred,
            reference=f"shopify://{channel.id}/orders/{order['id']}",
            reason=reason,
        )


def _lines(order: Payload) -> Iterator[Payload]:
    # An edit can leave a line at zero; it sells nothing.
    return (line for line in order["line_items"] if int(line["quantity"]) > 0)


def _fulfillment(channel: ChannelConfig, fulfillment: Payload, delivery: Delivery) -> Translation:
    return Translation(
        changes=[
            _change(
                channel,
                ChangeKind.SHIPMENT,
                line,
                line["quantity"],
                key=f"{channel.id}:fulfillment:{fulfillment['id']}:{line['id']}",
                location=fulfillment.get("location_id"),
                occurred=fulfillment.get("created_at"),
                reference=f"shopify://{channel.id}/orders/{fulfillment['order_id']}"
                f"/fulfillments/{fulfillment['id']}",
            )
            for line in fulfillment["line_items"]
        ]
    )


# restock_type → what the refund does to our stock (CHANNELS.md §1.1).
_RESTOCKS = {
    "return": ChangeKind.RETURN,
    "legacy_restock": ChangeKind.RETURN,
    "cancel": ChangeKind.SALE_CANCELLATION,
}


def _refund(channel: ChannelConfig, refund: Payload, delivery: Delivery) -> Translation:
    changes = []
    for item in refund["refund_line_items"]:
        kind = _RESTOCKS.get(item.get("restock_type") or "no_restock")
        if kind is None:
            continue  # money back, goods not: stock unchanged
        changes.append(
            _change(
                channel,
                kind,
                item["line_item"],
                item["quantity"],
                key=f"{channel.id}:refund:{refund['id']}:{item['id']}",
                location=item.get("location_id"),
                occurred=refund.get("created_at"),
                reference=f"shopify://{channel.id}/orders/{refund['order_id']}/refunds/{refund['id']}",
                reason="refund",
            )
        )
    return Translation(changes=changes)


def _level(channel: ChannelConfig, level: Payload, delivery: Delivery) -> Translation:
    # No SKU in this payload: the inventory item's id stands in until the gateway maps it.
    return Translation(
        observations=[
            Observation(
                channel_id=channel.id,
                sku=f"shopify-inventory-item:{level['inventory_item_id']}",
                location=channel.location_for(level.get("location_id")),
                quantity=int(level["available"]),
                observed_at=_time(level.get("updated_at")),
                reference=str(level.get("admin_graphql_api_id", "")),
            )
        ]
    )


_HANDLERS: dict[str, Callable[[ChannelConfig, Payload, Delivery], Translation]] = {
    "orders/create": _order,
    "orders/updated": _order,
    "orders/paid": _order,
    "orders/cancelled": _cancelled,
    "fulfillments/create": _fulfillment,
    "refunds/create": _refund,
    "inventory_levels/update": _level,
}


def _change(
    channel: ChannelConfig,
    kind: ChangeKind,
    line: Payload,
    quantity: Any,
    *,
    key: str,
    location: Any,
    occurred: Any,
    reference: str,
    reason: str = "",
) -> StockChange:
    return StockChange(
        kind=kind,
        sku=str(line.get("sku") or ""),
        location=channel.location_for(location),
        quantity=int(quantity),
        business_key=key,
        source=channel.id,
        occurred_at=_time(occurred),
        reference=reference,
        reason=reason,
    )


def _time(value: Any) -> datetime:
    if not value:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
