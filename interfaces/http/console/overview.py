"""The overview: is anything stuck or wrong? Each channel's backlog, breaker and consistency
windows (what `GET /api/v1/channels/{id}/sync` answers), and counts of what waits for a person:
open discrepancies, dead letters, parked deliveries, oversells today."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from application.intake import DeliveryState
from interfaces.http.api import Api
from interfaces.http.console import discrepancies, intake, oversells
from interfaces.http.console.base import Console, Page

# What waits for a person: each count, what it counts, and the page that reviews them.
WAITING = (
    ("discrepancies", "open discrepancies", discrepancies.PATH),
    ("dead_letters", "dead letters", intake.PATH),
    ("parked", "parked deliveries", intake.PATH),
    ("oversells_today", "oversells today", oversells.PATH),
)


def routes(console: Console) -> list[BaseRoute]:
    def overview(request: Request) -> Response:
        api = console.api
        return console.render(
            request, "overview.html", channels=channels(api), counts=counts(api), waiting=WAITING
        )

    return [Route("/console/", console.view(overview), methods=["GET"])]


PAGE = Page("Overview", "/console/", routes)


def channels(api: Api) -> list[dict[str, Any]]:
    """Each configured channel's sync status (None for a channel invsync does not push to) and
    its consistency windows against the targets."""
    found = []
    for rule in api.rules:
        sync = api.sync(rule.channel_id) if api.sync else None
        windows = sync["consistency_window_seconds"] if sync else {}
        found.append(
            {
                "id": rule.channel_id,
                "sync": sync,
                "windows": against(windows, api.consistency_targets),
            }
        )
    return found


def against(
    windows: Mapping[str, Mapping[str, float]], targets: Mapping[str, float]
) -> list[dict[str, Any]]:
    """Each kind's window (pushes, p50, p99) with its target and whether the p99 met it (None
    for a kind without a target), kinds in order."""
    return [
        {
            "kind": kind,
            **window,
            "target": targets.get(kind),
            "met": window["p99"] <= targets[kind] if kind in targets else None,
        }
        for kind, window in sorted(windows.items())
    ]


def counts(api: Api) -> dict[str, int | None]:
    """What waits for a person; None for what this process does not hold."""
    intake = api.intake
    return {
        "discrepancies": api.review.open_count() if api.review is not None else None,
        "dead_letters": intake.dead_letters.count("dead") if intake is not None else None,
        "parked": intake.inbox.count(DeliveryState.PARKED) if intake is not None else None,
        "oversells_today": api.queries.oversells_since(_midnight()),
    }


def _midnight() -> datetime:
    """Today's start (UTC: the service's clock and the ledger's timestamps)."""
    return datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
