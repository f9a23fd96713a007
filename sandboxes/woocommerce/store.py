"""A WooCommerce store to test against: the REST v3 products and orders API and its webhooks.

What it imitates (CHANNELS.md §2): products and variations with SKUs, `manage_stock` and
`stock_quantity`; `GET /products?sku=A,B` (variations included, as WooCommerce does when the
filter names SKUs); single and batch updates, at most 100 objects per batch, 413 beyond;
`stock_quantity` accepted and ignored (success, nothing changed) when stock management is off for
the product or the whole store; orders (`GET /orders/<id>`), refunded in part or whole, with or
without restocking, and their refunds (`GET /orders/<id>/refunds[/<id>]`: negative line
quantities, `_refunded_item_id`; the order line keeps `_reduced_stock` and
`_restock_refunded_items`); orders trashed, restored and deleted. API keys as WooCommerce checks
them (`WC_REST_Authentication`): over HTTPS, HTTP Basic credentials (or
`consumer_key`/`consumer_secret` in the query); over plain HTTP only one-legged OAuth 1.0a
(`oauth.py`), so Basic there gets the same 401 as no credentials. Its webhooks
(`webhooks.py`) are built at delivery time from the resource as it is then (`{"id"}` alone
for a deletion), at most one pending per webhook and resource, sent once as PHP's
`wp_json_encode` writes JSON (`\\/`, `\\uXXXX`), signed with X-WC-Webhook-Signature, never
retried, and the webhook is disabled after the documented run of failures.

Simplified: variations cannot inherit their parent's stock (`manage_stock: "parent"`); there are no
backorders, so a shopper cannot buy more than the stock; deliveries run in one background
thread (Action Scheduler runs them in batches), shortly after the change, or on demand; times
have one-second resolution, as WooCommerce's, but each change of a resource moves its
`date_modified_gmt` on by a second at least, so compressed tests never see two states of one
order at the same time. WooCommerce documents no rate limit; `throttle()` answers 429 with
Retry-After as a host in front of it would. Every unit costs `price`; refunds carry no taxes or
shipping; an order is fully refunded (status `refunded`) when all its units are; a trashed order
keeps its stock as it was.

The store's state and what shoppers and managers do to it are here; its REST API is in
`rest.py`, its control routes in `control.py`, its orders' shapes in `orders.py`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette

from sandboxes.server import CallLog, Faults
from sandboxes.woocommerce.control import ControlApi
from sandboxes.woocommerce.oauth import OAuthCheck
from sandboxes.woocommerce.orders import (
    Line,
    Order,
    OutOfStock,
    Refund,
    RefundLine,
    order_json,
    wp_time,
)
from sandboxes.woocommerce.rest import RestApi
from sandboxes.woocommerce.webhooks import Webhooks

_RESTOCKING = frozenset({"cancelled", "pending"})  # wc_maybe_increase_stock_levels
_REDUCING = frozenset({"processing", "completed", "on-hold"})  # wc_maybe_reduce_stock_levels


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _later(previous: datetime) -> datetime:
    return max(_now(), previous + timedelta(seconds=1))


@dataclass
class Product:
    id: int
    sku: str
    name: str
    stock_quantity: int | None
    manage_stock: bool
    parent_id: int = 0  # a variation's variable product
    type: str = "simple"  # simple | variable | variation
    modified: datetime = field(default_factory=_now)
    price: Decimal = Decimal("10.00")


@dataclass
class Throttle:
    """A host's rate limit in front of the store: the next `calls` API calls (all, if None)
    answer 429 with this Retry-After."""

    retry_after: float = 1.0
    calls: int | None = None


class WooCommerceSandbox:
    """One WooCommerce store; serve `.app` with `SandboxServer`.

    Parameters:
        consumer_key, consumer_secret: the read/write API key the store accepts.
        site_url: the home URL its webhooks name as their source (trailing slash).
        auto_deliver: deliver webhooks in the background `delivery_delay` seconds after a
            change; when False they wait for `webhooks.deliver_pending()`.
        delivery_timeout: seconds a delivery may take (WooCommerce: 60).
        max_failures: `woocommerce_max_webhook_delivery_failures` (5): the failure after
            this many more disables the webhook.
    """

    def __init__(
        self,
        consumer_key: str = "ck_sandbox",
        consumer_secret: str = "cs_sandbox",
        *,
        site_url: str = "https://shop.example/",
        faults: Faults | None = None,
        log: CallLog | None = None,
        auto_deliver: bool = True,
        delivery_delay: float = 0.05,
        delivery_timeout: float = 60.0,
        max_failures: int = 5,
    ) -> None:
        self.keys: dict[str, tuple[str, bool]] = {consumer_key: (consumer_secret, True)}
        self.site_url = site_url
        self.faults = faults or Faults()
        self.log = log or CallLog()
        self.throttling: Throttle | None = None
        self.stock_management = True  # the store's "Enable stock management" setting
        self.oauth = OAuthCheck(lambda key: self.keys.get(key, (None, False))[0])
        self.products: dict[int, Product] = {}
        # Indexes, as WooCommerce's database has them: scanning 20,000 products for each SKU a
        # push names, or each page's variations, made the store, not invsync, the benchmark's
        # bottleneck.
        self._skus: dict[str, int] = {}  # SKU -> product id
        self._variations: dict[int, list[int]] = {}  # parent id -> its variations' ids
        self.orders: dict[int, Order] = {}
        self._ids, self._line_ids = itertools.count(90), itertools.count(300)
        self.lock = threading.RLock()
        self.webhooks = Webhooks(
            self._payload,
            self.lock,
            site_url=site_url,
            auto_deliver=auto_deliver,
            delivery_delay=delivery_delay,
            delivery_timeout=delivery_timeout,
            max_failures=max_failures,
        )
        self.app = Starlette(routes=RestApi(self).routes() + ControlApi(self).routes())

    # Catalogue ----------------------------------------------------------------------------

    def add_key(self, key: str, secret: str, *, write: bool = True) -> None:
        """Accept another API key (`write=False`: a read-only key)."""
        self.keys[key] = (secret, write)

    def add_product(
        self, sku: str, stock: int | None = 0, *, name: str = "", parent: int | None = None
    ) -> int:
        """A simple product, or a variation of `parent` (which becomes variable); its id.
        `stock` None: WooCommerce does not manage its stock."""
        with self.lock:
            if sku and self._by_sku(sku) is not None:
                raise ValueError(f"SKU {sku!r} is already used (WooCommerce's SKUs are unique)")
            product = Product(next(self._ids), sku, name or sku, stock, stock is not None)
            if parent is not None:
                self.products[parent].type = "variable"
                product.parent_id, product.type = parent, "variation"
                self._variations.setdefault(parent, []).append(product.id)
            self.products[product.id] = product
            if sku:
                self._skus[sku] = product.id
            return product.id

    def delete_product(self, sku: str) -> None:
        """Delete for good (`force=true`): its id is gone, its SKU free again."""
        with self.lock:
            product = self.products.pop(self.product_named(sku).id)
            del self._skus[sku]
            self._variations.pop(product.id, None)
            if product.parent_id in self._variations:
                self._variations[product.parent_id].remove(product.id)

    def stock(self, sku: str) -> int | None:
        with self.lock:
            return self.product_named(sku).stock_quantity

    def set_stock(self, sku: str, quantity: int) -> None:
        """A shop manager's edit: the stock changes and `product.updated` is sent."""
        with self.lock:
            self.save_product(
                self.product_named(sku), {"manage_stock": True, "stock_quantity": quantity}
            )

    def throttle(self, retry_after: float, calls: int | None = None) -> None:
        """Answer the next `calls` API calls (all, until `lift_throttle`) with 429."""
        self.throttling = Throttle(retry_after, calls)

    def lift_throttle(self) -> None:
        self.throttling = None

    # Shoppers -----------------------------------------------------------------------------

    def buy(self, sku: str, quantity: int = 1) -> int:
        """A paid checkout: a `processing` order whose stock is reduced; its id.
        Sends `order.created`, `order.updated` and `product.updated`."""
        return self.checkout({sku: quantity})

    def checkout(self, items: Mapping[str, int]) -> int:
        """A paid checkout of several SKUs, one line each; as `buy`."""
        with self.lock:
            lines = []
            for sku, quantity in items.items():
                product = self.product_named(sku)
                if product.type == "variable":
                    raise ValueError(f"{sku!r} is a variable product: buy one of its variations")
                if self._manages(product) and (product.stock_quantity or 0) < quantity:
                    raise OutOfStock(f"only {product.stock_quantity} of {sku!r} in stock")
                lines.append(Line(next(self._line_ids), product, quantity))
            now = _now()
            order = Order(next(self._ids), "pending", lines, now, now)
            self.orders[order.id] = order
            self.webhooks.schedule("order.created", order.id)
            self.set_order_status(order.id, "processing")
            return order.id

    def line_ids(self, order_id: int) -> list[int]:
        with self.lock:
            return [line.id for line in self.orders[order_id].lines]

    def refund(
        self, order_id: int, lines: Mapping[int, int], *, restock: bool, reason: str = ""
    ) -> int:
        """A refund of `lines` (order line id -> units), restocking them or not (the refund
        screen's "Restock refunded items", the API's `api_restock`); its id. Sends
        `order.updated` (and `product.updated` for stock put back).

        Raises:
            ValueError: more units than the line has left to refund.
        """
        with self.lock:
            order = self.orders[order_id]
            for line_id, units in lines.items():
                line = order.line(line_id)
                if not 0 < units <= line.quantity - line.refunded:
                    left = line.quantity - line.refunded
                    raise ValueError(f"line {line_id} has {left} units left to refund, not {units}")
            refund = Refund(
                next(self._ids),
                _later(order.modified),
                reason,
                tuple(RefundLine(next(self._line_ids), order.line(i), n) for i, n in lines.items()),
            )
            for refunded in refund.lines:
                refunded.line.refunded += refunded.quantity
                if restock:
                    self._restock(refunded.line, refunded.quantity)
            order.refunds.append(refund)
            order.modified = refund.created
            if order.fully_refunded:
                order.status = "refunded"  # `wc_order_fully_refunded`
            self.webhooks.schedule("order.updated", order.id)  # `woocommerce_order_refunded`
            return refund.id

    def _restock(self, line: Line, units: int) -> None:
        """`wc_restock_refunded_items`: only what the line took from stock goes back."""
        product = line.product
        if not line.reduced or not self._manages(product):
            return
        units = min(units, line.reduced)
        product.stock_quantity = (product.stock_quantity or 0) + units
        line.reduced -= units
        line.restocked += units
        self._touch(product)

    def trash_order(self, order_id: int) -> None:
        """Move an order to the trash (stock stays as it is); sends `order.deleted`."""
        with self.lock:
            order = self.orders[order_id]
            order.trashed_from, order.status = order.status, "trash"
            order.modified = _later(order.modified)
            self.webhooks.schedule("order.deleted", order_id)

    def restore_order(self, order_id: int) -> None:
        """Take an order out of the trash, back to its status; sends `order.restored`."""
        with self.lock:
            order = self.orders[order_id]
            order.status, order.trashed_from = order.trashed_from or "pending", None
            order.modified = _later(order.modified)
            self.webhooks.schedule("order.restored", order_id)

    def delete_order(self, order_id: int) -> None:
        """Delete an order for good, its refunds with it; sends `order.deleted`."""
        with self.lock:
            del self.orders[order_id]
            self.webhooks.schedule("order.deleted", order_id)

    def set_stock_management(self, enabled: bool) -> None:
        """The store-wide setting: off, WooCommerce manages no stock and ignores quantities."""
        with self.lock:
            self.stock_management = enabled

    def set_order_status(self, order_id: int, status: str) -> None:
        """Move an order, reducing or restoring stock as WooCommerce does; `order.updated`."""
        with self.lock:
            order = self.orders[order_id]
            order.status, order.modified = status, _later(order.modified)
            if status in _REDUCING and not order.stock_reduced:
                self._move_stock(order, -1)
            elif status in _RESTOCKING and order.stock_reduced:
                self._move_stock(order, +1)
            self.webhooks.schedule("order.updated", order.id)

    def _move_stock(self, order: Order, sign: int) -> None:
        """`wc_reduce_stock_levels` (each line's `_reduced_stock` set) or
        `wc_increase_stock_levels` (what each line still has out goes back)."""
        for line in order.lines:
            product = line.product
            if not self._manages(product) or product.stock_quantity is None:
                continue
            units = line.quantity - line.refunded if sign < 0 else line.reduced or 0
            product.stock_quantity += sign * units
            line.reduced = units if sign < 0 else None  # the meta is deleted once restored
            self._touch(product)
        order.stock_reduced = sign < 0

    def _manages(self, product: Product) -> bool:
        """`WC_Product::managing_stock`: the product's setting, if the store manages stock."""
        return self.stock_management and product.manage_stock

    # Webhooks ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the background deliveries."""
        self.webhooks.close()

    def _payload(self, topic: str, resource_id: int) -> dict[str, Any] | None:
        """The resource as the REST API shows it now; None once it is deleted. A deletion
        names only the resource (`WC_Webhook::build_payload`)."""
        if topic.endswith(".deleted"):
            return {"id": resource_id}
        if topic.startswith("order."):
            order = self.orders.get(resource_id)
            return order_json(order, self.links) if order else None
        product = self.products.get(resource_id)
        return self.product_json(product) if product else None

    # Representations ----------------------------------------------------------------------

    def product_json(self, product: Product) -> dict[str, Any]:
        managed = self._manages(product)
        stocked = not managed or (product.stock_quantity or 0) > 0
        return {
            "id": product.id,
            "name": product.name,
            "type": product.type,
            "status": "publish",
            "parent_id": product.parent_id,
            "sku": product.sku,
            "permalink": f"{self.site_url}?p={product.id}",
            "date_modified": wp_time(product.modified),
            "date_modified_gmt": wp_time(product.modified),
            "manage_stock": managed,
            "stock_quantity": product.stock_quantity if managed else None,
            "price": str(product.price),
            "stock_status": "instock" if stocked else "outofstock",
            "variations": list(self._variations.get(product.id, ())),
            "_links": self.links(f"products/{product.id}"),
        }

    def links(self, path: str) -> dict[str, list[dict[str, str]]]:
        collection = path.rpartition("/")[0]
        return {
            "self": [{"href": f"{self.site_url}wp-json/wc/v3/{path}"}],
            "collection": [{"href": f"{self.site_url}wp-json/wc/v3/{collection}"}],
        }

    def save_product(self, product: Product, fields: dict[str, Any]) -> None:
        """Saves the product, its stock only where WooCommerce manages it: otherwise
        `stock_quantity` is accepted and ignored."""
        if self.stock_management:
            if "manage_stock" in fields:
                product.manage_stock = bool(fields["manage_stock"])
            if product.manage_stock and fields.get("stock_quantity") is not None:
                product.stock_quantity = int(fields["stock_quantity"])
        self._touch(product)

    def _touch(self, product: Product) -> None:
        product.modified = _later(product.modified)
        self.webhooks.schedule("product.updated", product.id)

    # Lookups ------------------------------------------------------------------------------

    def _by_sku(self, sku: str) -> Product | None:
        found = self._skus.get(sku)
        return None if found is None else self.products.get(found)

    def product_named(self, sku: str) -> Product:
        product = self._by_sku(sku)
        if product is None:
            raise KeyError(sku)
        return product
