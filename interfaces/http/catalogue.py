"""The operations of /api/v1, one `Operation` per method and path, for the OpenAPI document
that interfaces.http.openapi builds from them.

To document a new route, append an `Operation` to `OPERATIONS`: its method, its path (without
Starlette convertors), a summary and tag, the type of each success answer's JSON body (or a
mapping of media type to type), the statuses it answers with a plain problem document, its query
and header `Param`s, and the type of its body. Types are pydantic models or annotated types,
never hand-written JSON Schemas. Path parameters are non-empty strings unless a
`Param(where="path")` says otherwise; the bearer scope, 400, 401, 403, 503 (and 408 and 413 for
an operation with a body) follow from auth.py and the middleware.
tests/integration/test_api_schema.py fails for a route left out.

Longer than 400 lines: it is one declarative list, an entry per operation of the API, kept whole
so the document's order is the file's and a route's description is found by its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from application.intake import DeliveryState
from domain.stock import LIMITS, ChangeKind
from infrastructure.idempotency import KEY_LIFETIME, MAX_KEY_LENGTH
from interfaces.http import schemas as s
from interfaces.http.discrepancies import ResolveIn
from interfaces.http.inputs import Reason, Text
from interfaces.http.reconcile import ReconcileIn
from interfaces.http.reservations import ReservationIn
from interfaces.http.rules import ChannelRulesIn, SkuRulesIn
from interfaces.http.stock_changes import MAX_BATCH, StockChangeIn

OPENAPI_PATH = "/api/v1/openapi.json"
METRICS_PATH = "/metrics"
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


@dataclass(frozen=True)
class Param:
    """A query, header or path parameter, typed as the route parses it."""

    name: str
    type: Any = Text
    where: Literal["query", "header", "path"] = "query"
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """One method on one path. `answers` maps each status the route answers with to the type of
    its JSON body, or to a mapping of media type to type; `problems` lists the statuses it
    answers with a plain problem document."""

    method: str
    path: str
    summary: str
    tag: str
    answers: Mapping[int, Any]
    problems: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    body: Any = None


SKU = "/api/v1/skus/{sku}"
SKU_RULES = "/api/v1/channels/{channel_id}/rules/skus/{sku}"
LIMIT = Param("limit", s.Limit)
REASON = Param("reason", Reason, description="why, for the record")
# A SKU named in a rule's path: within the ledger's limit, no control characters.
RULED_SKU = Param(
    "sku",
    Annotated[str, Field(min_length=1, max_length=LIMITS["sku"], pattern=r"^[^\x00-\x1f\x7f]*$")],
    where="path",
)
IDEMPOTENCY_KEY = Annotated[
    str, Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=r"^[\x20-\x7e]*$")
]
EXPLAIN = Param("explain", s.Flag, description="add the steps behind each channel's number")
OVERSELL_CONTEXT = Annotated[int, Field(ge=0, le=20)]
SINCE = Param("since", s.Time, description="recorded at or after")
UNTIL = Param("until", s.Time, description="recorded before")
KINDS = Param("kind", list[ChangeKind], description="only these kinds; repeat for several")
SKU_HISTORY_CURSOR = Annotated[int, Field(ge=0, le=2**63 - 1)]
DEAD_LETTER_STATES = Literal["dead", "retried", "discarded"]
DEAD_LETTER = Param("dead_id", RowId, where="path")
DELIVERY = Param("delivery_id", RowId, where="path")

OPERATIONS: list[Operation] = [
    Operation(
        "GET",
        OPENAPI_PATH,
        "This document",
        "meta",
        answers={200: dict[str, Any]},
    ),
    Operation(
        "GET",
        METRICS_PATH,
        "Prometheus metrics; public unless INVSYNC_METRICS_SCOPE is set (`read` or `admin`), "
        "which makes it answer 401 without an API token and 403 with one lacking that scope "
        "(the document then names the scope)",
        "meta",
        answers={200: {"text/plain": str}},
    ),
    Operation(
        "GET",
        "/api/v1/skus",
        "SKUs with a stock record whose name contains `search`, in order, paged by `after`",
        "stock",
        answers={200: s.SkuList},
        problems=(400,),
        params=(
            Param("search"),
            Param("after", description="the last SKU of the page before"),
            LIMIT,
        ),
    ),
    Operation(
        "GET",
        SKU,
        "A SKU's levels per location, totals, and what each channel may sell: the number the "
        "availability projection sent it (or is about to), with the velocities it weighed by",
        "stock",
        answers={200: s.SkuStock},
        problems=(400, 404),
        params=(EXPLAIN,),
    ),
    Operation(
        "GET",
        f"{SKU}/at",
        "A SKU's levels as recorded at a past time, and what each channel was sent then",
        "stock",
        answers={200: s.StockAsOf},
        problems=(400, 404),
        params=(Param("time", s.Time, required=True), EXPLAIN),
    ),
    Operation(
        "GET",
        f"{SKU}/history",
        "A SKU's ledger events, filtered and paged",
        "history",
        answers={200: s.SkuHistory},
        problems=(400, 404),
        params=(
            KINDS,
            SINCE,
            UNTIL,
            Param("order", Literal["newest", "oldest"], description="default newest"),
            Param("cursor", SKU_HISTORY_CURSOR, description="next_cursor of the page before"),
            LIMIT,
        ),
    ),
    Operation(
        "GET",
        "/api/v1/oversells",
        "Sales that drove available stock below zero, newest first, with the events around them",
        "history",
        answers={200: s.Oversells},
        problems=(400,),
        params=(
            LIMIT,
            Param("before", s.Time, description="recorded before"),
            Param("context", OVERSELL_CONTEXT, description="events either side (default 3)"),
        ),
    ),
    Operation(
        "GET",
        "/api/v1/history",
        "Recorded changes across SKUs, newest first, for audits; as JSON or CSV",
        "history",
        answers={200: {"application/json": s.ChangesPage, "text/csv": str}},
        problems=(400,),
        params=(
            SINCE,
            UNTIL,
            KINDS,
            Param("sku"),
            Param("channel", description="the source that recorded it (alias: source)"),
            Param("source"),
            Param("location"),
            Param("reference", description="the source document, e.g. an order URI"),
            Param(
                "order",
                description="an order's reference: the order and everything under it "
                "(fulfilments, refunds)",
            ),
            Param("cursor", description="next_cursor of the page before"),
            LIMIT,
            Param("format", Literal["json", "csv"], description="default json"),
        ),
    ),
    Operation(
        "GET",
        "/api/v1/channels/{channel_id}/rules",
        "A channel's allocation rules",
        "rules",
        answers={200: s.ChannelRulesDocument},
        problems=(404,),
    ),
    Operation(
        "PUT",
        "/api/v1/channels/{channel_id}/rules",
        "Change a channel's allocation rules, recorded with who and why",
        "rules",
        answers={200: s.ChannelRulesDocument},
        problems=(404, 422),
        params=(REASON,),
        body=ChannelRulesIn,
    ),
    Operation(
        "GET",
        SKU_RULES,
        "A channel's rules for one SKU: its override and the rules that result",
        "rules",
        answers={200: s.SkuRulesDocument},
        problems=(404, 422),
        params=(RULED_SKU,),
    ),
    Operation(
        "PUT",
        SKU_RULES,
        "Override some of a channel's rule keys for one SKU",
        "rules",
        answers={200: s.SkuRulesDocument},
        problems=(404, 422),
        params=(RULED_SKU, REASON),
        body=SkuRulesIn,
    ),
    Operation(
        "DELETE",
        SKU_RULES,
        "Drop a SKU's override: the channel's rules apply again",
        "rules",
        answers={200: s.SkuRulesDocument},
        problems=(404, 422),
        params=(RULED_SKU, REASON),
    ),
    Operation(
        "GET",
        "/api/v1/reservations",
        "Open reservations, of one SKU or all",
        "reservations",
        answers={200: s.Reservations},
        params=(Param("sku"),),
    ),
    Operation(
        "POST",
        "/api/v1/reservations",
        "Hold stock; holding an id again answers the first hold",
        "reservations",
        answers={201: s.Reservation},
        problems=(404, 422),
        body=ReservationIn,
    ),
    Operation(
        "DELETE",
        "/api/v1/reservations/{reservation_id}",
        "Release a hold",
        "reservations",
        answers={200: s.Released},
        problems=(404,),
    ),
    Operation(
        "POST",
        "/api/v1/stock-changes",
        "Record receipts, adjustments, counts and transfers: one change, or a list of up to "
        f"{MAX_BATCH} answered one result each",
        "stock changes",
        answers={
            200: s.ChangeOutcome | s.ChangeOutcomes,
            201: s.ChangeOutcome,
            422: s.InvalidStockChange,
        },
        problems=(409,),
        params=(
            Param(
                "Idempotency-Key",
                IDEMPOTENCY_KEY,
                where="header",
                description="the same key and body again replays the first answer; "
                "the same key with another body answers 422, and while the first request "
                "still runs, 409; keys are each token's own and kept "
                f"{KEY_LIFETIME.total_seconds() / 3600:.0f} hours",
            ),
            Param(
                "wait",
                s.Flag,
                description="answer once the projections have folded the change (at most "
                "5 s; the Projections-Caught-Up header says whether they did)",
            ),
        ),
        body=StockChangeIn | list[StockChangeIn],
    ),
    Operation(
        "GET",
        "/api/v1/channels/{channel_id}/sync",
        "How far a channel is behind: pending pushes, the age of the oldest, its breaker, and "
        "its consistency windows (ledger change to channel acknowledgement) over the last hour",
        "propagation",
        answers={200: s.ChannelSync},
        problems=(404,),
    ),
    Operation(
        "POST",
        "/api/v1/channels/{channel_id}/reconcile",
        "Start a reconciliation run of a channel now (admin): its orders polled, then its "
        "levels read and drift corrected or escalated; answers 202, and GET follows it",
        "reconciliation",
        answers={202: s.ReconcileRun},
        problems=(404, 422),
        body=ReconcileIn,
    ),
    Operation(
        "GET",
        "/api/v1/channels/{channel_id}/reconcile",
        "A channel's latest reconciliation runs: progress and counts (orders found and "
        "applied, SKUs read, corrected, escalated)",
        "reconciliation",
        answers={200: s.ReconcileRuns},
        problems=(404,),
    ),
    Operation(
        "GET",
        "/api/v1/discrepancies",
        "Drift reconciliation found: open ones wait for review (a channel showing more was set "
        "back at once), resolved ones say how, why and by whom (invsync's own corrections too)",
        "reconciliation",
        answers={200: s.Discrepancies},
        problems=(400,),
        params=(
            Param("state", Literal["open", "resolved"]),
            Param("channel"),
            Param("sku"),
            LIMIT,
        ),
    ),
    Operation(
        "POST",
        "/api/v1/discrepancies/{discrepancy_id}/resolve",
        "Resolve a discrepancy: accept_channel records a count where the channel's stock lives "
        "so the ledger moves to what the channel showed (409 when its configuration names no "
        "one location); push_ledger sets the channel back to the ledger's quantity",
        "reconciliation",
        answers={200: s.Discrepancy},
        problems=(404, 409, 422),
        body=ResolveIn,
    ),
    Operation(
        "GET",
        "/api/v1/projections",
        "Where each projection stands: the ledger position it has folded, and its lag",
        "projections",
        answers={200: s.ProjectionPositions},
    ),
    Operation(
        "POST",
        "/api/v1/projections/{name}/rebuild",
        "Rebuild a projection from the whole ledger into shadow tables, compare, swap them in; "
        "answers 202 at once, and GET on the same path follows it",
        "projections",
        answers={202: s.RebuildJobDocument},
        problems=(404, 409),
    ),
    Operation(
        "GET",
        "/api/v1/projections/{name}/rebuild",
        "The last rebuild of a projection: progress, then the report of what changed",
        "projections",
        answers={200: s.RebuildJobDocument},
        problems=(404,),
    ),
    Operation(
        "GET",
        "/api/v1/deliveries",
        "Webhook deliveries in the inbox, by state",
        "intake",
        answers={200: s.Deliveries},
        problems=(400,),
        params=(Param("state", DeliveryState, description="default parked"),),
    ),
    Operation(
        "GET",
        "/api/v1/deliveries/{delivery_id}",
        "One delivery with its headers and body (as text), for review",
        "intake",
        answers={200: s.DeliveryPayload},
        problems=(404,),
        params=(DELIVERY,),
    ),
    Operation(
        "DELETE",
        "/api/v1/deliveries/{delivery_id}",
        "Discard a parked or waiting delivery for good",
        "intake",
        answers={200: s.Accepted},
        problems=(404,),
        params=(DELIVERY,),
    ),
    Operation(
        "POST",
        "/api/v1/deliveries/{delivery_id}/retry",
        "Put a parked delivery back in the queue",
        "intake",
        answers={202: s.Accepted},
        problems=(404,),
        params=(DELIVERY,),
    ),
    Operation(
        "GET",
        "/api/v1/dead-letters",
        "Messages that failed every retry, by state",
        "intake",
        answers={200: s.DeadLetters},
        problems=(400,),
        params=(Param("state", DEAD_LETTER_STATES, description="default dead"),),
    ),
    Operation(
        "POST",
        "/api/v1/dead-letters/{dead_id}/retry",
        "Send a dead letter again, with fresh retries",
        "intake",
        answers={202: s.Accepted},
        problems=(404,),
        params=(DEAD_LETTER,),
    ),
    Operation(
        "DELETE",
        "/api/v1/dead-letters/{dead_id}",
        "Discard a dead letter",
        "intake",
        answers={200: s.Accepted},
        problems=(404,),
        params=(DEAD_LETTER,),
    ),
]
