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

Shoppers (`buy`) and API writes change the stock; every change sends `inventory_levels/update`,
a sale also `orders/create`, signed and retried as Shopify does (§1.1, §7).

Simplified: one location; one quantity, `available` (`on_hand` shows the same, nothing is
committed); search understands `sku:` and `id:` terms joined by OR; no cursors.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import threading
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any, cast

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputType,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    build_schema,
    execute_sync,
    get_named_type,
    get_operation_ast,
    parse,
    type_from_ast,
    validate,
    value_from_ast,
)
from graphql.utilities import validate_input_value
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.server import CallLog, Faults, faulty
from sandboxes.shopify import webhooks
from sandboxes.shopify.webhooks import DOCUMENTED_RETRY_DELAYS
from sandboxes.webhooks import Message

API_VERSION = "2026-04"
# Standard plan: 100 points/s restored (§1.3); the bucket holds 20 s of that.
RESTORE_RATE = 100.0
MAXIMUM_AVAILABLE = 2000.0
SINGLE_QUERY_MAX_COST = 1000
MAX_PAGE = 250  # the largest `first`, and the largest input array (shopify.dev/api/usage/limits)
MAX_QUANTITY = 1_000_000_000
# `inventorySetQuantities` reasons Shopify accepts.
REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
DOCUMENTS_KEPT = 1000  # the documents (and variables) answered, for conformance tests

Json = dict[str, Any]


class OutOfStock(Exception):
    """Raised when a simulated shopper asks for more than the sandbox shows."""


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: str, kind: str) -> int | None:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", value)
    return int(match.group(1)) if match else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# Calculated query cost -------------------------------------------------------------------------


@dataclass
class Bucket:
    """The app+store's leaky bucket of cost points (§1.3)."""

    maximum: float = MAXIMUM_AVAILABLE
    restore_rate: float = RESTORE_RATE
    available: float = MAXIMUM_AVAILABLE
    _at: float = field(default_factory=time.monotonic)

    def refill(self) -> float:
        now = time.monotonic()
        self.available = min(self.maximum, self.available + (now - self._at) * self.restore_rate)
        self._at = now
        return self.available

    def drain(self, to: float = 0.0) -> None:
        """Leave `to` points in the bucket, as if spent just now (for tests and demos)."""
        self.available, self._at = to, time.monotonic()

    def status(self) -> Json:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self.available, 1),
            "restoreRate": self.restore_rate,
        }


def query_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Json, data: Any = None
) -> int:
    """Shopify's calculated cost: scalars and enums 0, objects 1, connections 2 plus their size
    (`first`, or the nodes returned when `data` is the answer) times a node's cost, mutations 10.
    """
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    assert root is not None
    base = 10 * len(operation.selection_set.selections) if root is schema.mutation_type else 0
    return base + _selections_cost(root, operation.selection_set.selections, variables, data)


def _selections_cost(parent: Any, selections: Any, variables: Json, data: Any) -> int:
    total = 0
    for node in selections:
        if not isinstance(node, FieldNode) or node.name.value not in parent.fields:
            continue
        definition = parent.fields[node.name.value]
        kind = get_named_type(definition.type)
        if isinstance(kind, GraphQLScalarType | GraphQLEnumType) or node.selection_set is None:
            continue
        assert isinstance(kind, GraphQLObjectType)
        value = data.get((node.alias or node.name).value) if isinstance(data, dict) else None
        if kind.name.endswith("Connection"):
            total += 2 + _connection_cost(kind, node, variables, value)
        else:
            total += 1 + _selections_cost(kind, node.selection_set.selections, variables, None)
    return total


def _argument(node: FieldNode | DirectiveNode, name: str, kind: Any, variables: Json) -> Any:
    """The value of argument `name` written on `node` (literal or variable)."""
    for argument in node.arguments or ():
        if argument.name.value == name:
            return value_from_ast(argument.value, kind, variables)
    return None


def _connection_cost(kind: Any, node: FieldNode, variables: Json, value: Any) -> int:
    size = len(value["nodes"]) if isinstance(value, dict) and "nodes" in value else None
    if size is None:
        size = _argument(node, "first", GraphQLInt, variables) or 0
    per_node = 0
    assert node.selection_set is not None
    for child in node.selection_set.selections:
        if isinstance(child, FieldNode) and child.name.value == "nodes" and child.selection_set:
            item = get_named_type(kind.fields["nodes"].type)
            per_node = 1 + _selections_cost(item, child.selection_set.selections, variables, None)
    return size * per_node


# The store ---------------------------------------------------------------------------------------


@dataclass
class Item:
    """A variant's inventory item at the sandbox's one location."""

    id: int
    variant_id: int
    product_id: int
    sku: str
    available: int
    updated_at: str = field(default_factory=_now)


@dataclass(frozen=True)
class Change:
    """A SKU's stock went from `before` to `after`: by the API, a shopper or the merchant."""

    sku: str
    before: int
    after: int
    cause: str


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
        restore_rate: float = RESTORE_RATE,
        maximum_available: float = MAXIMUM_AVAILABLE,
    ) -> None:
        self.access_token = access_token
        self.api_version = api_version
        self.location_id = location_id
        self.faults, self.calls = Faults(), CallLog()
        self.fields: Counter[str] = Counter()  # root fields answered, e.g. "inventoryItems"
        self.bucket = Bucket(maximum_available, restore_rate, maximum_available)
        self.throttle_status = 200
        self.shop_domain = shop_domain
        self.webhooks = webhooks.sender(webhook_url, webhook_secret, retry_delays)
        self._items: dict[str, Item] = {}
        self._ids = count(45_000_000_001)
        # key → [parameters' fingerprint, "running" | "failed" | "done", first result]
        self._idempotent: dict[str, list[Any]] = {}
        self.mutation_faults: list[str] = []  # "lost", "slow", "fail": the next mutations'
        self.slow_seconds = 0.5
        self.documents: list[tuple[str, Json]] = []  # (query, variables) answered, newest last
        self.changes: list[Change] = []  # every change of stock, oldest first
        self._status: int | None = None  # the HTTP status a fault gives the current answer
        self._lock = threading.RLock()
        self.schema = _schema(self)
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
            order_id, line_id = next(self._ids), next(self._ids)
            self.send_webhook("orders/create", _order(order_id, line_id, item, quantity))
            self._change(item, item.available - quantity, cause="shopper")
            return order_id

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
        item.available, item.updated_at = available, _now()
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
                Route("/_sandbox/stock", self._set_stock_route, methods=["POST"]),
                Route("/_sandbox/stock/{sku}", self._stock_route, methods=["GET"]),
                Route("/_sandbox/buy", self._buy_route, methods=["POST"]),
                Route("/_sandbox/faults", self._faults_route, methods=["POST"]),
                Route("/_sandbox/calls", self._calls_route, methods=["GET"]),
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
        if self.throttle_status == 429 and "actualQueryCost" in _cost(answer):
            status, headers["Retry-After"] = 429, str(math.ceil(_wait(answer)))
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
        invalid = _invalid_variables(self.schema, operation, variables)
        if invalid:
            return {"errors": invalid}
        self.documents = [*self.documents[-DOCUMENTS_KEPT + 1 :], (query, variables)]
        requested = query_cost(self.schema, operation, variables)
        if requested > SINGLE_QUERY_MAX_COST:
            return _max_cost_exceeded(requested)
        if self.bucket.refill() < requested:
            return _throttled(requested, self.bucket.status())
        self.bucket.available -= requested
        result = self._execute(document, variables, operation_name)
        actual = query_cost(self.schema, operation, variables, result.get("data"))
        self.bucket.available = min(self.bucket.maximum, self.bucket.available + requested - actual)
        cost = {"requestedQueryCost": requested, "actualQueryCost": actual}
        return {**result, "extensions": {"cost": {**cost, "throttleStatus": self.bucket.status()}}}

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
                _argument(directive, "key", GraphQLString, info.context)
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
            return self._again(key, fingerprint)
        return self._first(key, fingerprint, data)

    def _again(self, key: str, fingerprint: str) -> Json:
        """A key seen before: its first result, or why there is none."""
        first, state, result = self._idempotent[key]
        if first != fingerprint:
            return _refused(
                "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                None,
                "The same idempotency key cannot be used with different operation parameters.",
            )
        if state == "running":
            return _refused(
                "IDEMPOTENCY_CONCURRENT_REQUEST",
                None,
                "This request is currently in progress, please try again.",
            )
        if state == "failed":
            return _refused(
                "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED",
                None,
                "A previous request with this idempotency key failed. "
                "Retry with a new idempotency key.",
            )
        return dict(result)

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
            return _refused("INVALID_NAME", ["input", "name"], "Only 'available' is modelled.")
        if data["reason"] not in REASONS:
            return _refused(
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
            problem = self._problem(quantity, item, targets)
            if problem:
                code, name, message = problem
                errors.append(_user_error(code, ["input", "quantities", str(index), name], message))
            targets.append(item)
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        return {"inventoryAdjustmentGroup": self._apply(data, targets), "userErrors": []}

    def _problem(
        self, quantity: Json, item: Item | None, earlier: list[Item | None]
    ) -> tuple[str, str, str] | None:
        """The first of Shopify's refusals that applies to one quantity: (code, field, message)."""
        if item is None:
            return (
                "INVALID_INVENTORY_ITEM",
                "inventoryItemId",
                "The specified inventory item could not be found.",
            )
        expected, wanted = quantity["changeFromQuantity"], quantity["quantity"]
        checks = (
            (
                gid_number(quantity["locationId"], "Location") != self.location_id,
                ("INVALID_LOCATION", "locationId", "The specified location could not be found."),
            ),
            (
                item in earlier,
                (
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                    "inventoryItemId",
                    "The combination of inventoryItemId and locationId must be unique.",
                ),
            ),
            (
                wanted < 0,
                ("INVALID_QUANTITY_NEGATIVE", "quantity", "The quantity can't be negative."),
            ),
            (
                wanted > MAX_QUANTITY,
                (
                    "INVALID_QUANTITY_TOO_HIGH",
                    "quantity",
                    "The quantity can't exceed 1,000,000,000.",
                ),
            ),
            (
                expected is not None and expected != item.available,
                (
                    "CHANGE_FROM_QUANTITY_STALE",
                    "changeFromQuantity",
                    "The changeFromQuantity value does not match persisted value.",
                ),
            ),
        )
        return next((refusal for failed, refusal in checks if failed), None)

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
            "createdAt": _now(),
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

    # Control routes ----------------------------------------------------------------------------

    async def _set_stock_route(self, request: Request) -> Response:
        body = await request.json()
        item_id = self.set_stock(str(body["sku"]), int(body["available"]))
        return JSONResponse({"sku": body["sku"], "inventory_item_id": item_id})

    async def _stock_route(self, request: Request) -> Response:
        sku = request.path_params["sku"]
        return JSONResponse({"sku": sku, "available": self.stock(sku)})

    async def _buy_route(self, request: Request) -> Response:
        body = await request.json()
        try:
            order_id = self.buy(str(body["sku"]), int(body.get("quantity", 1)))
        except OutOfStock as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        return JSONResponse({"order_id": order_id})

    async def _faults_route(self, request: Request) -> Response:
        body = await request.json()
        for name in ("outage", "error_rate", "delay"):
            if name in body:
                setattr(self.faults, name, type(getattr(self.faults, name))(body[name]))
        return JSONResponse(vars(self.faults))

    async def _calls_route(self, request: Request) -> Response:
        return JSONResponse({"calls": self.calls.count(), "fields": dict(self.fields)})


def _user_error(code: str, path: list[str] | None, message: str) -> Json:
    return {"code": code, "field": path, "message": message}


def _refused(code: str, path: list[str] | None, message: str) -> Json:
    return {"inventoryAdjustmentGroup": None, "userErrors": [_user_error(code, path, message)]}


def _invalid_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Json
) -> list[Json]:
    """Shopify's INVALID_VARIABLE errors for variables its input types refuse (an input field
    it does not define, as the removed `ignoreCompareQuantity`), as a live store words them."""
    errors: list[Json] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        kind = type_from_ast(schema, definition.type)
        if name not in variables or kind is None:
            continue  # graphql-core's own checks answer for missing ones
        problems = _problems(variables[name], cast(GraphQLInputType, kind))
        if problems:
            first = problems[0]
            errors.append(
                {
                    "message": f"Variable ${name} of type {kind} was provided invalid value for "
                    f"{'.'.join(first['path'])} ({first['explanation']})",
                    "locations": [
                        {"line": token.line, "column": token.column}
                        for token in ([definition.loc.start_token] if definition.loc else [])
                    ],
                    "extensions": {
                        "code": "INVALID_VARIABLE",
                        "value": variables[name],
                        "problems": problems,
                    },
                }
            )
    return errors


def _problems(value: Any, kind: GraphQLInputType) -> list[Json]:
    """Where `value` does not fit `kind`, and why, in Shopify's words."""
    problems: list[Json] = []

    def refuse(error: GraphQLError, path: list[Any]) -> None:
        unknown = re.match(
            r"Expected value of type '(\w+)' not to include unknown field '(\w+)'", error.message
        )
        if unknown:
            where = [*map(str, path), unknown[2]]
            explanation = f"Field is not defined on {unknown[1]}"
        else:
            where, explanation = list(map(str, path)), error.message
        problems.append({"path": where, "explanation": explanation})

    validate_input_value(value, kind, refuse, hide_suggestions=True)
    return problems


def _throttled(requested: int, status: Json) -> Json:
    return {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                },
            }
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": status,
            }
        },
    }


def _cost(answer: Json) -> Json:
    """The cost extension of a THROTTLED answer (empty for any other)."""
    codes = {(e.get("extensions") or {}).get("code") for e in answer.get("errors") or []}
    return answer["extensions"]["cost"] if "THROTTLED" in codes else {}


def _wait(answer: Json) -> float:
    cost = _cost(answer)
    status = cost["throttleStatus"]
    missing = cost["requestedQueryCost"] - status["currentlyAvailable"]
    return float(max(missing, 0.0) / status["restoreRate"])


def _max_cost_exceeded(requested: int) -> Json:
    message = (
        f"Query cost is {requested}, which exceeds the single query max cost limit "
        f"({SINGLE_QUERY_MAX_COST})."
    )
    extensions = {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": SINGLE_QUERY_MAX_COST}
    return {"errors": [{"message": message, "extensions": extensions}]}


def _order(order_id: int, line_id: int, item: Item, quantity: int) -> Json:
    """A trimmed REST Order as `orders/create` carries it (§1.1)."""
    stamp = _now()
    return {
        "id": order_id,
        "admin_graphql_api_id": gid("Order", order_id),
        "name": f"#{order_id % 100_000}",
        "created_at": stamp,
        "updated_at": stamp,
        "cancelled_at": None,
        "cancel_reason": None,
        "financial_status": "paid",
        "fulfillment_status": None,
        "location_id": None,
        "line_items": [
            {
                "id": line_id,
                "variant_id": item.variant_id,
                "product_id": item.product_id,
                "sku": item.sku,
                "quantity": quantity,
                "fulfillable_quantity": quantity,
                "fulfillment_service": "manual",
            }
        ],
        "refunds": [],
    }


def _page(items: list[Any], first: int | None) -> Json:
    if first is None or not 0 < first <= MAX_PAGE:
        raise GraphQLError(f"first must be between 1 and {MAX_PAGE}")
    return {"nodes": items[:first], "pageInfo": {"hasNextPage": len(items) > first}}


def _schema(shop: ShopifySandbox) -> GraphQLSchema:
    """The schema subset with its fields resolved against `shop` (sources are `Item`s and dicts)."""
    schema = build_schema((Path(__file__).parent / "schema.graphql").read_text())

    def counted(name: str, resolve: Any) -> Any:
        def resolver(source: Any, info: Any, **args: Any) -> Any:
            shop.fields[name] += 1
            return resolve(info, **args)

        return resolver

    def level_at(item: Item, _info: Any, locationId: str) -> Json | None:  # noqa: N803
        here = gid_number(locationId, "Location") == shop.location_id
        return shop.level(item) if here else None

    def quantities(level: Json, _info: Any, names: list[str]) -> list[Json]:
        item = level["item"]
        shown = {"available": item.available, "on_hand": item.available}
        return [
            {"id": f"{level['id']}&name={name}", "name": name, "quantity": shown.get(name, 0)}
            for name in names
        ]

    resolvers: dict[tuple[str, str], Any] = {
        ("Query", "inventoryItem"): counted("inventoryItem", lambda _, id: shop.item_by_gid(id)),
        ("Query", "inventoryItems"): counted(
            "inventoryItems",
            lambda _, first=None, query=None: _page(shop.items_matching(query), first),
        ),
        ("Query", "productVariants"): counted(
            "productVariants",
            lambda _, first=None, query=None: _page(shop.items_matching(query), first),
        ),
        ("Query", "location"): counted("location", lambda _, id=None: shop.location()),
        ("Mutation", "inventorySetQuantities"): counted(
            "inventorySetQuantities", lambda info, **args: shop.set_quantities(info, args["input"])
        ),
        ("InventoryItem", "id"): lambda item, _: gid("InventoryItem", item.id),
        ("InventoryItem", "tracked"): lambda item, _: True,
        ("InventoryItem", "variant"): lambda item, _: item,
        ("InventoryItem", "inventoryLevel"): level_at,
        ("InventoryItem", "inventoryLevels"): lambda item, _, first=None: _page(
            [shop.level(item)], first
        ),
        ("InventoryLevel", "quantities"): quantities,
        ("ProductVariant", "id"): lambda item, _: gid("ProductVariant", item.variant_id),
        ("ProductVariant", "title"): lambda item, _: "Default Title",
        ("ProductVariant", "inventoryQuantity"): lambda item, _: item.available,
        ("ProductVariant", "inventoryItem"): lambda item, _: item,
    }
    for (type_name, field_name), resolve in resolvers.items():
        kind = schema.get_type(type_name)
        assert isinstance(kind, GraphQLObjectType)
        kind.fields[field_name].resolve = resolve
    return schema
