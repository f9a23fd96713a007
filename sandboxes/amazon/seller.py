"""An Amazon seller account to test against: SP-API's Listings Items and Feeds subset, Login
with Amazon, and ORDER_CHANGE notifications sent through a signed SNS topic.

What it imitates (CHANNELS.md §3.1 to 3.3, §7): LWA access tokens from a refresh token (expiring;
an expired or unknown token answers 403 with SP-API's error shape); `patchListingsItem`
answering ACCEPTED and applying the patches `apply_delay` seconds later, for a SKU the seller
does not list too (as Amazon does); the listing's `fulfillment_availability` attribute as Amazon
keeps it, so `merge` keeps the seller's other fields (`lead_time_to_ship_max_days`,
`restock_date`) and `replace` drops them; `getListingsItem` (404 for no listing) with
`summaries`, `attributes` and `fulfillmentAvailability`, and `searchListingsItems` by SKU
identifiers or over every listing (filtered by creation and last change, sorted, paged by
`pageToken` through the first 1,000 found, as the model notes); the JSON_LISTINGS_FEED flow (a feed
document with an upload URL the sandbox serves itself and that expires after 5 minutes, the
feed processed `feed_delay` seconds later, a GZIP processing report with an issue per refused
message); a token bucket per operation with the models' default usage plans, 429 without
`x-amzn-RateLimit-Limit` (the models declare it on other answers only). Given Amazon's models
(`models`), it refuses what they refuse with 400 and notes its own answers they do not allow.
Shoppers (`buy`, `cancel`, `ship`) move the merchant-fulfilled stock and publish ORDER_CHANGE
notifications through the SNS topic (see `sns.py`), or lose them (`notify=False`), and the Orders
API lists them (`getOrders`, `getOrderItems`); a hand edit (`set_stock`, or the control route)
changes a quantity as the seller does in Seller Central. The Listings Items routes are in
`listings.py`, the Feeds routes in `feeds.py`, the usage plans in `quotas.py`, the orders, their
notifications and the Orders API in `orders.py`.

Simplified: one seller, one marketplace, listings with only a fulfillment availability and no
product data, so `productType` is required but not checked; patches of other attributes are
accepted and ignored; a feed message for a SKU the seller does not list is refused with issue
code 13013 (legacy feeds' "SKU does not exist"; Amazon's exact answer is unconfirmed); feeds go
IN_QUEUE, IN_PROGRESS, then DONE or FATAL, never CANCELLED; buckets are per operation, not also
per application; no SQS queue or EventBridge; the Orders model (ordersV0) is held to only where
it is kept beside the others (`models.py`).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.amazon.feeds import FeedDesk, sp_error
from sandboxes.amazon.listings import Listing, ListingsDesk, amazon_time
from sandboxes.amazon.orders import ORDERS, Order, OrdersDesk, OutOfStock, order_change
from sandboxes.amazon.quotas import RATES, Bucket, Rate
from sandboxes.amazon.sns import ACTION_PATH, CERTIFICATE_PATH, SnsTopic
from sandboxes.server import CallLog, Faults, Handler, SandboxServer, faulty
from sandboxes.timeline import Timeline

if TYPE_CHECKING:
    from sandboxes.amazon.models import SpApiModels

LISTINGS = "/listings/2021-08-01/items"
FEEDS = "/feeds/2021-06-30"
TOKEN_PATH = "/auth/o2/token"
_DENIED = "Access to requested resource is denied."


class AmazonSandbox:
    """One seller in one marketplace; serve `.app` with `server()`.

    Parameters:
        seller_id, marketplace_id: the selling partner and the marketplace it sells in.
        client_id, client_secret, refresh_token: the LWA credentials the sandbox accepts.
        token_lifetime: seconds an access token lives (LWA: 3,600).
        apply_delay: seconds between a patch's ACCEPTED and its quantity showing.
        feed_delay: seconds a feed takes to process.
        rates: token buckets by operation, replacing the defaults named.
        topic: the SNS topic ORDER_CHANGE notifications go to (a topic with no subscription
            if None).
        models: Amazon's SP-API models (see `models.py`): when given, a request they do
            not allow is answered 400, and every answer of the sandbox's own they do not allow
            (a processing report too) is noted in `model_violations`.
        rate_limit_on_429: whether a 429 carries `x-amzn-RateLimit-Limit` (SP-API's need not:
            the models declare it on other answers only).
    """

    def __init__(
        self,
        *,
        seller_id: str = "A3TH9S8BH6GOGM",
        marketplace_id: str = "ATVPDKIKX0DER",
        client_id: str = "amzn1.application-oa2-client.sandbox",
        client_secret: str = "sandbox-client-secret",
        refresh_token: str = "Atzr|sandbox-refresh-token",
        token_lifetime: float = 3600.0,
        apply_delay: float = 0.2,
        feed_delay: float = 0.5,
        rates: Mapping[str, Rate] | None = None,
        topic: SnsTopic | None = None,
        faults: Faults | None = None,
        log: CallLog | None = None,
        models: SpApiModels | None = None,
        rate_limit_on_429: bool = False,
    ) -> None:
        self.seller_id, self.marketplace_id = seller_id, marketplace_id
        self.credentials = (client_id, client_secret, refresh_token)
        self.token_lifetime, self.apply_delay = token_lifetime, apply_delay
        self.topic = topic or SnsTopic("arn:aws:sns:us-east-1:123456789012:sp-api-sandbox")
        self.faults, self.log = faults or Faults(), log or CallLog()
        self.tokens_issued = 0
        self.models, self.rate_limit_on_429 = models, rate_limit_on_429
        self.model_violations: list[str] = []
        self._rates = {**RATES, **(rates or {})}
        self._buckets: dict[str, Bucket] = {}
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._listings: dict[str, Listing] = {}
        self._lock = threading.RLock()
        self._timeline = Timeline("amazon-sandbox")
        self.feeds = FeedDesk(self, feed_delay, self._timeline)
        self.listings = ListingsDesk(self, self._timeline)
        self.orders = OrdersDesk(self, self._notify)
        self.app = Starlette(routes=self._api_routes() + self._control_routes())

    def server(self, host: str = "127.0.0.1", port: int | None = None) -> SandboxServer:
        """A server for `.app`; the SNS topic names its URL as where its certificate is."""
        server = SandboxServer(self.app, host, port)
        self.topic.public_url = self.feeds.public_url = server.url
        return server

    def close(self) -> None:
        self._timeline.close()
        self.topic.close()

    def channel_settings(self, url: str) -> dict[str, object]:
        """The channel's table in a configuration file that pushes to this sandbox at `url`."""
        client_id, client_secret, refresh_token = self.credentials
        return {
            "kind": "amazon",
            "api_base_url": url,
            "seller_id": self.seller_id,
            "marketplace_id": self.marketplace_id,
            "lwa_client_id": client_id,
            "lwa_client_secret": client_secret,
            "lwa_refresh_token": refresh_token,
            "lwa_token_url": f"{url}/auth/o2/token",
        }

    # Listings and stock -------------------------------------------------------------------

    def add_listing(
        self, sku: str, quantity: int = 0, created: datetime | None = None, **fulfillment: object
    ) -> None:
        """List `sku` with `quantity` merchant-fulfilled units, created now or at `created`, and
        other fields of its fulfillment availability (`lead_time_to_ship_max_days=3`,
        `restock_date=...`)."""
        entry = {"fulfillment_channel_code": "DEFAULT", "quantity": quantity, **fulfillment}
        listing = Listing([entry])
        if created is not None:
            listing.created = listing.updated = amazon_time(created)
        with self._lock:
            self._listings[sku] = listing

    def stock(self, sku: str) -> int | None:
        """The merchant-fulfilled quantity shown now; None when the seller lists no such SKU."""
        with self._lock:
            listing = self._listings.get(sku)
            return None if listing is None else listing.quantity()

    def listing(self, sku: str) -> Listing | None:
        """A copy of the listing as it is now; None when the seller lists no such SKU."""
        with self._lock:
            listing = self._listings.get(sku)
            if listing is None:
                return None
            entries = [dict(entry) for entry in listing.availability]
            return Listing(entries, listing.created, listing.updated)

    def listed(self) -> list[tuple[str, Listing]]:
        """Every SKU the seller lists and its listing (not to be changed: `set_stock` does)."""
        with self._lock:
            return list(self._listings.items())

    def fulfillment_availability(self, sku: str) -> list[dict[str, Any]] | None:
        """The listing's `fulfillment_availability` attribute; None when it is not listed."""
        with self._lock:
            listing = self._listings.get(sku)
            return None if listing is None else [dict(e) for e in listing.availability]

    def set_stock(self, sku: str, quantity: int) -> bool:
        """Set a listing's quantity, keeping the rest; False when the seller lists no such SKU."""
        merge = {"op": "merge", "path": "/attributes/fulfillment_availability"}
        value = [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]
        return self.apply_patches(sku, [{**merge, "value": value}])

    def apply_patches(self, sku: str, patches: list[dict[str, Any]]) -> bool:
        """Apply JSON Patch operations to a listing; False when the seller lists no such SKU
        (Amazon may make an offer-only stub of it; the sandbox makes none)."""
        with self._lock:
            listing = self._listings.get(sku)
            if listing is None:
                return False
            listing.patch(patches)
            return True

    def set_rate(self, operation: str, rate: float, burst: int) -> None:
        """Replace an operation's usage plan; its bucket starts full."""
        with self._lock:
            self._rates[operation] = Rate(rate, burst)
            self._buckets.pop(operation, None)

    def expire_tokens(self) -> None:
        """End every access token now, as if an hour had passed."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    # Shoppers (see `orders.py`) ------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Held while the seller's listings or orders change."""
        return self._lock

    def buy(self, sku: str, quantity: int = 1, *, duplicates: int = 0, notify: bool = True) -> str:
        return self.orders.buy(sku, quantity, duplicates=duplicates, notify=notify)

    def cancel(self, order_id: str, *, notify: bool = True) -> None:
        self.orders.cancel(order_id, notify=notify)

    def ship(self, order_id: str, *, notify: bool = True) -> None:
        self.orders.ship(order_id, notify=notify)

    def _notify(self, order: Order, duplicates: int = 0) -> None:
        self.topic.publish(json.dumps(order_change(order, self)), duplicates=duplicates)

    # Routes -------------------------------------------------------------------------------

    def _api_routes(self) -> list[Route]:
        search = LISTINGS + "/{seller_id}"
        item = search + "/{sku:path}"
        api = [
            (TOKEN_PATH, "lwa.token", ["POST"], self._token, False),
            (item, "patchListingsItem", ["PATCH"], self.listings.patch_item, True),
            (item, "getListingsItem", ["GET"], self.listings.get_item, True),
            (
                LISTINGS + "/{seller_id}",
                "searchListingsItems",
                ["GET"],
                self.listings.search_items,
                True,
            ),
            (
                FEEDS + "/documents",
                "createFeedDocument",
                ["POST"],
                self.feeds.create_document,
                True,
            ),
            (FEEDS + "/documents/{id}", "getFeedDocument", ["GET"], self.feeds.get_document, True),
            (FEEDS + "/feeds", "createFeed", ["POST"], self.feeds.create_feed, True),
            (FEEDS + "/feeds/{id}", "getFeed", ["GET"], self.feeds.get_feed, True),
            (ORDERS, "getOrders", ["GET"], self.orders.get_orders, True),
            (
                ORDERS + "/{order_id}/orderItems",
                "getOrderItems",
                ["GET"],
                self.orders.get_order_items,
                True,
            ),
            ("/_s3/{id}", "document.upload", ["PUT"], self.feeds.upload, False),
            ("/_s3/{id}", "document.download", ["GET"], self.feeds.download, False),
        ]
        return [
            Route(
                path,
                faulty(
                    self.faults, self.log, name, self._guarded(name, handler) if sp else handler
                ),
                methods=methods,
            )
            for path, name, methods, handler, sp in api
        ]

    def _control_routes(self) -> list[Route]:
        return [
            Route(CERTIFICATE_PATH, self._certificate, methods=["GET"]),
            Route(ACTION_PATH, self._sns_action, methods=["GET"]),
            Route("/_sandbox/stock/{sku:path}", self._control_stock, methods=["GET", "PUT"]),
            Route("/_sandbox/buy", self._control_buy, methods=["POST"]),
            Route("/_sandbox/orders/{order_id}/cancel", self._control_cancel, methods=["POST"]),
            Route("/_sandbox/hand-edit/{sku:path}", self._control_hand_edit, methods=["POST"]),
            Route("/_sandbox/webhooks/lose", self._control_lose, methods=["POST"]),
            Route("/_sandbox/faults", self._control_faults, methods=["GET", "PUT"]),
            Route("/_sandbox/calls", self._control_calls, methods=["GET"]),
        ]

    def _guarded(self, operation: str, handler: Handler) -> Handler:
        """`handler` behind SP-API's access token check and the operation's token bucket."""

        async def guarded(request: Request) -> Response:
            refused = self._refused_token(request.headers.get("x-amz-access-token", ""))
            seller = request.path_params.get("seller_id", self.seller_id)
            if refused is None and seller != self.seller_id:
                refused = "The access token does not grant access to this selling partner."
            if refused is not None:
                return sp_error(403, "Unauthorized", _DENIED, refused)
            rate = self._rates[operation]
            with self._lock:
                bucket = self._buckets.setdefault(operation, Bucket(rate, rate.burst))
                admitted = bucket.take()
            response: Response
            if not admitted:
                message = "You exceeded your quota for the requested resource."
                response = sp_error(429, "QuotaExceeded", message)
            elif problems := await self._request_problems(operation, request):
                response = sp_error(400, "InvalidInput", "Invalid request.", "; ".join(problems))
            else:
                response = await handler(request)
            if admitted or self.rate_limit_on_429:
                response.headers["x-amzn-RateLimit-Limit"] = str(rate.rate)
            response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
            self._check_answer(operation, response)
            return response

        return guarded

    async def _request_problems(self, operation: str, request: Request) -> list[str]:
        """What the models do not allow in the request (nothing without its model)."""
        if self.models is None or not self.models.covers(operation):
            return []
        query = request.query_params.multi_items()
        return self.models.request_problems(operation, query, await request.body())

    def _check_answer(self, operation: str, response: Response) -> None:
        if self.models is None or not self.models.covers(operation):
            return
        body = json.loads(bytes(response.body)) if response.body else None
        problems = self.models.response_problems(
            operation, response.status_code, body, dict(response.headers)
        )
        self.model_violations += problems

    def check_report(self, report: dict[str, Any]) -> None:
        """Note where a processing report breaks the report schema (with models)."""
        if self.models is not None:
            self.model_violations += self.models.report_problems(report)

    def _refused_token(self, token: str) -> str | None:
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            return "The access token you provided is revoked, malformed or invalid."
        if time.monotonic() >= expiry:
            return "The access token you provided has expired."
        return None

    async def _token(self, request: Request) -> Response:
        # LWA takes an x-www-form-urlencoded body.
        form = {
            name: values[0] for name, values in parse_qs((await request.body()).decode()).items()
        }
        client_id, client_secret, refresh_token = self.credentials
        if form.get("client_id") != client_id or form.get("client_secret") != client_secret:
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        if form.get("grant_type") != "refresh_token":
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant type")
        if form.get("refresh_token") != refresh_token:
            message = "The request has an invalid grant parameter : refresh_token"
            return _oauth_error(400, "invalid_grant", message)
        token = "Atza|" + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
            self.tokens_issued += 1
        return JSONResponse(
            {
                "access_token": token,
                "refresh_token": refresh_token,
                "token_type": "bearer",
                "expires_in": int(self.token_lifetime) or 1,
            }
        )

    # SNS and control ----------------------------------------------------------------------

    async def _certificate(self, request: Request) -> Response:
        return Response(self.topic.certificate_pem, media_type="application/x-x509-ca-cert")

    async def _sns_action(self, request: Request) -> Response:
        action = request.query_params.get("Action")
        if action == "ConfirmSubscription" and self.topic.confirm(
            request.query_params.get("Token", "")
        ):
            return Response("<ConfirmSubscriptionResponse/>", media_type="text/xml")
        if action == "Unsubscribe":
            self.topic.endpoint = None
            return Response("<UnsubscribeResponse/>", media_type="text/xml")
        return Response("<ErrorResponse/>", status_code=400, media_type="text/xml")

    async def _control_stock(self, request: Request) -> Response:
        sku = request.path_params["sku"]
        if request.method == "PUT":
            self.add_listing(sku, int((await request.json())["quantity"]))
        return JSONResponse({"sku": sku, "quantity": self.stock(sku)})

    async def _control_buy(self, request: Request) -> Response:
        body = await request.json()
        try:
            order_id = self.buy(
                str(body["sku"]), int(body.get("quantity", 1)), notify=body.get("notify", True)
            )
        except OutOfStock as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        return JSONResponse({"AmazonOrderId": order_id}, status_code=201)

    async def _control_cancel(self, request: Request) -> Response:
        """`{"notify": false}` cancels without a notification (lost on the way)."""
        body = await request.json() if await request.body() else {}
        try:
            self.cancel(request.path_params["order_id"], notify=body.get("notify", True))
        except KeyError:
            return JSONResponse({"error": "no such order"}, status_code=404)
        return JSONResponse({"AmazonOrderId": request.path_params["order_id"]})

    async def _control_lose(self, request: Request) -> Response:
        """Body `{"count": 1}`: the topic's next messages are lost on the way."""
        self.topic.deliveries.lose(int((await request.json()).get("count", 1)))
        return Response(status_code=204)

    async def _control_hand_edit(self, request: Request) -> Response:
        """The seller sets a listing's quantity in Seller Central: no notification, no order."""
        sku = request.path_params["sku"]
        if not self.set_stock(sku, int((await request.json())["quantity"])):
            return JSONResponse({"error": f"no listing with SKU {sku!r}"}, status_code=404)
        return JSONResponse({"sku": sku, "quantity": self.stock(sku)})

    async def _control_faults(self, request: Request) -> Response:
        if request.method == "PUT":
            for name, value in (await request.json()).items():
                setattr(self.faults, name, type(getattr(self.faults, name))(value))
        faults = self.faults
        return JSONResponse(
            {"outage": faults.outage, "error_rate": faults.error_rate, "delay": faults.delay}
        )

    async def _control_calls(self, request: Request) -> Response:
        counts: dict[str, int] = {}
        for _, operation, _status in list(self.log.calls):
            counts[operation] = counts.get(operation, 0) + 1
        return JSONResponse(counts)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error_description": description, "error": error}, status_code=status)
