"""What intake could not apply, for a person to decide: dead letters (messages that exhausted
their retries: the message and its error) and deliveries parked or waiting in the webhook inbox
(each with its headers and payload), each retried or discarded as the JSON API's
`/api/v1/dead-letters` and `/api/v1/deliveries` routes do, with their `admin` scope.

Payloads are what channels sent: shown pretty-printed when they are JSON, always as text the
templates escape, never as markup."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from application.intake import DeliveryState
from interfaces.http.api import Intake
from interfaces.http.console.base import Console, Page
from interfaces.http.operations import release_delivery, row_id

PATH = "/console/intake"
DEAD_LETTER_STATES = ("dead", "retried", "discarded")
REVIEWED = (DeliveryState.PARKED, DeliveryState.WAITING, DeliveryState.DISCARDED)


def routes(console: Console) -> list[BaseRoute]:
    pages = _Pages(console)
    return [
        Route(PATH, console.view(pages.listed, "admin"), methods=["GET"]),
        Route(PATH + "/deliveries/{id}", console.view(pages.delivery, "admin"), methods=["GET"]),
        *(
            Route(
                f"{PATH}/{kind}/{{id}}/{verb}", console.action(handler, "admin"), methods=["POST"]
            )
            for kind, verb, handler in (
                ("dead-letters", "retry", pages.retry_dead_letter),
                ("dead-letters", "discard", pages.discard_dead_letter),
                ("deliveries", "retry", pages.retry_delivery),
                ("deliveries", "discard", pages.discard_delivery),
            )
        ),
    ]


PAGE = Page("Intake", PATH, routes)


class _Pages:
    def __init__(self, console: Console) -> None:
        self._console = console

    def _intake(self, request: Request) -> Intake | Response:
        if self._console.api.intake is None:
            detail = "This process does not receive webhooks: no dead letters or deliveries."
            return self._console.refuse(request, 404, "Not served here", detail)
        return self._console.api.intake

    def listed(self, request: Request) -> Response:
        letters, deliveries = (request.query_params.get(k, "") for k in ("letters", "deliveries"))
        letters, deliveries = letters or "dead", deliveries or "parked"
        if letters not in DEAD_LETTER_STATES or deliveries not in set(REVIEWED):
            states = ", ".join(DEAD_LETTER_STATES), ", ".join(REVIEWED)
            detail = f"letters must be one of {states[0]}; deliveries one of {states[1]}"
            return self._console.refuse(request, 400, "Bad query", detail)
        intake = self._intake(request)
        if isinstance(intake, Response):
            return intake
        return self._console.render(
            request,
            "intake.html",
            letters=letters,
            deliveries=deliveries,
            dead_letters=[_shown_letter(row) for row in intake.dead_letters.list(letters)],
            parked=intake.inbox.deliveries(DeliveryState(deliveries)),
        )

    def delivery(self, request: Request) -> Response:
        intake = self._intake(request)
        if isinstance(intake, Response):
            return intake
        found = intake.inbox.delivery(row_id(request.path_params["id"]))
        if found is None:
            return self._missing(request, "delivery", "in the inbox")
        return self._console.render(
            request, "delivery.html", delivery=found, body=pretty_text(found["body"])
        )

    def retry_dead_letter(self, request: Request) -> Response:
        return self._acted(
            request, lambda intake, id_: intake.dead_letters.retry(id_), "dead letter"
        )

    def discard_dead_letter(self, request: Request) -> Response:
        return self._acted(
            request, lambda intake, id_: intake.dead_letters.discard(id_), "dead letter"
        )

    def retry_delivery(self, request: Request) -> Response:
        return self._acted(request, release_delivery, "parked delivery")

    def discard_delivery(self, request: Request) -> Response:
        by = getattr(request.state, "token", None) or "console"
        return self._acted(
            request, lambda intake, id_: intake.inbox.discard(id_, by), "parked or waiting delivery"
        )

    def _acted(self, request: Request, act: Any, what: str) -> Response:
        intake = self._intake(request)
        if isinstance(intake, Response):
            return intake
        found = row_id(request.path_params["id"])
        if not found or not act(intake, found):
            return self._missing(request, what, "awaits review")
        return self._console.redirect(PATH)

    def _missing(self, request: Request, what: str, where: str) -> Response:
        detail = f"No {what} {request.path_params['id']!r} {where} (dealt with already?)."
        return self._console.refuse(request, 404, f"No such {what}", detail)


def _shown_letter(row: dict[str, Any]) -> dict[str, Any]:
    # The traceback Dramatiq keeps in the message's options is the letter's error, shown apart.
    message = dict(row["message"])
    message["options"] = {k: v for k, v in message.get("options", {}).items() if k != "traceback"}
    return {**row, "message": pretty(message)}


def pretty(value: Any) -> str:
    """JSON indented for reading, characters as they are (the template escapes them)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def pretty_text(text: str) -> str:
    """`text` pretty-printed if it is JSON, else as it is."""
    try:
        return pretty(json.loads(text))
    except ValueError:
        return text
