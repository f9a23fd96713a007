"""A Shopify store on this machine: the GraphQL Admin subset invsync uses, and a webhook sender.

The API (`POST /admin/api/<version>/graphql.json`, schema in `schema.graphql`) runs on
graphql-core and answers as a live 2026-04 store does (CHANNELS.md §1.2-1.4, and the answers it
gave in `../shared/specs/shopify/live-2026-04-inventory.json`): `X-Shopify-Access-Token` or 401;
`inventorySetQuantities` all or nothing, `changeFromQuantity` required on every quantity (omitted:
a top-level INVALID_FIELD_ARGUMENTS error; null skips the check; a mismatch is
`CHANGE_FROM_QUANTITY_STALE`), `@idempotent(key:)` required (a top-level BAD_REQUEST error
without it), input fields Shopify does not define (the removed `ignoreCompareQuantity`) refused
as INVALID_VARIABLE, userErrors naming quantities by string indices; calculated query costs paid
from a leaky bucket and refunded down to the actual cost, `THROTTLED` with `extensions.cost`
when the bucket cannot pay.

Idempotency as Shopify documents it: the same key and parameters answer the first result again;
other parameters `IDEMPOTENCY_KEY_PARAMETER_MISMATCH`; a key whose first request is still running
`IDEMPOTENCY_CONCURRENT_REQUEST`; a key whose first request failed
`IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED`. `mutation_faults` makes the next mutations go wrong the
ways that lead there: "lost" (applied, but the answer is a 503), "slow" (still running for
`slow_seconds` while the caller gets a 503; applied after) and "fail" (a 500; nothing applied).

Shoppers (`buy`), cancellations and API writes change the stock; every change sends
`inventory_levels/update`, a sale also `orders/create`, a cancellation `orders/cancelled`, signed
and retried as Shopify does (§1.1, §7); the orders are listed by the `orders` connection.

The shop's state and its routes are here; Shopify's rules are beside it: the query cost and its
bucket in `cost.py`, the schema and its resolvers in `schema.py`, the mutation's refusals and
idempotency answers in `quantities.py`, the orders in `orders.py`, the webhooks in `webhooks.py`,
the control routes (`/_sandbox/...`) in `control.py`.

Simplified: one location; one quantity, `available` (`on_hand` shows the same, nothing is
committed); search understands `sku:` and `id:` terms joined by OR; no cursors.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import threading
from collections import Counter
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from itertools import count
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLString,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.server import CallLog, Faults, faulty
from sandboxes.shopify import cost, quantities, webhooks
from sandboxes.shopify.control import ShopControl
from sandboxes.shopify.orders import Order
from sandboxes.shopify.schema import invalid_variables, resolved_schema
from sandboxes.shopify.stock import Change, Item, OutOfStock, gid, gid_number, now
from sandboxes.shopify.webhooks import DOCUMENTED_RETRY_DELAYS
from sandboxes.webhooks import DELIVERIES_AT_ONCE, Message

API_VERSION = "2026-04"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
DOCUMENTS_KEPT = 1000  # the documents (and variables) answered, for conformance tests

Json = dict[str, Any]

_TERM = re.compile(r"""(sku|id):(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+))""")


class ShopifySandbox:
    """One shop: its stock, its Admin API as a Starlette app (`app`), and its webhook sender.

    Parameters:
        access_token: the token `X-Shopify-Access-Token` must carry.
        webhook_secret: the app's client secret that signs webhooks.
        webhook_url: where webhooks go (invsync's `/webhooks/<channel_id>`); None sends none.
        retry_delays: seconds before each of the 8 retries of a failed delivery (compress them
            in tests).
        restore_rate, maximum_available: the cost bucket (Standard plan by default).
        webhook_concurrency: deliveries posted at once (1: in the order they were sent).

    Whether Shopify answers THROTTLED with HTTP 200 or 429 is not settled (§1.3): 200 by
    default, `throttle_status = 429` answers 429 with a Retry-After as well.
    """

    def __init__(
        self,
        access_token: str = "shpat_sandbox",
        webhook_secret: str = "shpss_test_secret",
        *,
        shop_domain: str = "invsync-sandbox.myshopify.com",
        api_version: str = API_VERSION,
        location_id: int = 71_234_567,
        webhook_url: str | None = None,
        retry_delays: tuple[float, ...] = DOCUMENTED_RETRY_DELAYS,
        restore_rate: float = cost.RESTORE_RATE,
        maximum_available: float = cost.MAXIMUM_AVAILABLE,
        webhook_concurrency: int = DELIVERIES_AT_ONCE,
    ) -> None:
        self.access_token = access_token
        self.api_version = api_version
        self.location_id = location_id
        self.faults, self.calls = Faults(), CallLog()
        self.fields: Counter[str] = Counter()  # root fields answered, e.g. "inventoryItems"
        self.bucket = cost.Bucket(maximum_available, restore_rate, maximum_available)
        self.throttle_status = 200
        self.shop_domain = shop_domain
        self.webhooks = webhooks.sender(
            webhook_url, webhook_secret, retry_delays, concurrency=webhook_concurrency
        )
        self._items: dict[str, Item] = {}
        self._ids = count(45_000_000_001)
        # key → [parameters' fingerprint, "running" | "failed" | "done", first result]
        self._idempotent: dict[str, list[Any]] = {}
        self.mutation_faults: list[str] = []  # "lost", "slow", "fail": the next mutations'
        self.slow_seconds = 0.5
        self.documents: list[tuple[str, Json]] = []  # (query, variables) answered, newest last
        self.changes: list[Change] = []  # every change of stock, oldest first
        self.orders: dict[int, Order] = {}  # listed by the `orders` connection (`orders.py`)
        self._status: int | None = None  # the HTTP status a fault gives the current answer
        self._lock = threading.RLock()
        self.schema = resolved_schema(self)
        self.app = self._build_app()

    # Control surface ---------------------------------------------------------------------------

    def set_stock(self, sku: str, available: int) -> int:
        """Make `sku` show `available` (as a merchant would in the admin, creating the product
        if needed); its inventory item id."""
        with self._lock:
            item = self._items.get(sku)
            if item is None:
                item = Item(next(self._ids), next(self._ids), next(self._ids), sku, available)
                self._items[sku] = item
            else:
                self._change(item, available, cause="merchant")
            return item.id

    def stock(self, sku: str) -> int | None:
        with self._lock:
            item = self._items.get(sku)
            return None if item is None else item.available

    def inventory_item_id(self, sku: str) -> int | None:
        with self._lock:
            item = self._items.get(sku)
            return None if item is None else item.id

    def delete_product(self, sku: str) -> None:
        with self._lock:
            self._items.pop(sku, None)

    def buy(self, sku: str, quantity: int = 1) -> int:
        """A shopper orders `quantity` of `sku`: stock falls, `orders/create` and
        `inventory_levels/update` go out. The order's id."""
        with self._lock:
            item = self._items.get(sku)
            if item is None or item.available < quantity:
                raise OutOfStock(f"{sku} shows {item and item.available}, asked {quantity}")
            stamp = datetime.now(UTC).replace(microsecond=0)
            order = Order(next(self._ids), next(self._ids), item, quantity, stamp, stamp)
            self.orders[order.id] = order
            self.send_webhook("orders/create", order.rest())
            self._change(item, item.available - quantity, cause="shopper")
            return order.id

    def cancel(self, order_id: int, reason: str = "customer") -> None:
        """The merchant cancels an order, restocking its units: `orders/cancelled` and
        `inventory_levels/update` go out."""
        with self._lock:
            order = self.orders[order_id]
            order.cancelled, order.cancel_reason = datetime.now(UTC), reason
            order.touch()
            self.send_webhook("orders/cancelled", order.rest())
            self._change(order.item, order.item.available + order.quantity, cause="merchant")

    def send_webhook(self, topic: str, payload: Json) -> Message | None:
        """Send `topic` with `payload` to the subscription; None when there is none."""
        message = webhooks.webhook(topic, payload, self.shop_domain, self.api_version)
        return self.webhooks.send(message)

    def close(self) -> None:
        self.webhooks.close()

    def _change(self, item: Item, available: int, cause: str) -> None:
        if item.available == available:
            return
        self.changes.append(Change(item.sku, item.available, available, cause))
        item.available, item.updated_at = available, now()
        self.send_webhook(
            "inventory_levels/update",
            {
                "inventory_item_id": item.id,
                "location_id": self.location_id,
                "available": available,
                "updated_at": item.updated_at,
                "admin_graphql_api_id": f"{gid('InventoryLevel', self.location_id)}"
                f"?inventory_item_id={item.id}",
            },
        )

    # The Admin API -----------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(app: Starlette) -> Any:
            yield
            self.close()

        api = faulty(self.faults, self.calls, "graphql", self._graphql)
        return Starlette(
            routes=[
                Route("/admin/api/{version}/graphql.json", api, methods=["POST"]),
                *ShopControl(self).routes(),
            ],
            lifespan=lifespan,
        )

    async def _graphql(self, request: Request) -> Response:
        headers = {"X-Shopify-API-Version": self.api_version}
        if not hmac.compare_digest(
            request.headers.get("x-shopify-access-token", "").encode(), self.access_token.encode()
        ):
            return JSONResponse({"errors": INVALID_TOKEN}, status_code=401, headers=headers)
        try:
            body = await request.json()
            query, variables = body["query"], body.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            answer = {"errors": {"query": "Required parameter missing or invalid"}}
            return JSONResponse(answer, status_code=400, headers=headers)
        answer = self.run(query, variables, body.get("operationName"))
        status, self._status = self._status or 200, None
        if status != 200:
            return JSONResponse({"errors": "Internal error"}, status_code=status, headers=headers)
        if self.throttle_status == 429 and "actualQueryCost" in cost.throttle_cost(answer):
            status, headers["Retry-After"] = 429, str(math.ceil(cost.throttle_wait(answer)))
        return JSONResponse(answer, status_code=status, headers=headers)

    def run(self, query: str, variables: Json, operation_name: str | None = None) -> Json:
        """One GraphQL request, costed and paid from the bucket (HTTP 200 either way)."""
        with self._lock:
            return self._run(query, variables, operation_name)

    def _run(self, query: str, variables: Json, operation_name: str | None) -> Json:
        try:
            document = parse(query)
        except GraphQLError as error:
            return {"errors": [error.formatted]}
        problems = validate(self.schema, document)
        operation = get_operation_ast(document, operation_name)
        if problems or operation is None:
            return {"errors": [p.formatted for p in problems] or [{"message": "No operation"}]}
        invalid = invalid_variables(self.schema, operation, variables)
        if invalid:
            return {"errors": invalid}
        self.documents = [*self.documents[-DOCUMENTS_KEPT + 1 :], (query, variables)]
        requested = cost.query_cost(self.schema, operation, variables)
        if requested > cost.SINGLE_QUERY_MAX_COST:
            return cost.max_cost_exceeded(requested)
        if self.bucket.refill() < requested:
            return cost.throttled(requested, self.bucket.status())
        self.bucket.available -= requested
        result = self._execute(document, variables, operation_name)
        actual = cost.query_cost(self.schema, operation, variables, result.get("data"))
        self.bucket.available = min(self.bucket.maximum, self.bucket.available + requested - actual)
        paid = {"requestedQueryCost": requested, "actualQueryCost": actual}
        return {**result, "extensions": {"cost": {**paid, "throttleStatus": self.bucket.status()}}}

    def _execute(self, document: DocumentNode, variables: Json, operation_name: str | None) -> Json:
        outcome = execute_sync(
            self.schema,
            document,
            variable_values=variables,
            operation_name=operation_name,
            context_value=variables,  # the raw variables, for reading the @idempotent key
        )
        answer: Json = {"data": outcome.data}
        if outcome.errors:
            answer["errors"] = [error.formatted for error in outcome.errors]
        return answer

    # Resolvers -----------------------------------------------------------------------------------

    def items_matching(self, query: str | None) -> list[Item]:
        terms = [(m[1], m[2] or m[3] or m[4]) for m in _TERM.finditer(query or "")]
        if not terms:
            return list(self._items.values())
        skus = {re.sub(r"\\(.)", r"\1", value) for kind, value in terms if kind == "sku"}
        ids = {value for kind, value in terms if kind == "id"}
        return [i for i in self._items.values() if i.sku in skus or str(i.id) in ids]

    def item_by_gid(self, value: str) -> Item | None:
        number = gid_number(value, "InventoryItem")
        return next((i for i in self._items.values() if i.id == number), None)

    def set_quantities(self, info: Any, data: Json) -> Json:
        """`inventorySetQuantities` under its idempotency key."""
        key = next(
            (
                cost.argument(directive, "key", GraphQLString, info.context)
                for directive in info.field_nodes[0].directives or ()
                if directive.name.value == "idempotent"
            ),
            None,
        )
        if not key or not key.strip():
            raise GraphQLError(
                "The @idempotent directive is required for this mutation but was not provided.",
                extensions={"code": "BAD_REQUEST"},
            )
        fingerprint = json.dumps(data, sort_keys=True)
        if key in self._idempotent:
            return quantities.again(self._idempotent[key], fingerprint)
        return self._first(key, fingerprint, data)

    def _first(self, key: str, fingerprint: str, data: Json) -> Json:
        """A new key: the mutation runs (unless a fault says otherwise)."""
        fault = self.mutation_faults.pop(0) if self.mutation_faults else None
        if fault == "fail":
            self._idempotent[key] = [fingerprint, "failed", None]
            self._status = 500
            return {"inventoryAdjustmentGroup": None, "userErrors": []}  # answered 500
        if fault == "slow":
            self._idempotent[key] = [fingerprint, "running", None]
            self._status = 503
            timer = threading.Timer(self.slow_seconds, self._finish, [key, data])
            timer.daemon = True
            timer.start()
            return {"inventoryAdjustmentGroup": None, "userErrors": []}  # answered 503
        result = self._set(data)
        self._idempotent[key] = [fingerprint, "done", result]
        if fault == "lost":
            self._status = 503
        return result

    def _finish(self, key: str, data: Json) -> None:
        """A slow mutation completes: applied, and its key answers its result from now on."""
        with self._lock:
            self._idempotent[key][1:] = ["done", self._set(data)]

    def _set(self, data: Json) -> Json:
        if data["name"] != "available":
            return quantities.refused(
                "INVALID_NAME", ["input", "name"], "Only 'available' is modelled."
            )
        if data["reason"] not in quantities.REASONS:
            return quantities.refused(
                "INVALID_REASON", ["input", "reason"], "The specified reason is invalid."
            )
        errors: list[Json] = []
        targets: list[Item | None] = []
        for index, quantity in enumerate(data["quantities"]):
            if "changeFromQuantity" not in quantity:
                raise GraphQLError(
                    "InventoryQuantityInput must include the following argument: "
                    "changeFromQuantity.",
                    extensions={"code": "INVALID_FIELD_ARGUMENTS"},
                )
            item = self.item_by_gid(quantity["inventoryItemId"])
            problem = quantities.refusal(quantity, item, targets, self.location_id)
            if problem:
                code, name, message = problem
                errors.append(
                    quantities.user_error(code, ["input", "quantities", str(index), name], message)
                )
            targets.append(item)
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        return {"inventoryAdjustmentGroup": self._apply(data, targets), "userErrors": []}

    def _apply(self, data: Json, items: list[Item | None]) -> Json:
        changes = []
        for quantity, item in zip(data["quantities"], items, strict=True):
            assert item is not None
            delta = quantity["quantity"] - item.available
            self._change(item, quantity["quantity"], cause="api")
            if delta:
                changes.append(
                    {
                        "name": "available",
                        "delta": delta,
                        "quantityAfterChange": item.available,
                        "item": item,
                        "location": self.location(),
                    }
                )
        return {
            "id": gid("InventoryAdjustmentGroup", next(self._ids)),
            "createdAt": now(),
            "reason": data["reason"],
            "referenceDocumentUri": data.get("referenceDocumentUri"),
            "changes": changes,
        }

    def location(self) -> Json:
        return {"id": gid("Location", self.location_id), "name": "Sandbox warehouse"}

    def level(self, item: Item) -> Json:
        return {
            "id": f"{gid('InventoryLevel', self.location_id)}?inventory_item_id={item.id}",
            "location": self.location(),
            "updatedAt": item.updated_at,
            "item": item,
        }
