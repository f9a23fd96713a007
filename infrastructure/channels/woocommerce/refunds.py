"""A WooCommerce order's refunds with their lines, read from `GET /orders/<id>/refunds` (the
`order.updated` webhook lists only `{"id", "reason", "total"}` per refund).

Each refund line names the order line it refunds (meta `_refunded_item_id`) and a NEGATIVE
`quantity`. Whether its units went back to stock is not on the refund (`api_restock` is
write-only): WooCommerce keeps the running total of restocked units on the order's line, meta
`_restock_refunded_items`. So a line's refunds were all restocked when that total is the units
they refunded, none when it is 0, and which of them were is unknowable in between.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class WooRefundLine:
    line_id: int  # the order's line item id (the refund line's `_refunded_item_id`)
    sku: str
    quantity: int  # units refunded, a positive count
    restocked: bool | None  # None: WooCommerce's records do not tell


@dataclass(frozen=True)
class WooRefund:
    id: int
    created_at: datetime  # `date_created_gmt`, in UTC
    lines: tuple[WooRefundLine, ...]


class RefundUnreadable(ValueError):
    """Raised when WooCommerce's refunds answer lacks what a refund must have."""


def parse_refunds(refunds: object, order: Mapping[str, Any] | None) -> list[WooRefund]:
    """The refunds as WooCommerce answered them, oldest first; `order` (None: not read) tells
    which lines were restocked."""
    if not isinstance(refunds, list):
        raise RefundUnreadable("WooCommerce answered an order's refunds with no list")
    drafts = [_refund(item) for item in refunds]
    refunded: dict[int, int] = defaultdict(int)
    for _, _, lines in drafts:
        for line_id, _, quantity in lines:
            refunded[line_id] += quantity
    restocked = _restocked(order)
    parsed = [
        WooRefund(
            refund_id,
            created,
            tuple(
                WooRefundLine(line_id, sku, quantity, _whether(restocked, refunded, line_id))
                for line_id, sku, quantity in lines
            ),
        )
        for refund_id, created, lines in drafts
    ]
    return sorted(parsed, key=lambda refund: (refund.created_at, refund.id))


Draft = tuple[int, datetime, list[tuple[int, str, int]]]


def _refund(item: object) -> Draft:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        raise RefundUnreadable(f"a WooCommerce refund without an id: {item!r}")
    created = item.get("date_created_gmt")
    try:
        when = datetime.fromisoformat(str(created)).replace(tzinfo=UTC)
    except ValueError as error:
        raise RefundUnreadable(f"refund {item['id']} has date_created_gmt {created!r}") from error
    lines = [_line(item["id"], line) for line in item.get("line_items") or []]
    return item["id"], when, [line for line in lines if line is not None]


def _line(refund_id: int, line: object) -> tuple[int, str, int] | None:
    if not isinstance(line, dict):
        raise RefundUnreadable(f"refund {refund_id} has a line that is not an object")
    meta = _meta(line.get("meta_data"))
    target, quantity = meta.get("_refunded_item_id"), line.get("quantity")
    if not isinstance(quantity, int) or quantity == 0:
        return None  # an amount refunded on a line, no units
    if not str(target or "").isdigit():
        raise RefundUnreadable(f"refund {refund_id} has a line without _refunded_item_id")
    return int(str(target)), str(line.get("sku") or ""), abs(quantity)


def _restocked(order: Mapping[str, Any] | None) -> dict[int, int] | None:
    """Units restocked so far per order line, from `_restock_refunded_items`."""
    if order is None:
        return None
    totals: dict[int, int] = {}
    for line in order.get("line_items") or []:
        if not isinstance(line, dict) or not isinstance(line.get("id"), int):
            continue
        meta = _meta(line.get("meta_data"))
        value = str(meta.get("_restock_refunded_items") or "0")
        totals[line["id"]] = int(value) if value.isdigit() else 0
    return totals


def _meta(entries: object) -> dict[str, object]:
    items = entries if isinstance(entries, Sequence) else []
    return {str(m.get("key")): m.get("value") for m in items if isinstance(m, dict)}


def _whether(
    restocked: Mapping[int, int] | None, refunded: Mapping[int, int], line_id: int
) -> bool | None:
    if restocked is None or line_id not in restocked:
        return None
    if restocked[line_id] == 0:
        return False
    return True if restocked[line_id] >= refunded[line_id] else None
