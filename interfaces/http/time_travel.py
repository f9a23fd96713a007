"""`GET /api/v1/skus/{sku}/at` and `GET /api/v1/oversells`: the ledger as it stood at a past
moment, with what each channel was allowed to sell then."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.time_travel import TimeTravel
from domain.allocation import ChannelRule
from interfaces.http.params import BadQuery, flag, limit_of, number, time_of
from interfaces.http.paths import SKU_PARAM
from interfaces.presenters import allocations_document, item_document, oversell_document

MAX_CONTEXT = 20


def time_travel_routes(past: TimeTravel, rules: Sequence[ChannelRule]) -> list[Route]:
    def sku_at(request: Request) -> Response:
        at = time_of(request.query_params.get("time"), "time", required=True)
        assert at is not None
        explain = flag(request.query_params.get("explain"), "explain")
        item, allocations = past.availability_at(request.path_params["sku"], at, rules)
        return JSONResponse(
            {
                **item_document(item),
                "channels": allocations_document(allocations, explain=explain),
                "as_of": at.isoformat(),
            }
        )

    def oversells(request: Request) -> Response:
        params = request.query_params
        found = past.oversells_in_context(
            rules,
            limit=limit_of(params.get("limit")),
            before=time_of(params.get("before"), "before"),
            context=_context(params.get("context")),
        )
        return JSONResponse({"oversells": [oversell_document(o) for o in found]})

    return [
        Route(f"/api/v1/skus/{SKU_PARAM}/at", sku_at),
        Route("/api/v1/oversells", oversells),
    ]


def _context(value: str | None) -> int:
    context = number(value, "context")
    if context is None:
        return 3
    if context > MAX_CONTEXT:
        raise BadQuery(f"context must be between 0 and {MAX_CONTEXT}, got {context}")
    return context
