"""`/api/v1/skus`: the SKUs the ledger knows, one SKU's stock with what each channel may sell,
and one SKU's history."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.receipts import HistoryFilter
from interfaces.http.api import Api
from interfaces.http.params import flag, kinds, limit_of, newest_first, number, time_of
from interfaces.http.paths import SKU_PARAM
from interfaces.presenters import (
    channels_document,
    event_document,
    item_document,
    sent_channels_document,
)


def sku_routes(api: Api) -> list[Route]:
    """The listing and one SKU."""
    queries = api.queries

    def skus(request: Request) -> Response:
        params = request.query_params
        limit = limit_of(params.get("limit"))
        found = queries.skus(params.get("search", ""), params.get("after"), limit)
        return JSONResponse(
            {"skus": found, "next_after": found[-1] if len(found) == limit else None}
        )

    def sku(request: Request) -> Response:
        explain = flag(request.query_params.get("explain"), "explain")
        return JSONResponse(sku_document(api, request.path_params["sku"], explain=explain))

    return [Route("/api/v1/skus", skus), Route(f"/api/v1/skus/{SKU_PARAM}", sku)]


def sku_document(api: Api, sku: str, *, explain: bool = False) -> dict[str, Any]:
    """The SKU's stock and what each channel may sell (`GET /api/v1/skus/{sku}`, the console's
    SKU page). Raises `UnknownSku`."""
    item = api.queries.get_item(sku)
    # What the projection holds and sent each channel; computed here only for a SKU it has
    # not folded yet.
    if held := api.sent(item.sku) if api.sent is not None else {}:
        return {**item_document(item), "channels": sent_channels_document(held, explain=explain)}
    sold = api.velocities(item.sku) if api.velocities is not None else None
    rules = api.queries.rules_for(item.sku, api.rules)
    channels = channels_document(item, rules, explain=explain, velocities=sold)
    return {**item_document(item), "channels": channels}


def sku_history_route(api: Api) -> Route:
    """One SKU's ledger events, filtered and paged."""

    def sku_history(request: Request) -> Response:
        params = request.query_params
        history = HistoryFilter(
            kinds=frozenset(kinds(params.getlist("kind"))),
            since=time_of(params.get("since"), "since"),
            until=time_of(params.get("until"), "until"),
            newest_first=newest_first(params.get("order", "newest")),
            cursor=number(params.get("cursor"), "cursor"),
        )
        sku_name = request.path_params["sku"]
        api.queries.get_item(sku_name)  # 404 for a SKU never recorded, rather than an empty page
        page = api.queries.history(sku_name, history, limit=limit_of(params.get("limit")))
        return JSONResponse(
            {
                "sku": sku_name,
                "events": [event_document(e) for e in page.events],
                "next_cursor": page.next_cursor,
            }
        )

    return Route(f"/api/v1/skus/{SKU_PARAM}/history", sku_history)
