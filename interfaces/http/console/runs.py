"""Reconciliation runs (what `GET /api/v1/channels/{id}/reconcile` answers): each reconciled
channel's latest runs with their progress and counts, and the form that starts one now, as
`POST` on the same path does (`admin`)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from infrastructure.reconcile.service import NotReconciled
from interfaces.http.console.base import Console, Page
from interfaces.http.problems import invalid_fields
from interfaces.http.reconcile import ReconcileIn, run_document

PATH = "/console/runs"
SHOWN = 5  # runs per channel; the JSON API lists 20


def routes(console: Console) -> list[BaseRoute]:
    def listed(request: Request) -> Response:
        return console.render(request, "runs.html", channels=_channels(console))

    def start(request: Request) -> Response:
        reconciliation = console.api.reconciliation
        channel_id = str(request.state.form.get("channel", ""))
        try:
            wanted = ReconcileIn(what=request.state.form.get("what", "both"))
        except ValidationError as error:
            return console.refuse(request, 422, "Invalid reconciliation", invalid_fields(error))
        by = getattr(request.state, "token", None) or "console"
        try:
            if reconciliation is None:
                raise NotReconciled("this process does not reconcile channels")
            reconciliation.request_check(channel_id, None, what=wanted.what, by=by)
        except NotReconciled as error:
            return console.refuse(request, 404, "Channel not reconciled", str(error))
        return console.redirect(PATH)

    return [
        Route(PATH, console.view(listed, "read"), methods=["GET"]),
        Route(PATH, console.action(start, "admin"), methods=["POST"]),
    ]


PAGE = Page("Reconciliation", PATH, routes)


def _channels(console: Console) -> list[dict[str, Any]]:
    """Each reconciled channel's latest runs, newest first."""
    reconciliation = console.api.reconciliation
    if reconciliation is None:
        return []
    return [
        {
            "id": rule.channel_id,
            "runs": [run_document(run) for run in reconciliation.latest(rule.channel_id, SHOWN)],
        }
        for rule in console.api.rules
        if reconciliation.reconciles(rule.channel_id)
    ]
