"""SKU search (what `GET /api/v1/skus` answers, paged) and a SKU's page: its stock per location,
what each channel may sell and why (`?explain=true`'s steps), what each channel last
acknowledged, a chart of its recent history and its events with reason, reference and source."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from application.errors import UnknownSku
from application.receipts import HistoryFilter
from interfaces.http.api import Api
from interfaces.http.console.base import Console, Page
from interfaces.http.console.chart import chart, levels_back
from interfaces.http.params import BadQuery, limit_of, number
from interfaces.http.skus import sku_document
from interfaces.presenters import event_document

EVENTS_SHOWN = 50  # the newest events listed and charted; the history API pages through all


def routes(console: Console) -> list[BaseRoute]:
    def search(request: Request) -> Response:
        params = request.query_params
        try:
            limit = limit_of(params.get("limit"))
        except BadQuery as error:
            return console.refuse(request, 400, "Bad query", str(error))
        text = params.get("search", "")
        found = console.api.queries.skus(text, params.get("after"), limit)
        after = found[-1] if len(found) == limit else None
        return console.render(request, "skus.html", search=text, skus=found, after=after)

    def sku(request: Request) -> Response:
        name = request.query_params.get("sku", "")
        try:
            page = sku_page(console.api, name, before=_before(request))
        except UnknownSku:
            return console.refuse(request, 404, "Unknown SKU", f"The ledger has no SKU {name!r}.")
        except BadQuery as error:
            return console.refuse(request, 400, "Bad query", str(error))
        return console.render(request, "sku.html", **page)

    return [
        Route("/console/skus", console.view(search), methods=["GET"]),
        Route("/console/sku", console.view(sku), methods=["GET"]),
    ]


PAGE = Page("SKUs", "/console/skus", routes)


def _before(request: Request) -> int | None:
    return number(request.query_params.get("before"), "before")


def sku_page(api: Api, sku: str, before: int | None = None) -> dict[str, Any]:
    """What the SKU's page shows: the API's document of it (explained), its newest events
    (before version `before`, to page back) and the chart of the levels after each."""
    document = sku_document(api, sku, explain=True)
    page = api.queries.history(sku, HistoryFilter(cursor=before), limit=EVENTS_SHOWN)
    totals = document["totals"] if before is None else None
    return {
        "sku": document,
        "events": [event_document(event) for event in page.events],
        "next_before": page.next_cursor,
        "chart": chart(levels_back(totals, _deltas(page.events))) if totals else None,
    }


def _deltas(events: Any) -> list[tuple[int, Any]]:
    return [(event.originator_version, event.deltas()) for event in events]
