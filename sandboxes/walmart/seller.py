"""A Walmart Marketplace seller to test against (CHANNELS.md §5, §7): the Inventory, Feeds and
Orders API subset invsync calls, tokens, throttling, and order events sent to a webhook.

What it imitates: `POST /v3/token` (Basic client credentials, `grant_type=client_credentials`)
issuing tokens that live `token_lifetime` seconds (Walmart: 900); every other call needs
`WM_SEC.ACCESS_TOKEN` (401 when missing, unknown or expired), `WM_SVC.NAME` and
`WM_QOS.CORRELATION_ID` (400 without either); a token bucket per API (`RATES`), a 429 beyond it
with `X-Current-Token-Count` and `X-Next-Replenishment-Time` (epoch milliseconds), as every answer
carries them; `PUT|GET /v3/inventory?sku=[&shipNode=]` (404 for a SKU the seller does not list),
`GET /v3/inventories` in pages of at most 50 by `nextCursor`; the feeds (`feeds.py`); the orders
and their `ORDER_UPDATES` events (`orders.py`), signed with the subscription's HMAC secret by
`signer.py` and retried twice (Walmart's supplier pages: three attempts). Faults (outage, errors,
slowness) as every sandbox (`server.py`). Simplified: per-endpoint rates are the sandbox's own
(Walmart's are unconfirmed), and a sale lowers the quantity set (`inputQty`), never reserving.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.server import CallLog, Faults, Handler, SandboxServer, faulty
from sandboxes.timeline import Timeline
from sandboxes.walmart.control import ControlApi
from sandboxes.walmart.feeds import FeedDesk
from sandboxes.walmart.orders import ORDERS, OrdersDesk, walmart_error
from sandboxes.walmart.signer import WalmartSigner
from sandboxes.webhooks import WebhookSender

DEFAULT_NODE = "DEFAULT"
MOST_INVENTORIES = 50


@dataclass
class Bucket:
    """One API's tokens: `rate` a second, at most `burst` held."""

    rate: float
    burst: int
    tokens: float = -1.0
    at: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        held = self.burst if self.tokens < 0 else self.tokens
        self.tokens = min(float(self.burst), held + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def refills_in(self) -> float:
        """Seconds until the bucket holds a token again."""
        return max(1 - self.tokens, 0) / self.rate


# (calls a second, burst) by API: Walmart throttles each API by a token bucket; its numbers
# per endpoint are unconfirmed, so these are the sandbox's own, but for the documented 10 feeds
# an hour.
RATES: dict[str, tuple[float, int]] = {
    "token": (5.0, 10),
    "inventory.put": (10.0, 20),
    "inventory.get": (10.0, 20),
    "inventories.get": (2.0, 5),
    "orders.get": (2.0, 10),
    "orders.acknowledge": (5.0, 10),
    "feeds.post": (10 / 3600, 10),
    "feeds.get": (2.0, 10),
}


class WalmartSandbox:
    """One seller; serve `.app` with `server()`.

    Parameters:
        client_id, client_secret: the API client the sandbox accepts.
        webhook_secret: the subscription's HMAC secret its events are signed with.
        webhook_url: where its events go (None: nowhere yet).
        token_lifetime: seconds a token lives (Walmart: 900).
        feed_delay: seconds a feed takes to process.
        rates: (calls a second, burst) by API, replacing the defaults named.
        retry_delays: seconds before each retry of an event not answered 2xx.
    """

    def __init__(
        self,
        *,
        client_id: str = "walmart-sandbox-client",
        client_secret: str = "walmart-sandbox-secret",
        webhook_secret: str = "wm_secret",
        webhook_url: str | None = None,
        token_lifetime: float = 900.0,
        feed_delay: float = 0.5,
        rates: Mapping[str, tuple[float, int]] | None = None,
        retry_delays: tuple[float, ...] = (1.0, 5.0),
        faults: Faults | None = None,
        log: CallLog | None = None,
    ) -> None:
        self.credentials = (client_id, client_secret)
        self.webhook_secret = webhook_secret
        self.token_lifetime = token_lifetime
        self.faults, self.log = faults or Faults(), log or CallLog()
        self.tokens_issued = 0
        self.correlation_ids: list[str] = []
        self._rates = {**RATES, **(rates or {})}
        self._buckets: dict[str, Bucket] = {}
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._stock: dict[str, dict[str, int]] = {}  # sku -> ship node -> quantity
        self._lock = threading.RLock()
        self._timeline = Timeline("walmart-sandbox")
        self.webhooks = WebhookSender(
            webhook_url,
            WalmartSigner(webhook_secret, lambda: self.webhooks.url),
            retry_delays=retry_delays,
            name="walmart-sandbox-webhooks",
        )
        self.orders = OrdersDesk(self)
        self.feeds = FeedDesk(self, feed_delay, self._timeline)
        self.app = Starlette(routes=self._api_routes() + ControlApi(self).routes())

    def server(self, host: str = "127.0.0.1", port: int | None = None) -> SandboxServer:
        return SandboxServer(self.app, host, port)

    def close(self) -> None:
        self._timeline.close()
        self.webhooks.close()

    def channel_settings(self, url: str) -> dict[str, object]:
        """The channel's table in a configuration file that pushes to this sandbox at `url`."""
        client_id, client_secret = self.credentials
        return {
            "kind": "walmart",
            "api_base_url": url,
            "client_id": client_id,
            "client_secret": client_secret,
            "webhook_secrets": [self.webhook_secret],
        }

    # Stock ---------------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def add_item(self, sku: str, quantity: int = 0, node: str = DEFAULT_NODE) -> None:
        with self._lock:
            self._stock.setdefault(sku, {})[node or DEFAULT_NODE] = quantity

    def stock(self, sku: str, node: str = DEFAULT_NODE) -> int | None:
        """The quantity shown at `node`; None when the seller lists no such SKU there."""
        with self._lock:
            return self._stock.get(sku, {}).get(node or DEFAULT_NODE)

    def set_stock(
        self, sku: str, quantity: int, node: str = "", *, only_listed: bool = False
    ) -> bool:
        """Set a quantity (a hand edit in Seller Center, or a call); False, changing nothing,
        for a SKU not listed when `only_listed`."""
        with self._lock:
            if only_listed and sku not in self._stock:
                return False
            self._stock.setdefault(sku, {})[node or DEFAULT_NODE] = quantity
            return True

    def buy(self, sku: str, quantity: int = 1, *, notify: bool = True) -> str:
        """A shopper's order (see `OrdersDesk.buy`); its purchase order id."""
        return self.orders.buy(sku, quantity, notify=notify)

    def listed(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {sku: dict(nodes) for sku, nodes in self._stock.items()}

    def set_rate(self, api: str, rate: float, burst: int) -> None:
        with self._lock:
            self._rates[api] = (rate, burst)
            self._buckets.pop(api, None)

    def expire_tokens(self) -> None:
        """End every token now, as if 15 minutes had passed."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    # Routes --------------------------------------------------------------------------------

    def _api_routes(self) -> list[Route]:
        api: list[tuple[str, str, str, Handler]] = [
            ("/v3/token", "token", "POST", self._token),
            ("/v3/inventory", "inventory.put", "PUT", self._put_inventory),
            ("/v3/inventory", "inventory.get", "GET", self._get_inventory),
            ("/v3/inventories", "inventories.get", "GET", self._get_inventories),
            (ORDERS, "orders.get", "GET", self.orders.get_orders),
            (ORDERS + "/released", "orders.get", "GET", self.orders.get_released),
            (
                ORDERS + "/{purchase_order_id}/acknowledge",
                "orders.acknowledge",
                "POST",
                self.orders.acknowledge,
            ),
            ("/v3/feeds", "feeds.post", "POST", self.feeds.submit),
            ("/v3/feeds/{feed_id}", "feeds.get", "GET", self.feeds.status),
        ]
        return [
            Route(
                path,
                faulty(self.faults, self.log, name, self._guarded(name, handler)),
                methods=[method],
            )
            for path, name, method, handler in api
        ]

    def _guarded(self, api: str, handler: Handler) -> Handler:
        """`handler` behind the WM_* headers, the token (but for the token call) and the API's
        bucket, its answer carrying the bucket's headers."""

        async def guarded(request: Request) -> Response:
            refused = self._refused(api, request)
            if refused is not None:
                return refused
            rate, burst = self._rates[api]
            with self._lock:
                bucket = self._buckets.setdefault(api, Bucket(rate, burst))
                admitted = bucket.take()
                left, refill = int(bucket.tokens), bucket.refills_in()
            if admitted:
                response = await handler(request)
            else:
                response = walmart_error(429, "REQUEST_THRESHOLD_VIOLATED", "too many requests")
            response.headers["X-Current-Token-Count"] = str(left)
            response.headers["X-Next-Replenishment-Time"] = str(int((time.time() + refill) * 1000))
            return response

        return guarded

    def _refused(self, api: str, request: Request) -> Response | None:
        headers = request.headers
        correlation = headers.get("wm_qos.correlation_id", "")
        if not headers.get("wm_svc.name") or not correlation:
            return walmart_error(
                400, "MISSING_HEADER", "WM_SVC.NAME and WM_QOS.CORRELATION_ID are required"
            )
        with self._lock:
            self.correlation_ids.append(correlation)
        if api == "token":
            return None
        with self._lock:
            expiry = self._tokens.get(headers.get("wm_sec.access_token", ""))
        if expiry is None or time.monotonic() >= expiry:
            return walmart_error(401, "UNAUTHORIZED.GMP_GATEWAY_API", "invalid or expired token")
        return None

    async def _token(self, request: Request) -> Response:
        client_id, client_secret = self.credentials
        expected = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return walmart_error(401, "UNAUTHORIZED.GMP_GATEWAY_API", "invalid client credentials")
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return walmart_error(400, "INVALID_REQUEST", "grant_type must be client_credentials")
        token = "eyJ" + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
            self.tokens_issued += 1
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": int(self.token_lifetime)}
        )

    async def _put_inventory(self, request: Request) -> Response:
        sku, node = request.query_params.get("sku", ""), request.query_params.get("shipNode", "")
        body = await request.json()
        try:
            quantity = body["quantity"]
            amount = quantity["amount"]
            if (
                body.get("sku", sku) != sku
                or quantity["unit"] != "EACH"
                or not isinstance(amount, int)
                or amount < 0
            ):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            return walmart_error(
                400, "INVALID_REQUEST_CONTENT", "sku and quantity {unit: EACH, amount}"
            )
        if not self.set_stock(sku, amount, node, only_listed=True):
            return walmart_error(
                404, "CONTENT_NOT_FOUND.GMP_INVENTORY_API", f"Item not found for SKU {sku}"
            )
        return JSONResponse({"sku": sku, "quantity": {"unit": "EACH", "amount": amount}})

    async def _get_inventory(self, request: Request) -> Response:
        sku, node = request.query_params.get("sku", ""), request.query_params.get("shipNode", "")
        shown = self.stock(sku, node)
        if shown is None:
            return walmart_error(
                404, "CONTENT_NOT_FOUND.GMP_INVENTORY_API", f"Item not found for SKU {sku}"
            )
        return JSONResponse({"sku": sku, "quantity": {"unit": "EACH", "amount": shown}})

    async def _get_inventories(self, request: Request) -> Response:
        query = request.query_params
        limit, cursor = int(query.get("limit", "10")), query.get("nextCursor", "0") or "0"
        if not 1 <= limit <= MOST_INVENTORIES:
            return walmart_error(400, "INVALID_REQUEST_PARAM", "limit is 1 to 50")
        if not cursor.isdigit():  # the sandbox's cursors are offsets: this one it never gave
            return walmart_error(400, "INVALID_REQUEST_PARAM", "nextCursor is invalid")
        offset = int(cursor)
        listed = sorted(self.listed().items())
        page = listed[offset : offset + limit]
        meta: dict[str, Any] = {"totalCount": len(listed)}
        if offset + limit < len(listed):
            meta["nextCursor"] = str(offset + limit)
        inventories = [
            {"sku": sku, "nodes": [_node(node, quantity) for node, quantity in nodes.items()]}
            for sku, nodes in page
        ]
        return JSONResponse({"meta": meta, "elements": {"inventories": inventories}})


def _node(node: str, quantity: int) -> dict[str, Any]:
    each = {"unit": "EACH", "amount": quantity}
    return {
        "shipNode": node,
        "inputQty": each,
        "availToSellQty": each,
        "reservedQty": {"unit": "EACH", "amount": 0},
    }
