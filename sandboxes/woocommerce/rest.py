"""The WooCommerce sandbox's REST v3 API (CHANNELS.md §2): products and variations read and
updated one by one or in batches of at most 100, orders and their refunds read, behind a host's
throttle and WooCommerce's key checks (`WC_REST_Authentication`)."""

from __future__ import annotations

import base64
import hmac
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandboxes.server import Handler, faulty
from sandboxes.woocommerce.oauth import Refusal, header_params
from sandboxes.woocommerce.orders import Order, order_json, refund_json

if TYPE_CHECKING:
    from sandboxes.woocommerce.store import Product, WooCommerceSandbox

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


class RestApi:
    """The store's REST API routes, answering as WooCommerce does."""

    def __init__(self, store: WooCommerceSandbox) -> None:
        self.store = store

    def routes(self) -> list[Route]:
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
            (
                "/products/{parent:int}/variations",
                "variations.list",
                "list",
                self._variations,
                ["GET"],
            ),
            (variation, "variations.get", "view", self._get, ["GET"]),
            (variation, "variations.update", "edit", self._put, _WRITE),
            ("/orders", "orders.list", "list", self._list_orders, ["GET"]),
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
                faulty(self.store.faults, self.store.log, op, self._guard(check, handler)),
                methods=methods,
            )
            for path, op, check, handler, methods in table
        ]

    def _guard(self, permission: str, handler: Handler) -> Handler:
        """The host's throttle first, then WooCommerce's key check (`WC_REST_Authentication`)."""

        async def guarded(request: Request) -> Response:
            throttling = self.store.throttling
            if throttling is not None:
                if throttling.calls is not None:
                    throttling.calls -= 1
                    if throttling.calls <= 0:
                        self.store.throttling = None
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
        if key not in self.store.keys:
            return wp_error(
                "woocommerce_rest_authentication_error", "Consumer key is invalid.", 401
            )
        expected, write = self.store.keys[key]
        if not hmac.compare_digest(expected, secret or ""):
            return wp_error(
                "woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401
            )
        return _may_write(request, write)

    def _authenticate_oauth(self, request: Request, permission: str) -> Response | None:
        params = dict(request.query_params)
        params.update(header_params(request.headers.get("authorization", "")))
        home = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        with self.store.lock:
            proven = self.store.oauth.check(request.method, home, params)
        if proven is None:
            return wp_error(*_DENIED[permission], 401)
        if isinstance(proven, Refusal):
            return wp_error(proven.code, proven.message, 401)
        return _may_write(request, self.store.keys[proven][1])

    async def _list(self, request: Request) -> Response:
        wanted = request.query_params.get("sku", "")
        skus = {*wanted.split(","), wanted}  # the whole string is a SKU too, as in WooCommerce
        with self.store.lock:
            # Ids are handed out in order and products kept as added: reversed, newest first.
            newest_first = list(reversed(self.store.products.values()))
            if wanted:  # filtering by SKU takes variations too (`WC_REST_Products_V2_Controller`)
                matching = [p for p in newest_first if p.sku in skus]
            else:
                matching = [p for p in newest_first if p.type != "variation"]
            return _paged(request, matching, self.store.product_json)

    async def _variations(self, request: Request) -> Response:
        """A variable product's variations, newest first, as `products` pages its list."""
        parent = request.path_params["parent"]
        with self.store.lock:
            found = [p for p in self.store.products.values() if p.parent_id == parent]
            newest_first = sorted(found, key=lambda p: -p.id)
            return _paged(request, newest_first, self.store.product_json)

    async def _get(self, request: Request) -> Response:
        with self.store.lock:
            product = self._addressed(request.path_params["id"], request.path_params.get("parent"))
            if product is None:
                return wp_error(_invalid_id_code(request), "Invalid ID.", 404)
            return JSONResponse(self.store.product_json(product))

    async def _put(self, request: Request) -> Response:
        fields = await json_object(request)
        with self.store.lock:
            answer = self._update_one(
                request.path_params["id"], request.path_params.get("parent"), fields, request
            )
        if "error" in answer:
            error = answer["error"]
            return wp_error(error["code"], error["message"], error["data"]["status"])
        return JSONResponse(answer)

    async def _batch(self, request: Request) -> Response:
        """`WC_REST_Controller::batch_items`: creates and deletes are not imitated."""
        items = await json_object(request)
        total = sum(len(items.get(kind) or []) for kind in ("create", "update", "delete"))
        if total > BATCH_LIMIT:
            message = f"Unable to accept more than {BATCH_LIMIT} items for this request."
            return wp_error("woocommerce_rest_request_entity_too_large", message, 413)
        parent = request.path_params.get("parent")
        with self.store.lock:
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
        if self.store.faults.item_fails(product.sku):
            # WordPress's answer to a save its database refused (`db_update_error`, 500); in a
            # batch, `WC_REST_Controller::batch_items` puts it in the item's `error` and the
            # request still answers 200.
            message = "Could not update the product in the database."
            return _item_error(product.id, "db_update_error", message, 500)
        self.store.save_product(product, fields)
        return self.store.product_json(product)

    async def _list_orders(self, request: Request) -> Response:
        """`GET /orders` as WooCommerce lists them (`_orders.md`): `modified_after` and
        `modified_before` exclusive (the site's time is UTC, so `dates_are_gmt` changes
        nothing), `orderby` date|id|modified, `order` asc|desc (date, newest first by default),
        trashed orders left out (status `any`)."""
        query = request.query_params
        try:
            listed = order_window(query.get("modified_after"), query.get("modified_before"))
        except ValueError as error:
            return _invalid_param("modified_after", str(error))
        orderby, order = query.get("orderby", "date"), query.get("order", "desc")
        if orderby not in _ORDER_KEYS or order not in ("asc", "desc"):
            return _invalid_param("orderby", f"orderby is one of {', '.join(_ORDER_KEYS)}")
        with self.store.lock:
            found = [o for o in self.store.orders.values() if o.status != "trash" and listed(o)]
            found.sort(key=_ORDER_KEYS[orderby], reverse=order == "desc")
            return _paged(request, [order_json(o, self.store.links) for o in found])

    async def _get_order(self, request: Request) -> Response:
        with self.store.lock:
            order = self.store.orders.get(request.path_params["id"])
            if order is None:
                return wp_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
            return JSONResponse(order_json(order, self.store.links))

    async def _list_refunds(self, request: Request) -> Response:
        """Newest first; an order WooCommerce does not know has none."""
        with self.store.lock:
            order = self.store.orders.get(request.path_params["order"])
            refunds = reversed(order.refunds) if order else ()
            return _paged(
                request, [refund_json(r, order, self.store.links) for r in refunds if order]
            )

    async def _get_refund(self, request: Request) -> Response:
        with self.store.lock:
            order = self.store.orders.get(request.path_params["order"])
            if order is None:
                return wp_error("woocommerce_rest_invalid_order_id", "Invalid order ID.", 404)
            found = [r for r in order.refunds if r.id == request.path_params["id"]]
            if not found:
                message = "Invalid order refund ID."
                return wp_error("woocommerce_rest_invalid_order_refund_id", message, 404)
            return JSONResponse(refund_json(found[0], order, self.store.links))

    def _addressed(self, product_id: object, parent: int | None) -> Product | None:
        """The product a route names: product routes take any product or variation (as
        `wc_get_product` does); variation routes need the variation's parent."""
        product = self.store.products.get(product_id) if isinstance(product_id, int) else None
        if product is None:
            return None
        if parent is None:
            return product
        return product if product.type == "variation" and product.parent_id == parent else None


_ORDER_KEYS: dict[str, Callable[[Order], tuple[Any, int]]] = {
    "date": lambda order: (order.created, order.id),
    "id": lambda order: (order.id, order.id),
    "modified": lambda order: (order.modified, order.id),
}


def order_window(after: str | None, before: str | None) -> Callable[[Order], bool]:
    """Whether an order was modified strictly between `after` and `before` (ISO 8601, UTC
    when they name no offset); raises `ValueError` for a time it cannot read."""
    low, high = _moment(after), _moment(before)
    return lambda order: (
        (low is None or order.modified > low) and (high is None or order.modified < high)
    )


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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


def _paged(
    request: Request,
    items: Sequence[Any],
    render: Callable[[Any], dict[str, Any]] = lambda item: item,
) -> Response:
    """One page of a collection, with WordPress's `per_page`/`page` checks and totals; only the
    page's items are `render`ed (a 20,000-product catalogue is paged, not rendered, each call)."""
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
        [render(item) for item in items[start : start + size]],
        headers={"X-WP-Total": str(len(items)), "X-WP-TotalPages": str(pages)},
    )


def _may_write(request: Request, write: bool) -> Response | None:
    """`WC_REST_Authentication::check_permissions`: a read key may only read."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and not write:
        message = "The API key provided does not have write permissions."
        return wp_error("woocommerce_rest_authentication_error", message, 401)
    return None


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def wp_error(code: str, message: str, status: int) -> JSONResponse:
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
