"""The eBay sandbox's REST APIs (CHANNELS.md §4): OAuth tokens, the Notification API's public
key, Fulfillment orders, Inventory items and offers, answering as eBay does (errors as
`{"errors": [{"errorId", "domain", "category", "message"}]}`), behind a host's throttle and the
shared faults."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.ebay.notifications import ebay_time
from sandboxes.server import Handler, faulty

if TYPE_CHECKING:
    from sandboxes.ebay.seller import EbaySandbox, Item, Order

BULK_LIMIT = 25
_FILTER = re.compile(r"^lastmodifieddate:\[(.*?)\.\.(.*)\]$")
INVENTORY = "/sell/inventory/v1"


def ebay_error(status: int, error_id: int, message: str, domain: str = "API_INVENTORY") -> Response:
    error = {"errorId": error_id, "domain": domain, "category": "REQUEST", "message": message}
    return JSONResponse({"errors": [error]}, status)


class InventoryApi:
    """The account's API routes."""

    def __init__(self, seller: EbaySandbox) -> None:
        self.seller = seller

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, str | None, Handler, str]] = [
            ("/identity/v1/oauth2/token", "oauth.token", None, self._token, "POST"),
            (
                "/commerce/notification/v1/public_key/{kid}",
                "notification.public_key",
                "application",
                self._public_key,
                "GET",
            ),
            ("/sell/fulfillment/v1/order", "fulfillment.orders", "user", self._orders, "GET"),
            (f"{INVENTORY}/inventory_item", "inventory.items", "user", self._items, "GET"),
            (
                f"{INVENTORY}/bulk_get_inventory_item",
                "inventory.bulk_get",
                "user",
                self._bulk_get,
                "POST",
            ),
            (f"{INVENTORY}/offer", "inventory.offers", "user", self._offers, "GET"),
            (
                f"{INVENTORY}/bulk_update_price_quantity",
                "inventory.bulk_update",
                "user",
                self._bulk_update,
                "POST",
            ),
        ]
        return [
            Route(
                path,
                faulty(self.seller.faults, self.seller.log, op, self._guard(grant, handler)),
                methods=[method],
            )
            for path, op, grant, handler, method in table
        ]

    def _guard(self, grant: str | None, handler: Handler) -> Handler:
        """The throttle, then the bearer token's grant (None: the token endpoint itself)."""

        async def guarded(request: Request) -> Response:
            throttling = self.seller.throttling
            if throttling is not None:
                if throttling.calls is not None:
                    throttling.calls -= 1
                    if throttling.calls <= 0:
                        self.seller.throttling = None
                return ebay_error(429, 2001, "Too many requests.", "ACCESS")
            if grant is not None and self.seller.over_daily_limit():
                message = "The request limit has been reached for the resource."
                return ebay_error(429, 2001, message, "ACCESS")
            if grant is not None:
                token = request.headers.get("authorization", "").removeprefix("Bearer ")
                if self.seller.grant_of(token) != grant:
                    return ebay_error(401, 1001, "Invalid access token", "OAuth")
            return await handler(request)

        return guarded

    # OAuth and the Notification API -------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        if not self._client_authenticated(request.headers.get("authorization", "")):
            return JSONResponse({"error": "invalid_client", "error_description": "bad client"}, 401)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        grant_type = form.get("grant_type")
        if grant_type == "client_credentials":
            return JSONResponse(self.seller.issue("application"))
        if grant_type == "refresh_token":
            if form.get("refresh_token") != self.seller.refresh_token:
                description = "the provided authorization refresh token is invalid"
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": description}, 400
                )
            return JSONResponse(self.seller.issue("user"))
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    def _client_authenticated(self, header: str) -> bool:
        try:
            decoded = base64.b64decode(header.removeprefix("Basic "), validate=True).decode()
        except (binascii.Error, ValueError):
            return False
        return decoded == f"{self.seller.client_id}:{self.seller.client_secret}"

    async def _public_key(self, request: Request) -> Response:
        if request.path_params["kid"] != self.seller.signer.kid:
            return ebay_error(404, 195001, "The specified key id is invalid.", "API_NOTIFICATION")
        return JSONResponse(self.seller.signer.public_key_document())

    # Fulfillment ----------------------------------------------------------------------------

    async def _orders(self, request: Request) -> Response:
        window = _window(request.query_params.get("filter", ""))
        paging = _paging(request, default=50, most=200)
        if window is None or paging is None:
            return ebay_error(400, 30700, "Invalid filter or paging.", "API_FULFILLMENT")
        with self.seller.lock:
            found = [
                order_json(o)
                for o in sorted(self.seller.orders.values(), key=lambda o: o.created)
                if _within(o.modified, window)
            ]
        return JSONResponse(_page(request, found, "orders", *paging))

    # Inventory ------------------------------------------------------------------------------

    async def _items(self, request: Request) -> Response:
        paging = _paging(request, default=25, most=200)
        if paging is None:
            return ebay_error(400, 25709, "Invalid value for limit or offset.")
        with self.seller.lock:
            items = [item_json(i) for i in sorted(self.seller.items.values(), key=lambda i: i.sku)]
        return JSONResponse(_page(request, items, "inventoryItems", *paging))

    async def _bulk_get(self, request: Request) -> Response:
        requests = await _requests(request)
        if requests is None or len(requests) > BULK_LIMIT:
            return ebay_error(400, 25709, f"Provide 1 to {BULK_LIMIT} requests.")
        responses = []
        with self.seller.lock:
            for asked in requests:
                item = self.seller.items.get(str(asked.get("sku")))
                responses.append(_got(str(asked.get("sku")), item))
        status = 200 if all(r["statusCode"] == 200 for r in responses) else 207
        return JSONResponse({"responses": responses}, status)

    async def _offers(self, request: Request) -> Response:
        sku = request.query_params.get("sku", "")
        with self.seller.lock:
            item = self.seller.items.get(sku)
            if item is None:
                return ebay_error(404, 25713, "This Offer is not available.")
            offers = [offer_json(o) for o in item.offers]
        return JSONResponse({"total": len(offers), "size": len(offers), "offers": offers})

    async def _bulk_update(self, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return ebay_error(415, 25001, "Content-Type must be application/json.")
        requests = await _requests(request)
        if requests is None or not requests:
            return ebay_error(400, 25709, "The request has no requests.")
        if len(requests) > BULK_LIMIT:
            return ebay_error(400, 25709, f"At most {BULK_LIMIT} SKUs may be updated per call.")
        with self.seller.lock:
            responses = [r for asked in requests for r in self._update(asked)]
        status = 200 if all(r["statusCode"] == 200 for r in responses) else 207
        return JSONResponse({"responses": responses}, status)

    def _update(self, asked: dict[str, Any]) -> list[dict[str, Any]]:
        """One SKU's update: the item's quantity and each offer's, each listing revised once."""
        sku = str(asked.get("sku", ""))
        item = self.seller.items.get(sku)
        if item is None:
            return [_failed(sku, None, 404, 25702, f"SKU {sku} is not available.")]
        offers = {o.offer_id: o for o in item.offers}
        asked_offers = asked.get("offers") or []
        unknown = [o.get("offerId") for o in asked_offers if o.get("offerId") not in offers]
        if unknown:
            return [_failed(sku, str(unknown[0]), 400, 25713, "This Offer is not available.")]
        spent = [
            o for o in item.offers if self._revisions(o.listing_id) >= self.seller.revisions_per_day
        ]
        if spent:
            message = "REVISION_LIMIT: the listing was revised 250 times today"
            return [_failed(sku, o.offer_id, 400, 25020, message) for o in spent]
        if self.seller.faults.item_fails(sku):  # eBay's 25001, a system error: try again
            failed: list[str | None] = [*offers] or [None]
            return [_failed(sku, o, 500, 25001, "A system error has occurred.") for o in failed]
        _apply(item, asked, offers)
        for offer in item.offers:
            key = (offer.listing_id, self.seller.today())
            self.seller.revisions[key] = self.seller.revisions.get(key, 0) + 1
        done: list[str | None] = [o.offer_id for o in item.offers] or [None]
        return [{"sku": sku, "offerId": o, "statusCode": 200} for o in done]

    def _revisions(self, listing_id: str) -> int:
        return self.seller.revisions.get((listing_id, self.seller.today()), 0)


def _apply(item: Item, asked: dict[str, Any], offers: dict[str, Any]) -> None:
    availability = asked.get("shipToLocationAvailability")
    if isinstance(availability, dict) and "quantity" in availability:
        item.quantity = int(availability["quantity"])
    for offer in asked.get("offers") or []:
        if "availableQuantity" in offer:
            offers[offer["offerId"]].available_quantity = int(offer["availableQuantity"])


def _failed(
    sku: str, offer_id: str | None, status: int, error_id: int, message: str
) -> dict[str, Any]:
    error = {
        "errorId": error_id,
        "domain": "API_INVENTORY",
        "category": "REQUEST",
        "message": message,
    }
    return {"sku": sku, "offerId": offer_id, "statusCode": status, "errors": [error]}


def _got(sku: str, item: Item | None) -> dict[str, Any]:
    if item is None:
        error = {"errorId": 25702, "domain": "API_INVENTORY", "message": f"SKU {sku} not found"}
        return {"sku": sku, "statusCode": 404, "errors": [error]}
    return {"sku": sku, "statusCode": 200, "inventoryItem": item_json(item)}


def item_json(item: Item) -> dict[str, Any]:
    availability = {"shipToLocationAvailability": {"quantity": item.quantity}}
    return {"sku": item.sku, "locale": "en_US", "availability": availability}


def offer_json(offer: Any) -> dict[str, Any]:
    return {
        "offerId": offer.offer_id,
        "sku": offer.sku,
        "marketplaceId": "EBAY_US",
        "format": "FIXED_PRICE",
        "availableQuantity": offer.available_quantity,
        "status": "PUBLISHED",
        "listing": {"listingId": offer.listing_id, "listingStatus": "ACTIVE"},
    }


def order_json(order: Order) -> dict[str, Any]:
    fulfilled = {line.status for line in order.lines}
    status = "FULFILLED" if fulfilled == {"FULFILLED"} else "NOT_STARTED"
    return {
        "orderId": order.order_id,
        "creationDate": ebay_time(order.created),
        "lastModifiedDate": ebay_time(order.modified),
        "orderFulfillmentStatus": status,
        "orderPaymentStatus": order.payment_status,
        "cancelStatus": {"cancelState": order.cancel_state, "cancelRequests": []},
        "lineItems": [
            {
                "lineItemId": line.line_item_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "lineItemFulfillmentStatus": line.status,
            }
            for line in order.lines
        ],
    }


async def _requests(request: Request) -> list[dict[str, Any]] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests):
        return None
    return requests


def _window(text: str) -> tuple[datetime | None, datetime | None] | None:
    matched = _FILTER.match(text)
    if matched is None:
        return None
    try:
        return tuple(  # type: ignore[return-value]
            datetime.fromisoformat(part.replace("Z", "+00:00")) if part else None
            for part in matched.groups()
        )
    except ValueError:
        return None


def _within(moment: datetime, window: tuple[datetime | None, datetime | None]) -> bool:
    start, end = window
    return (start is None or moment >= start) and (end is None or moment <= end)


def _paging(request: Request, *, default: int, most: int) -> tuple[int, int] | None:
    try:
        limit = int(request.query_params.get("limit", default))
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        return None
    return (limit, offset) if 1 <= limit <= most and offset >= 0 else None


def _page(request: Request, found: list[Any], name: str, limit: int, offset: int) -> dict[str, Any]:
    page: dict[str, Any] = {
        "href": str(request.url),
        "total": len(found),
        "limit": limit,
        "offset": offset,
        name: found[offset : offset + limit],
    }
    if offset + limit < len(found):
        query = {**request.query_params, "limit": limit, "offset": offset + limit}
        page["next"] = f"{request.url.path}?{urlencode(query)}"
    return page
