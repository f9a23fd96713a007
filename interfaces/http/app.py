"""The web app factory. Routes parse, call the application, and map each error to a status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from interfaces.http.api import Api, Intake
from interfaces.http.auth import BearerAuth
from interfaces.http.catalogue import OPENAPI_PATH
from interfaces.http.console import console_routes
from interfaces.http.discrepancies import discrepancy_routes
from interfaces.http.errors import exception_handlers
from interfaces.http.health import health_routes, metrics_route
from interfaces.http.history import history_endpoint
from interfaces.http.inputs import RefuseNul
from interfaces.http.limits import WEBHOOK_PREFIX, BodyLimits
from interfaces.http.openapi import openapi_endpoint
from interfaces.http.operations import operations_routes
from interfaces.http.paths import RawSegments
from interfaces.http.projections import projection_routes
from interfaces.http.reconcile import reconcile_routes
from interfaces.http.reservations import reservation_routes
from interfaces.http.rules import rules_routes
from interfaces.http.skus import sku_history_route, sku_routes
from interfaces.http.stock_changes import stock_changes_endpoint
from interfaces.http.sync import sync_routes
from interfaces.http.time_travel import time_travel_routes
from interfaces.http.webhooks import WebhookReceiver


class InvsyncApp(Starlette):
    """The Starlette app, taking webhook POSTs past its middleware and router: at load they are
    nearly every request, and those cost as much as verifying and storing one. `webhooks` keeps
    what the middleware would (the body's time and size limits; webhooks need no token, and one
    with a NUL in its path or query goes the long way, to its 400); all else, the webhooks' GET
    included, is Starlette's. Routes and middleware are added as to any Starlette app; they do
    not see webhook POSTs."""

    def __init__(self, webhooks: WebhookReceiver | None, **options: Any) -> None:
        super().__init__(**options)
        self.webhooks = webhooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.webhooks is not None and scope["type"] == "http" and scope["method"] == "POST":
            channel_id = _webhook_channel(scope)
            if channel_id:
                await self.webhooks.receive(scope, receive, send, channel_id)
                return
        await super().__call__(scope, receive, send)


def _webhook_channel(scope: Scope) -> str:
    """The channel of a webhook POST's path that the short way may take, else ""."""
    path: str = scope["path"]
    if not path.startswith(WEBHOOK_PREFIX) or "\x00" in path:
        return ""
    query: bytes = scope["query_string"]
    if b"\x00" in query or b"%00" in query:
        return ""
    channel_id = path[len(WEBHOOK_PREFIX) :]
    return "" if "/" in channel_id else channel_id


def create_app(api: Api) -> InvsyncApp:
    """The HTTP app over `api`'s parts: with its intake, it also receives webhooks and serves
    the inbox and dead-letter operations, its writer started by the app's lifespan."""
    webhooks, routes = None, []
    if api.intake is not None:
        webhooks = WebhookReceiver(api.intake.router, api.limits)
        routes = _intake_routes(api.intake, webhooks)
    routes += _routes(api)
    metrics_scope = api.limits.metrics_scope if api.tokens else None
    routes.append(Route(OPENAPI_PATH, openapi_endpoint(routes, metrics_scope=metrics_scope)))
    return InvsyncApp(
        webhooks,
        routes=routes,
        lifespan=_lifespan(api.intake) if api.intake is not None else None,
        middleware=[
            Middleware(BodyLimits, limits=api.limits),
            Middleware(BearerAuth, tokens=api.tokens),
            Middleware(RefuseNul),
            Middleware(RawSegments),
        ],
        exception_handlers=exception_handlers(api.limits),
    )


def _routes(api: Api) -> list[BaseRoute]:
    ledger, rules, projections = api.ledger, api.rules, api.projections
    wait = projections.wait_for_ledger if projections is not None else None
    return [
        *health_routes(api.probes),
        metrics_route(api.tokens, api.limits),
        *sku_routes(api),
        *time_travel_routes(api.time_travel, rules),
        sku_history_route(api),
        Route("/api/v1/history", history_endpoint(api.queries)),
        *rules_routes(ledger, api.queries, rules),
        *(reservation_routes(api.reservations) if api.reservations is not None else []),
        *(projection_routes(projections) if projections is not None else []),
        *(sync_routes(api.sync) if api.sync is not None else []),
        *(reconcile_routes(api.reconciliation) if api.reconciliation is not None else []),
        *(discrepancy_routes(api.review) if api.review is not None else []),
        *(console_routes(api, api.sessions) if api.sessions is not None else []),
        Route(
            "/api/v1/stock-changes",
            stock_changes_endpoint(ledger, api.idempotency, wait),
            methods=["POST"],
        ),
    ]


def _intake_routes(intake: Intake, webhooks: WebhookReceiver) -> list[BaseRoute]:
    return [
        # Their POST never reaches the router: `InvsyncApp` takes it first.
        Route("/webhooks/{channel_id:str}", webhooks.challenge, methods=["GET"]),
        *operations_routes(intake),
    ]


def _lifespan(
    intake: Intake,
) -> Callable[[Starlette], AbstractAsyncContextManager[dict[str, Any]]]:
    """Starts the group-commit writer in the event loop it serves, and hands it to the webhook
    endpoint as the app's state (`scope["state"]["writer"]`)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        writer = intake.writer()
        await writer.start()
        try:
            yield {"writer": writer}
        finally:
            await writer.stop()

    return lifespan
