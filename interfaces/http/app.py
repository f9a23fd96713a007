"""The web app factory. Routes parse, call the application, and map each error to a status."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.availability import ChannelAvailability
from application.errors import UnknownSku
from application.ledger import Ledger
from application.receipts import HistoryFilter
from application.reservations import Reservations
from domain.allocation import ChannelRule
from domain.errors import InvsyncError
from infrastructure.config import ApiToken
from infrastructure.idempotency import IdempotencyStore
from infrastructure.settings import DEFAULT_LIMITS, HttpLimits
from interfaces.composition import Intake
from interfaces.http.auth import BearerAuth
from interfaces.http.catalogue import OPENAPI_PATH
from interfaces.http.history import history_endpoint
from interfaces.http.inputs import RefuseNul
from interfaces.http.limits import BodyLimits, BodyTooLarge, BodyTooSlow, too_large, too_slow
from interfaces.http.openapi import openapi_endpoint
from interfaces.http.operations import operations_routes
from interfaces.http.params import BadQuery, flag, kinds, limit_of, newest_first, number, time_of
from interfaces.http.paths import SKU_PARAM, RawSegments
from interfaces.http.problems import problem, routing_problem
from interfaces.http.projections import Projections, projection_routes
from interfaces.http.reservations import reservation_routes
from interfaces.http.rules import rules_routes
from interfaces.http.stock_changes import stock_changes_endpoint
from interfaces.http.sync import Status, sync_routes
from interfaces.http.time_travel import time_travel_routes
from interfaces.http.webhooks import WebhookReceiver
from interfaces.presenters import (
    channels_document,
    event_document,
    item_document,
    sent_channels_document,
)

log = logging.getLogger(__name__)

Probe = Callable[[], None]  # raises InvsyncError when its dependency is not ready


def create_app(
    ledger: Ledger,
    probes: dict[str, Probe],
    intake: Intake | None = None,
    *,
    rules: Sequence[ChannelRule] = (),
    idempotency: IdempotencyStore | None = None,
    tokens: Sequence[ApiToken] = (),
    reservations: Reservations | None = None,
    velocities: Callable[[str], Mapping[str, float]] | None = None,
    sent: Callable[[str], Mapping[str, ChannelAvailability]] | None = None,
    projections: Projections | None = None,
    sync: Status | None = None,
    limits: HttpLimits = DEFAULT_LIMITS,
) -> Starlette:
    """The HTTP app over `ledger`; `/readyz` runs each named probe. With `intake`, it also
    receives webhooks and serves the inbox and dead-letter operations. `limits` bound what one
    client may hold (request bodies, webhook verification) and who may read `/metrics`."""

    def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def readyz(request: Request) -> Response:
        checks, failures = {}, []
        for name, probe in probes.items():
            try:
                probe()
                checks[name] = "ok"
            except InvsyncError as error:
                checks[name] = str(error)
                failures.append(str(error))
        if failures:
            return problem(503, "Not ready", "; ".join(failures), checks=checks)
        return JSONResponse({"status": "ready", "checks": checks})

    def sku(request: Request) -> Response:
        explain = flag(request.query_params.get("explain"), "explain")
        item = ledger.get_item(request.path_params["sku"])
        # What the projection holds and sent each channel; computed here only for a SKU it has
        # not folded yet.
        if held := sent(item.sku) if sent is not None else {}:
            return JSONResponse(
                {**item_document(item), "channels": sent_channels_document(held, explain=explain)}
            )
        sold = velocities(item.sku) if velocities is not None else None
        channels = channels_document(
            item, ledger.rules_for(item.sku, rules), explain=explain, velocities=sold
        )
        return JSONResponse({**item_document(item), "channels": channels})

    def skus(request: Request) -> Response:
        params = request.query_params
        limit = limit_of(params.get("limit"))
        found = ledger.skus(params.get("search", ""), params.get("after"), limit)
        return JSONResponse(
            {"skus": found, "next_after": found[-1] if len(found) == limit else None}
        )

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
        ledger.get_item(sku_name)  # 404 for a SKU never recorded, rather than an empty page
        page = ledger.history(sku_name, history, limit=limit_of(params.get("limit")))
        return JSONResponse(
            {
                "sku": sku_name,
                "events": [event_document(e) for e in page.events],
                "next_cursor": page.next_cursor,
            }
        )

    def metrics(request: Request) -> Response:
        if limits.metrics_scope and tokens:
            refusal = _metrics_refusal(request, tokens, limits.metrics_scope)
            if refusal is not None:
                return refusal
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def unknown_sku(request: Request, exc: Exception) -> Response:
        return problem(404, "Unknown SKU", str(exc))

    async def bad_query(request: Request, exc: Exception) -> Response:
        return problem(400, "Bad query parameter", str(exc))

    async def body_too_large(request: Request, exc: Exception) -> Response:
        return too_large(limits.max_api_body_bytes)

    async def body_too_slow(request: Request, exc: Exception) -> Response:
        return too_slow(limits.body_timeout_seconds)

    async def storage_down(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", exc)
        response = problem(503, "Database unavailable", "the ledger cannot be read right now")
        response.headers["Retry-After"] = "5"
        return response

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/api/v1/skus", skus),
        Route(f"/api/v1/skus/{SKU_PARAM}", sku),
        *time_travel_routes(ledger, rules),
        Route(f"/api/v1/skus/{SKU_PARAM}/history", sku_history),
        Route("/api/v1/history", history_endpoint(ledger)),
        *rules_routes(ledger, rules),
        *(reservation_routes(reservations) if reservations is not None else []),
        *(projection_routes(projections) if projections is not None else []),
        *(sync_routes(sync) if sync is not None else []),
        Route(
            "/api/v1/stock-changes",
            stock_changes_endpoint(
                ledger, idempotency, projections.wait_for_ledger if projections else None
            ),
            methods=["POST"],
        ),
    ]
    lifespan = None
    if intake is not None:
        receiver = WebhookReceiver(intake.router, limits)
        routes += [
            Route("/webhooks/{channel_id:str}", receiver.handle, methods=["POST"]),
            *operations_routes(intake),
        ]
        lifespan = _intake_lifespan(intake, receiver)
    metrics_scope = limits.metrics_scope if tokens else None
    routes.append(Route(OPENAPI_PATH, openapi_endpoint(routes, metrics_scope=metrics_scope)))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(BodyLimits, limits=limits),
            Middleware(BearerAuth, tokens=tokens),
            Middleware(RefuseNul),
            Middleware(RawSegments),
        ],
        exception_handlers={
            HTTPException: routing_problem,
            BodyTooLarge: body_too_large,
            BodyTooSlow: body_too_slow,
            ClientDisconnect: _gone,
            UnknownSku: unknown_sku,
            BadQuery: bad_query,
            OperationalError: storage_down,
            InterfaceError: storage_down,
            psycopg.OperationalError: storage_down,  # the stores we query without the library
        },
    )


async def _gone(request: Request, exc: Exception) -> Response:
    """The client went away mid-request: nobody reads the answer, and anyone can cause it, so
    it is no error to log with a traceback."""
    log.debug("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=499)


def _metrics_refusal(request: Request, tokens: Sequence[ApiToken], scope: str) -> Response | None:
    """None when the request carries a token with `scope` (or admin), else the refusal."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    digest = hashlib.sha256(value.strip().encode()).hexdigest()
    found = None
    for token in tokens:  # every one, in constant time, as the API's own check does
        if hmac.compare_digest(digest, token.sha256):
            found = token
    if scheme.lower() != "bearer" or not value or found is None:
        response = problem(401, "Unauthorized", "/metrics needs Authorization: Bearer <token>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="invsync"'
        return response
    if scope not in found.scopes and "admin" not in found.scopes:
        return problem(403, "Forbidden", f"token {found.name!r} lacks the {scope!r} scope")
    return None


def _intake_lifespan(
    intake: Intake, receiver: WebhookReceiver
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        receiver.writer = intake.writer()
        await receiver.writer.start()
        try:
            yield
        finally:
            await receiver.writer.stop()

    return lifespan
