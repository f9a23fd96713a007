"""The web app factory. Routes parse, call the application, and map each error to a status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from interfaces.http.api import Api, Intake
from interfaces.http.auth import BearerAuth
from interfaces.http.catalogue import OPENAPI_PATH
from interfaces.http.console import console_routes
from interfaces.http.discrepancies import discrepancy_routes
from interfaces.http.errors import exception_handlers
from interfaces.http.health import health_routes, metrics_route
from interfaces.http.history import history_endpoint
from interfaces.http.inputs import RefuseNul
from interfaces.http.limits import BodyLimits
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


def create_app(api: Api) -> Starlette:
    """The HTTP app over `api`'s parts: with its intake, it also receives webhooks and serves
    the inbox and dead-letter operations, its writer started by the app's lifespan."""
    # Webhooks first: the router tries routes in order, and the webhooks are most of the
    # requests (behind some 30 API routes, matching them cost more than verifying the HMAC).
    routes = _intake_routes(api) if api.intake is not None else []
    routes += _routes(api)
    metrics_scope = api.limits.metrics_scope if api.tokens else None
    routes.append(Route(OPENAPI_PATH, openapi_endpoint(routes, metrics_scope=metrics_scope)))
    return Starlette(
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


def _intake_routes(api: Api) -> list[BaseRoute]:
    assert api.intake is not None
    receiver = WebhookReceiver(api.intake.router, api.limits)
    return [
        Route("/webhooks/{channel_id:str}", receiver.handle, methods=["POST"]),
        Route("/webhooks/{channel_id:str}", receiver.challenge, methods=["GET"]),
        *operations_routes(api.intake),
    ]


def _lifespan(
    intake: Intake,
) -> Callable[[Starlette], AbstractAsyncContextManager[dict[str, Any]]]:
    """Starts the group-commit writer in the event loop it serves, and hands it to the webhook
    route as the app's state (`request.state.writer`)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        writer = intake.writer()
        await writer.start()
        try:
            yield {"writer": writer}
        finally:
            await writer.stop()

    return lifespan
