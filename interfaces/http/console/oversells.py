"""Oversells (what `GET /api/v1/oversells` answers): the sales that drove a SKU's available
stock below zero, newest first, each with its causal chain: the ledger events around it and
what each channel was allowed to sell just before it was recorded and with it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from interfaces.http.console.base import Console, Page
from interfaces.http.params import BadQuery, time_of
from interfaces.presenters import oversell_document

PATH = "/console/oversells"
SHOWN = 20  # a page of them, each with its context; `before` pages back
CONTEXT = 3  # the SKU's events shown either side of the sale


def routes(console: Console) -> list[BaseRoute]:
    def listed(request: Request) -> Response:
        try:
            before = time_of(request.query_params.get("before") or None, "before")
        except BadQuery as error:
            return console.refuse(request, 400, "Bad query", str(error))
        api = console.api
        found = api.time_travel.oversells_in_context(
            api.rules, limit=SHOWN, before=before, context=CONTEXT
        )
        shown = [oversell_document(oversell) for oversell in found]
        older = shown[-1]["recorded_at"] if len(shown) == SHOWN else None
        return console.render(request, "oversells.html", oversells=shown, older=older)

    return [Route(PATH, console.view(listed, "read"), methods=["GET"])]


PAGE = Page("Oversells", PATH, routes)
