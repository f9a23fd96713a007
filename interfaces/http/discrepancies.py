"""`GET /api/v1/discrepancies?state=&channel=&sku=` lists the drift reconciliation found too
large to correct unasked (and the corrections it made, resolved by invsync), newest first;
`POST /api/v1/discrepancies/{id}/resolve` settles one with `{"action": "accept_channel" |
"push_ledger", "reason": "..."}`, recording who did."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.errors import UnknownSku
from domain.discrepancy import CountLocationUnclear, DiscrepancyResolved, InvalidResolution
from infrastructure.reconcile.discrepancies import DiscrepancyChanged, DiscrepancyRow
from infrastructure.reconcile.review import Review, UnknownDiscrepancy
from interfaces.http.inputs import Reason
from interfaces.http.params import BadQuery, limit_of
from interfaces.http.problems import invalid_fields, problem

PATH = "/api/v1/discrepancies"
STATES = ("open", "resolved")


class ResolveIn(BaseModel):
    """How a person settles a discrepancy, and why."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept_channel", "push_ledger"]
    reason: Reason


def discrepancy_routes(review: Review | None) -> list[Route]:
    """The routes; `review` (None only to list the routes) serves them."""
    routes = _Routes(review)
    return [
        Route(PATH, routes.listed, methods=["GET"]),
        Route(PATH + "/{discrepancy_id}/resolve", routes.resolve, methods=["POST"]),
    ]


class _Routes:
    def __init__(self, review: Review | None) -> None:
        self._review = review

    async def listed(self, request: Request) -> Response:
        try:
            filters = filters_of(request.query_params)
        except BadQuery as error:
            return problem(400, "Bad query", str(error))
        assert self._review is not None
        rows = await run_in_threadpool(self._review.listed, **filters)
        return JSONResponse({"discrepancies": [discrepancy_document(row) for row in rows]})

    async def resolve(self, request: Request) -> Response:
        discrepancy_id = uuid_of(request.path_params["discrepancy_id"])
        if discrepancy_id is None:
            return problem(404, "Unknown discrepancy", "discrepancy ids are UUIDs")
        try:
            wanted = ResolveIn.model_validate_json(await request.body())
        except ValidationError as error:
            return problem(422, "Invalid resolution", invalid_fields(error))
        by = getattr(request.state, "token", None) or "api"
        return await self._resolved(discrepancy_id, wanted, by)

    async def _resolved(self, discrepancy_id: UUID, wanted: ResolveIn, by: str) -> Response:
        assert self._review is not None
        try:
            row = await run_in_threadpool(
                self._review.resolve, discrepancy_id, wanted.action, wanted.reason, by
            )
        except RESOLVE_ERRORS as error:
            return problem(*resolve_refusal(error), str(error))
        return JSONResponse(discrepancy_document(row))


# What `Review.resolve` raises, each answered with its own status and title (`resolve_refusal`).
RESOLVE_ERRORS = (
    UnknownDiscrepancy,
    DiscrepancyResolved,
    DiscrepancyChanged,
    InvalidResolution,
    UnknownSku,
    CountLocationUnclear,
)


def resolve_refusal(error: Exception) -> tuple[int, str]:
    """The status and title that answer one of `RESOLVE_ERRORS`."""
    if isinstance(error, UnknownDiscrepancy):
        return 404, "Unknown discrepancy"
    if isinstance(error, DiscrepancyResolved | DiscrepancyChanged):
        return 409, "Discrepancy already resolved"
    if isinstance(error, InvalidResolution):
        return 422, "Invalid resolution"
    if isinstance(error, CountLocationUnclear):  # the configuration names no one location
        return 409, "No one location to count at"
    return 409, "SKU unknown to the ledger"  # accepting the channel counts stock it must know


def filters_of(query: Any) -> dict[str, Any]:
    """`Review.listed`'s filters from a query string. Raises `BadQuery`."""
    state = query.get("state")
    if state is not None and state not in STATES:
        raise BadQuery(f"state must be open or resolved, got {state[:40]!r}")
    return {
        "state": state,
        "channel_id": query.get("channel"),
        "sku": query.get("sku"),
        "limit": limit_of(query.get("limit")),
    }


def uuid_of(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def discrepancy_document(row: DiscrepancyRow) -> dict[str, Any]:
    resolution = None
    if row.resolved_at is not None:
        resolution = {
            "action": row.action,
            "reason": row.reason,
            "by": row.resolved_by,
            "at": row.resolved_at.isoformat(),
        }
    return {
        "id": str(row.id),
        "channel": row.channel_id,
        "sku": row.sku,
        "observed": row.observed,
        "expected": row.expected,
        "difference": row.difference,
        "state": row.state,
        "read_at": row.read_at.isoformat(),
        "detected_at": row.detected_at.isoformat(),
        "evidence": row.evidence,
        "resolution": resolution,
    }
