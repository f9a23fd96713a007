"""Discrepancies (what `GET /api/v1/discrepancies` lists): open or resolved, by channel and SKU,
each with what the channel showed, what the ledger expected, the difference, the evidence the
judgement rested on and how it was resolved; and the form that resolves one (`accept_channel`
or `push_ledger`, with a reason), as `POST /api/v1/discrepancies/{id}/resolve` does."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from interfaces.http.console.base import Console, Page
from interfaces.http.discrepancies import (
    RESOLVE_ERRORS,
    ResolveIn,
    discrepancy_document,
    filters_of,
    resolve_refusal,
    uuid_of,
)
from interfaces.http.params import BadQuery
from interfaces.http.problems import invalid_fields

PATH = "/console/discrepancies"


def routes(console: Console) -> list[BaseRoute]:
    def listed(request: Request) -> Response:
        query = {"state": "open", **request.query_params}
        try:
            filters = filters_of({k: v for k, v in query.items() if v})
        except BadQuery as error:
            return console.refuse(request, 400, "Bad query", str(error))
        if console.api.review is None:
            return _not_served(console, request)
        found = console.api.review.listed(**filters)
        shown = [discrepancy_document(row) for row in found]
        return console.render(request, "discrepancies.html", found=shown, query=query)

    def resolve(request: Request) -> Response:
        discrepancy_id = uuid_of(request.path_params["discrepancy_id"])
        if discrepancy_id is None:
            return console.refuse(request, 404, "Unknown discrepancy", "Discrepancy ids are UUIDs.")
        if console.api.review is None:
            return _not_served(console, request)
        form = request.state.form
        try:
            wanted = ResolveIn(action=form.get("action"), reason=form.get("reason", ""))
        except ValidationError as error:
            return console.refuse(request, 422, "Invalid resolution", invalid_fields(error))
        by = getattr(request.state, "token", None) or "console"
        try:
            row = console.api.review.resolve(discrepancy_id, wanted.action, wanted.reason, by)
        except RESOLVE_ERRORS as error:
            return console.refuse(request, *resolve_refusal(error), str(error))
        return console.redirect(f"{PATH}?state=resolved&sku={quote(row.sku, safe='')}")

    return [
        Route(PATH, console.view(listed, "read"), methods=["GET"]),
        # The scope of the JSON route (`POST /api/v1/...` needs `write`).
        Route(
            PATH + "/{discrepancy_id}/resolve", console.action(resolve, "write"), methods=["POST"]
        ),
    ]


PAGE = Page("Discrepancies", PATH, routes)


def _not_served(console: Console, request: Request) -> Response:
    detail = "This process does not reconcile channels: no discrepancies to show."
    return console.refuse(request, 404, "Not served here", detail)
