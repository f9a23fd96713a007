"""A WooCommerce store to test against: the REST v3 products API and the webhook sender.

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
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandboxes.server import CallLog, Faults, Handler, faulty
from sandboxes.woocommerce.oauth import OAuthCheck, Refusal, header_params
from sandboxes.woocommerce.orders import (
    Line,
    Order,
    Refund,
    RefundLine,
    order_json,
    refund_json,
    wp_time,
)
from sandboxes.woocommerce.webhooks import Webhooks

API = "/wp-json/wc/v3"
BATCH_LIMIT = 100
_WRITE = ["POST", "PUT", "PATCH"]
_DENIED = {  # what WooCommerce answers a request without credentials, by permission checked
    "list": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    "view": ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
    "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
    "batch": (
        "woocommerce_rest_cannot_batch",
        "Sorry, you are not allowed to batch manipulate this resource.",
    ),
}
_RESTOCKING = frozenset({"cancelled", "pending"})  # wc_maybe_increase_stock_levels
_REDUCING = frozenset({"processing", "completed", "on-hold"})  # wc_maybe_reduce_stock_levels


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _later(previous: datetime) -> datetime:
    return max(_now(), previous + timedelta(seconds=1))


_wp_time = wp_time


class OutOfStock(ValueError):
    """Raised when a shopper asks for more than the store holds (WooCommerce refuses the
    checkout when backorders are off)."""


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
        self._oauth = OAuthCheck(lambda key: self.keys.get(key, (None, False))[0])
        self._products: dict[int, Product] = {}
        self._orders: dict[int, Order] = {}
        self._ids, self._line_ids = itertools.count(90), itertools.count(300)
        self._lock = threading.RLock()
        self.webhooks = Webhooks(
            self._payload,
            self._lock,
            site_url=site_url,
            auto_deliver=auto_deliver,
            delivery_delay=delivery_delay,
            delivery_timeout=delivery_timeout,
            max_failures=max_failures,
        )
        self.app = Starlette(routes=self._api_routes() + self._control_routes())

    # Catalogue ----------------------------------------------------------------------------

    def add_key(self, key: str, secret: str, *, write: bool = True) -> None:
        """Accept another API key (`write=False`: a read-only key)."""
        self.keys[key] = (secret, write)

    def add_product(
        self, sku: str, stock: int | None = 0, *, name: str = "", parent: int | None = None
    ) -> int:
        """A simple product, or a variation of `parent` (which becomes variable); its id.
        `stock` None: WooCommerce does not manage its stock."""
        with self._lock:
            if sku and self._by_sku(sku) is not None:
                raise ValueError(f"SKU {sku!r} is already used (WooCommerce's SKUs are unique)")
            product = Product(next(self._ids), sku, name or sku, stock, stock is not None)
            if parent is not None:
                self._products[parent].type = "variable"
                product.parent_id, product.type = parent, "variation"
            self._products[product.id] = product
            return product.id

    def delete_product(self, sku: str) -> None:
        """Delete for good (`force=true`): its id is gone, its SKU free again."""
        with self._lock:
            del self._products[self._product(sku).id]

    def stock(self, sku: str) -> int | None:
        with self._lock:
            return self._product(sku).stock_quantity

    def set_stock(self, sku: str, quantity: int) -> None:
        """A shop manager's edit: the stock changes and `product.updated` is sent."""
        with self._lock:
            self._update(self._product(sku), {"manage_stock": True, "stock_quantity": quantity})

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
        with self._lock:
            lines = []
            for sku, quantity in items.items():
                product = self._product(sku)
                if product.type == "variable":
                    raise ValueError(f"{sku!r} is a variable product: buy one of its variations")
                if self._manages(product) and (product.stock_quantity or 0) < quantity:
                    raise OutOfStock(f"only {product.stock_quantity} of {sku!r} in stock")
                lines.append(Line(next(self._line_ids), product, quantity))
            now = _now()
            order = Order(next(self._ids), "pending", lines, now, now)
            self._orders[order.id] = order
            self.webhooks.schedule("order.created", order.id)
            self.set_order_status(order.id, "processing")
            return order.id

    def line_ids(self, order_id: int) -> list[int]:
        with self._lock:
            return [line.id for line in self._orders[order_id].lines]

    def refund(
        self, order_id: int, lines: Mapping[int, int], *, restock: bool, reason: str = ""
    ) -> int:
        """A refund of `lines` (order line id -> units), restocking them or not (the refund
        screen's "Restock refunded items", the API's `api_restock`); its id. Sends
        `order.updated` (and `product.updated` for stock put back).

        Raises:
            ValueError: more units than the line has left to refund.
        """
        with self._lock:
            order = self._orders[order_id]
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
        with self._lock:
            order = self._orders[order_id]
            order.trashed_from, order.status = order.status, "trash"
            order.modified = _later(order.modified)
            self.webhooks.schedule("order.deleted", order_id)

    def restore_order(self, order_id: int) -> None:
        """Take an order out of the trash, back to its status; sends `order.restored`."""
        with self._lock:
            order = self._orders[order_id]
            order.status, order.trashed_from = order.trashed_from or "pending", None
            order.modified = _later(order.modified)
            self.webhooks.schedule("order.restored", order_id)

    def delete_order(self, order_id: int) -> None:
        """Delete an order for good, its refunds with it; sends `order.deleted`."""
        with self._lock:
            del self._orders[order_id]
            self.webhooks.schedule("order.deleted", order_id)

    def set_stock_management(self, enabled: bool) -> None:
        """The store-wide setting: off, WooCommerce manages no stock and ignores quantities."""
        with self._lock:
            self.stock_management = enabled

    def set_order_status(self, order_id: int, status: str) -> None:
        """Move an order, reducing or restoring stock as WooCommerce does; `order.updated`."""
        with self._lock:
            order = self._orders[order_id]
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
            order = self._orders.get(resource_id)
            return order_json(order, self._links) if order else None
        product = self._products.get(resource_id)
        return self._product_json(product) if product else None

    # Representations ----------------------------------------------------------------------

    def _product_json(self, product: Product) -> dict[str, Any]:
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
            "date_modified": _wp_time(product.modified),
            "date_modified_gmt": _wp_time(product.modified),
            "manage_stock": managed,
            "stock_quantity": product.stock_quantity if managed else None,
            "price": str(product.price),
            "stock_status": "instock" if stocked else "outofstock",
            "variations": [p.id for p in self._products.values() if p.parent_id == product.id],
            "_links": self._links(f"products/{product.id}"),
        }

    def _links(self, path: str) -> dict[str, list[dict[str, str]]]:
        collection = path.rpartition("/")[0]
        return {
            "self": [{"href": f"{self.site_url}wp-json/wc/v3/{path}"}],
            "collection": [{"href": f"{self.site_url}wp-json/wc/v3/{collection}"}],
        }

    # REST API -----------------------------------------------------------------------------

    def _api_routes(self) -> list[Route]:
        product, variation = "/products/{id:int}", "/products/{parent:int}/variations/{id:int}"
        table: list[tuple[str, str, str, Handler, list[str]]] = [
            ("/products", "products.list", "list", self._list, ["GET"]),
            ("/products/batch", "products.batch", "batch", self._batch, _WRITE),
            (product, "products.get", "view", self._get, ["GET"]),
            (product, "products.update", "edit", self._put, _WRITE),
            (
                "/products/{parent:int}/variations/batch",
                "variations.batch",
                "batch",
                self._batch,
                _WRITE,
            ),
            (variation, "variations.get", "view", self._get, ["GET"]),
            (variation, "variations.update", "edit", self._put, _WRITE),
            ("/orders/{id:int}", "orders.get", "view", self._get_order, ["GET"]),
            ("/orders/{order:int}/refunds", "refunds.list", "list", self._list_refunds, ["GET"]),
            (
                "/orders/{order:int}/refunds/{id:int}",
                "refunds.get",
                "view",
                self._get_refund,
                ["GET"],
            ),
        ]
        return [
            Route(
                API + path,
                faulty(self.faults, self.log, op, self._guard(check, handler)),
                methods=methods,
            )
            for path, op, check, handler, methods in table
        ]

    def _guard(self, permission: str, handler: Handler) -> Handler:
        """The host's throttle first, then WooCommerce's key check (`WC_REST_Authentication`)."""

        async def guarded(request: Request) -> Response:
            throttling = self.throttling
            if throttling is not None:
                if throttling.calls is not None:
                    throttling.calls -= 1
                    if throttling.calls <= 0:
                        self.throttling = None
                retry_after = str(math.ceil(throttling.retry_after))
                return PlainTextResponse("Too Many Requests", 429, {"Retry-After": retry_after})
            refusal = self._authenticate(request, permission)
            return refusal or await handler(request)

        return guarded

    def _authenticate(self, request: Request, permission: str) -> Response | None:
        """`WC_REST_Authentication::authenticate`: Basic (or keys in the query) over HTTPS only;
        then one-legged OAuth 1.0a; nothing proven: the endpoint's own 401."""
        key, secret = _credentials(request) if request.url.scheme == "https" else (None, None)
        if key is None:
            return self._authenticate_oauth(request, permission)
        if key not in self.keys:
            return _wp_error(
                "woocommerce_rest_authentication_error", "Consumer key is invalid.", 401
            )
        expected, write = self.keys[key]
        if not hmac.compare_digest(expected, secret or ""):
            return _wp_error(
                "woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401
            )
        return _may_write(request, write)

    def _authenticate_oauth(self, request: Request, permission: str) -> Response | None:
        params = dict(request.query_params)
        params.update(header_params(request.headers.get("authorization", "")))
        home = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        with self._lock:
            proven = self._oauth.check(request.method, home, params)
        if proven is None:
            return _wp_error(*_DENIED[permission], 401)
        if isinstance(proven, Refusal):
            return _wp_error(proven.code, proven.message, 401)
        return _may_write(request, self.keys[proven][1])

    async def _list(self, request: Request) -> Response:
        wanted = request.query_params.get("sku", "")
        skus = {*wanted.split(","), wanted}  # the whole string is a SKU too, as in WooCommerce
        with self._lock:
            newest_first = sorted(self._products.values(), key=lambda p: -p.id)
            if wanted:  # filtering by SKU takes variations too (`WC_REST_Products_V2_Controller`)
                matching = [p for p in newest_first if p.sku in skus]
            else:
                matching = [p for p in newest_first if p.type != "variation"]
            return _paged(request, [self._product_json(p) for p in matching])

    async def _get(self, request: Request) -> Response:
        with self._lock:
            product = self._addressed(request.path_params["id"], request.path_params.get("parent"))
            if product is None:
                return _wp_error(_invalid_id_code(request), "Invalid ID.", 404)
            return JSONResponse(self._product_json(product))

    async def _put(self, request: Request) -> Response:
        fields = await _json_object(request)
        with self._lock:
            answer = self._update_one(
                request.path_params["id"], request.path_params.get("parent"), fields, request
            )
        if "error" in answer:
            error = answer["error"]
            return _wp_error(error["code"], error["message"], error["data"]["status"])
        return JSONResponse(answer)

    async def _batch(self, request: Request) -> Response:
        """`WC_REST_Controller::batch_items`: creates and deletes are not imitated."""
        items = await _json_object(request)
        total = sum(len(items.get(kind) or []) for kind in ("create", "update", "delete"))
        if total > BATCH_LIMIT:
            message = f"Unable to accept more than {BATCH_LIMIT} items for this request."
            return _wp_error("woocommerce_rest_request_entity_too_large", message, 413)
        parent = request.path_params.get("parent")
        with self._lock:
            updated = [
                self._update_one(item.get("id"), parent, item, request)
                if isinstance(item, dict)
                else _item_error(None, "rest_invalid_param", "Invalid item.", 400)
                for item in items.get("update") or []
            ]
        return JSONResponse({"update": updated} if updated else {})

    def _update_one(
        self, product_id: object, parent: int | None, fields: dict[str, Any], request: Request
    ) -> dict[str, Any]:
        product = self._addressed(product_id, parent)
        if product is None:
            return _item_error(product_id, _invalid_id_code(request), "Invalid ID.", 400)
        for name, kind in (("manage_stock", bool), ("stock_quantity", int)):
            value = fields.get(name)
            if value is not None and (type(value) is not kind):
                return _item_error(
                    product.id, "rest_invalid_param", f"Invalid parameter(s): {name}", 400
                )
        self._update(product, fields)
        return self._product_json(product)

    async def _get_order(self, request: Request) -> Response:
        with self._lock:
            order = self._orders.get(request.path_params["id"])
            if order is None:
                return _wp_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
            return JSONResponse(order_json(order, self._links))

    async def _list_refunds(self, request: Request) -> Response:
        """Newest first; an order WooCommerce does not know has none."""
        with self._lock:
            order = self._orders.get(request.path_params["order"])
            refunds = reversed(order.refunds) if order else ()
            return _paged(request, [refund_json(r, order, self._links) for r in refunds if order])

    async def _get_refund(self, request: Request) -> Response:
        with self._lock:
            order = self._orders.get(request.path_params["order"])
            if order is None:
                return _wp_error("woocommerce_rest_invalid_order_id", "Invalid order ID.", 404)
            found = [r for r in order.refunds if r.id == request.path_params["id"]]
            if not found:
                message = "Invalid order refund ID."
                return _wp_error("woocommerce_rest_invalid_order_refund_id", message, 404)
            return JSONResponse(refund_json(found[0], order, self._links))

    def _addressed(self, product_id: object, parent: int | None) -> Product | None:
        """The product a route names: product routes take any product or variation (as
        `wc_get_product` does); variation routes need the variation's parent."""
        product = self._products.get(product_id) if isinstance(product_id, int) else None
        if product is None:
            return None
        if parent is None:
            return product
        return product if product.type == "variation" and product.parent_id == parent else None

    def _update(self, product: Product, fields: dict[str, Any]) -> None:
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

    # Control ------------------------------------------------------------------------------

    def _control_routes(self) -> list[Route]:
        return [
            Route("/_sandbox/stock", self._control_stock, methods=["GET"]),
            Route("/_sandbox/stock/{sku}", self._control_set_stock, methods=["PUT"]),
            Route("/_sandbox/products", self._control_add_product, methods=["POST"]),
            Route("/_sandbox/buy", self._control_buy, methods=["POST"]),
            Route("/_sandbox/orders/{id:int}/refunds", self._control_refund, methods=["POST"]),
            Route("/_sandbox/orders/{id:int}/{action}", self._control_order, methods=["POST"]),
            Route("/_sandbox/settings", self._control_settings, methods=["PUT"]),
            Route("/_sandbox/faults", self._control_faults, methods=["PUT"]),
            Route("/_sandbox/throttle", self._control_throttle, methods=["PUT", "DELETE"]),
            Route("/_sandbox/calls", self._control_calls, methods=["GET"]),
            Route("/_sandbox/webhooks", self._control_webhooks, methods=["GET", "POST"]),
            Route("/_sandbox/webhooks/deliver", self._control_deliver, methods=["POST"]),
        ]

    async def _control_stock(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse({p.sku: p.stock_quantity for p in self._products.values() if p.sku})

    async def _control_set_stock(self, request: Request) -> Response:
        body = await _json_object(request)
        try:
            self.set_stock(request.path_params["sku"], int(body["quantity"]))
        except KeyError as error:
            return JSONResponse({"error": f"unknown {error}"}, 404)
        return JSONResponse(
            {"sku": request.path_params["sku"], "stock_quantity": int(body["quantity"])}
        )

    async def _control_add_product(self, request: Request) -> Response:
        body = await _json_object(request)
        with self._lock:
            parent = self._product(body["parent_sku"]).id if body.get("parent_sku") else None
        stock, name = body.get("stock", 0), body.get("name", "")
        product_id = self.add_product(body["sku"], stock, name=name, parent=parent)
        return JSONResponse({"id": product_id}, 201)

    async def _control_buy(self, request: Request) -> Response:
        body = await _json_object(request)
        try:
            order_id = self.buy(body["sku"], int(body.get("quantity", 1)))
        except OutOfStock as error:
            return JSONResponse({"error": str(error)}, 409)
        return JSONResponse({"order_id": order_id}, 201)

    async def _control_refund(self, request: Request) -> Response:
        """Body `{"lines": {"<line id>": units}, "restock": bool, "reason": str}`."""
        body = await _json_object(request)
        try:
            lines = {int(line): int(units) for line, units in (body.get("lines") or {}).items()}
            refund_id = self.refund(
                request.path_params["id"],
                lines,
                restock=bool(body.get("restock", True)),
                reason=str(body.get("reason", "")),
            )
        except KeyError as error:
            return JSONResponse({"error": f"unknown {error}"}, 404)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, 409)
        return JSONResponse({"refund_id": refund_id}, 201)

    async def _control_order(self, request: Request) -> Response:
        """POST `/_sandbox/orders/<id>/<trash|restore|delete|cancelled|completed|…>`."""
        order_id, action = request.path_params["id"], request.path_params["action"]
        actions = {"trash": self.trash_order, "restore": self.restore_order}
        actions["delete"] = self.delete_order
        try:
            if action in actions:
                actions[action](order_id)
            else:
                self.set_order_status(order_id, action)
        except KeyError:
            return JSONResponse({"error": f"unknown order {order_id}"}, 404)
        return Response(status_code=204)

    async def _control_settings(self, request: Request) -> Response:
        body = await _json_object(request)
        if "manage_stock" in body:
            self.set_stock_management(bool(body["manage_stock"]))
        return JSONResponse({"manage_stock": self.stock_management})

    async def _control_faults(self, request: Request) -> Response:
        body = await _json_object(request)
        for name in ("outage", "error_rate", "delay"):
            if name in body:
                setattr(self.faults, name, body[name])
        return JSONResponse(vars(self.faults))

    async def _control_throttle(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.lift_throttle()
        else:
            body = await _json_object(request)
            self.throttle(float(body.get("retry_after", 1)), body.get("calls"))
        return Response(status_code=204)

    async def _control_calls(self, request: Request) -> Response:
        operations = {op for _, op, _ in list(self.log.calls)}
        return JSONResponse({op: self.log.count(op) for op in sorted(operations)})

    async def _control_webhooks(self, request: Request) -> Response:
        if request.method == "POST":
            body = await _json_object(request)
            self.webhooks.add(body["topic"], body["delivery_url"], body["secret"])
        with self._lock:
            return JSONResponse([vars(w).copy() for w in self.webhooks.subscriptions.values()])

    async def _control_deliver(self, request: Request) -> Response:
        sent = await asyncio.to_thread(self.webhooks.deliver_pending)
        return JSONResponse(
            [{"topic": s.topic, "resource_id": s.resource_id, "status": s.status} for s in sent]
        )

    # Lookups ------------------------------------------------------------------------------

    def _by_sku(self, sku: str) -> Product | None:
        return next((p for p in self._products.values() if p.sku == sku), None)

    def _product(self, sku: str) -> Product:
        product = self._by_sku(sku)
        if product is None:
            raise KeyError(sku)
        return product


def _credentials(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None, None
        return key, secret
    query = request.query_params
    return query.get("consumer_key"), query.get("consumer_secret")


def _paged(request: Request, items: list[dict[str, Any]]) -> Response:
    """One page of a collection, with WordPress's `per_page`/`page` checks and totals."""
    per_page, page = (
        request.query_params.get("per_page", "10"),
        request.query_params.get("page", "1"),
    )
    if not per_page.isdigit() or not 1 <= int(per_page) <= 100:
        why = "per_page must be between 1 (inclusive) and 100 (inclusive)"
        return _invalid_param("per_page", why)
    if not page.isdigit() or int(page) < 1:
        return _invalid_param("page", "page must be greater than or equal to 1")
    size = int(per_page)
    start = (int(page) - 1) * size
    pages = math.ceil(len(items) / size)
    return JSONResponse(
        items[start : start + size],
        headers={"X-WP-Total": str(len(items)), "X-WP-TotalPages": str(pages)},
    )


def _may_write(request: Request, write: bool) -> Response | None:
    """`WC_REST_Authentication::check_permissions`: a read key may only read."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and not write:
        message = "The API key provided does not have write permissions."
        return _wp_error("woocommerce_rest_authentication_error", message, 401)
    return None


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _wp_error(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": {"status": status}}, status)


def _invalid_param(name: str, why: str) -> JSONResponse:
    body = {
        "code": "rest_invalid_param",
        "message": f"Invalid parameter(s): {name}",
        "data": {"status": 400, "params": {name: why}},
    }
    return JSONResponse(body, 400)


def _item_error(item_id: object, code: str, message: str, status: int) -> dict[str, Any]:
    return {"id": item_id, "error": {"code": code, "message": message, "data": {"status": status}}}


def _invalid_id_code(request: Request) -> str:
    if "parent" in request.path_params:
        return "woocommerce_rest_product_variation_invalid_id"
    return "woocommerce_rest_product_invalid_id"
