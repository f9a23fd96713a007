"""The WooCommerce sandbox's orders and refunds: their data and how REST v3 shows them.

As WooCommerce keeps them: an order line records the units its order took from stock
(`_reduced_stock`) and, as refunds restock some, the running total restocked
(`_restock_refunded_items`, `wc_restock_refunded_items`). A refund is an order of its own whose
lines point at the refunded line (`_refunded_item_id`) with a negative quantity; the order lists
its refunds newest first as `{"id", "reason", "total"}` (`_order-refunds.md`, `_orders.md`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


class OutOfStock(ValueError):
    """Raised when a shopper asks for more than the store holds (WooCommerce refuses the
    checkout when backorders are off)."""


Links = Callable[[str], dict[str, list[dict[str, str]]]]


class Stocked(Protocol):
    """What an order line needs of its product (the sandbox's `Product`)."""

    id: int
    sku: str
    name: str
    parent_id: int
    price: Decimal


def wp_time(moment: datetime) -> str:
    """WooCommerce's `*_gmt` fields: ISO 8601 to the second, in UTC, without an offset."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


@dataclass
class Line:
    id: int
    product: Any  # the sandbox's Product (Stocked)
    quantity: int
    reduced: int | None = None  # `_reduced_stock`: units this line took from stock, still out
    restocked: int = 0  # `_restock_refunded_items`: refunded units put back so far
    refunded: int = 0  # units refunded so far

    def meta(self) -> list[dict[str, Any]]:
        present = [("_reduced_stock", self.reduced), ("_restock_refunded_items", self.restocked)]
        return [
            _meta(self.id * 10 + n, key, str(value))
            for n, (key, value) in enumerate(present, 1)
            if value is not None and (value or key == "_reduced_stock")
        ]


@dataclass(frozen=True)
class RefundLine:
    id: int
    line: Line
    quantity: int  # units refunded, positive here, negative on the wire


@dataclass(frozen=True)
class Refund:
    id: int
    created: datetime
    reason: str
    lines: tuple[RefundLine, ...]

    @property
    def amount(self) -> Decimal:
        return sum((r.line.product.price * r.quantity for r in self.lines), Decimal(0))


@dataclass
class Order:
    id: int
    status: str
    lines: list[Line]
    created: datetime
    modified: datetime
    stock_reduced: bool = False  # WooCommerce's `_order_stock_reduced`
    refunds: list[Refund] = field(default_factory=list)
    trashed_from: str | None = None  # the status to restore from the trash

    def line(self, line_id: int) -> Line:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise KeyError(f"order {self.id} has no line {line_id}")

    @property
    def fully_refunded(self) -> bool:
        return all(line.refunded >= line.quantity for line in self.lines)


def order_json(order: Order, links: Links) -> dict[str, Any]:
    total = sum((line.product.price * line.quantity for line in order.lines), Decimal(0))
    return {
        "id": order.id,
        "status": order.status,
        "currency": "EUR",
        "date_created_gmt": wp_time(order.created),
        "date_modified_gmt": wp_time(order.modified),
        "total": money(total),
        "line_items": [_line_json(line) for line in order.lines],
        "refunds": [
            {"id": refund.id, "reason": refund.reason, "total": money(-refund.amount)}
            for refund in reversed(order.refunds)
        ],
        "_links": links(f"orders/{order.id}"),
    }


def refund_json(refund: Refund, order: Order, links: Links) -> dict[str, Any]:
    return {
        "id": refund.id,
        "date_created": wp_time(refund.created),
        "date_created_gmt": wp_time(refund.created),
        "amount": money(refund.amount),
        "reason": refund.reason,
        "refunded_by": 1,
        "refunded_payment": False,
        "meta_data": [],
        "line_items": [_refund_line_json(r) for r in refund.lines],
        "tax_lines": [],
        "shipping_lines": [],
        "fee_lines": [],
        "_links": links(f"orders/{order.id}/refunds/{refund.id}"),
    }


def _line_json(line: Line) -> dict[str, Any]:
    product = line.product
    subtotal = money(product.price * line.quantity)
    return {
        "id": line.id,
        "name": product.name,
        "product_id": product.parent_id or product.id,
        "variation_id": product.id if product.parent_id else 0,
        "quantity": line.quantity,
        "subtotal": subtotal,
        "total": subtotal,
        "sku": product.sku,
        "price": float(product.price),
        "meta_data": line.meta(),
    }


def _refund_line_json(refund_line: RefundLine) -> dict[str, Any]:
    product, units = refund_line.line.product, refund_line.quantity
    total = money(-product.price * units)
    return {
        "id": refund_line.id,
        "name": product.name,
        "product_id": product.parent_id or product.id,
        "variation_id": product.id if product.parent_id else 0,
        "quantity": -units,
        "tax_class": "",
        "subtotal": total,
        "subtotal_tax": "0.00",
        "total": total,
        "total_tax": "0.00",
        "taxes": [],
        "meta_data": [
            _meta(refund_line.id * 10 + 1, "_refunded_item_id", str(refund_line.line.id))
        ],
        "sku": product.sku,
        "price": float(-product.price),
        "refund_total": float(product.price * units),
    }


def _meta(meta_id: int, key: str, value: str) -> dict[str, Any]:
    return {"id": meta_id, "key": key, "value": value, "display_key": key, "display_value": value}
