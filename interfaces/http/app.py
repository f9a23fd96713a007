"""The web app factory. Routes parse, call the application, and map each error to a status."""

from __future__ import annotations

import base64
import csv
import io
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.errors import UnknownSku
from application.ledger import Ledger
from application.receipts import AuditFilter, HistoryFilter
from application.reservations import Reservations
from domain.allocation import ChannelRule
from domain.errors import InvsyncError
from domain.stock import ChangeKind
from infrastructure.config import ApiToken
from infrastructure.idempotency import IdempotencyStore
from interfaces.composition import Intake
from interfaces.http.auth import BearerAuth
from interfaces.http.operations import operations_routes
from interfaces.http.problems import problem
from interfaces.http.reservations import reservation_routes
from interfaces.http.rules import rules_routes
from interfaces.http.stock_changes import stock_changes_endpoint
from interfaces.http.webhooks import WebhookReceiver
from interfaces.presenters import (
    channels_document,
    event_document,
    item_document,
    receipt_document,
)

log = logging.getLogger(__name__)

Probe = Callable[[], None]  # raises InvsyncError when its dependency is not ready


class BadQuery(ValueError):
    """Raised when a query parameter cannot be parsed."""


def create_app(
    ledger: Ledger,
    probes: dict[str, Probe],
    intake: Intake | None = None,
    *,
    rules: Sequence[ChannelRule] = (),
    idempotency: IdempotencyStore | None = None,
    tokens: Sequence[ApiToken] = (),
    reservations: Reservations | None = None,
) -> Starlette:
    """The HTTP app over `ledger`; `/readyz` runs each named probe. With `intake`, it also
    receives webhooks and serves the inbox and dead-letter operations."""

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

    def current_rules() -> list[ChannelRule]:
        return [ledger.channel_rules(default)[0] for default in rules]

    def sku(request: Request) -> Response:
        explain = _flag(request.query_params.get("explain"), "explain")
        item = ledger.get_item(request.path_params["sku"])
        channels = channels_document(item, current_rules(), explain=explain)
        return JSONResponse({**item_document(item), "channels": channels})

    def sku_at(request: Request) -> Response:
        at = _time(request.query_params.get("time"), "time", required=True)
        assert at is not None
        item = ledger.item_at(request.path_params["sku"], at)
        return JSONResponse({**item_document(item), "as_of": at.isoformat()})

    def sku_history(request: Request) -> Response:
        params = request.query_params
        history = HistoryFilter(
            kinds=frozenset(_kinds(params.getlist("kind"))),
            since=_time(params.get("since"), "since"),
            until=_time(params.get("until"), "until"),
            newest_first=_newest_first(params.get("order", "newest")),
            cursor=_int(params.get("cursor"), "cursor"),
        )
        sku_name = request.path_params["sku"]
        ledger.get_item(sku_name)  # 404 for a SKU never recorded, rather than an empty page
        page = ledger.history(sku_name, history, limit=_limit(params.get("limit")))
        return JSONResponse(
            {
                "sku": sku_name,
                "events": [event_document(e) for e in page.events],
                "next_cursor": page.next_cursor,
            }
        )

    def audit(request: Request) -> Response:
        params = request.query_params
        limit = _limit(params.get("limit"))
        found = ledger.audit(
            AuditFilter(
                since=_time(params.get("since"), "since"),
                until=_time(params.get("until"), "until"),
                kinds=frozenset(_kinds(params.getlist("kind"))),
                sku=params.get("sku"),
                source=params.get("channel") or params.get("source"),
                location=params.get("location"),
                reference=params.get("reference"),
                cursor=_audit_cursor(params.get("cursor")),
            ),
            limit=limit,
        )
        rows = [receipt_document(r) for r in found]
        following = (
            _encode_cursor(found[-1].recorded_at, found[-1].business_key)
            if len(found) == limit
            else None
        )
        if params.get("format") == "csv":
            return Response(_csv(rows), media_type="text/csv")
        return JSONResponse({"changes": rows, "next_cursor": following})

    def oversells(request: Request) -> Response:
        params = request.query_params
        found = ledger.oversells(_limit(params.get("limit")), _time(params.get("before"), "before"))
        return JSONResponse({"oversells": [receipt_document(r) for r in found]})

    def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def unknown_sku(request: Request, exc: Exception) -> Response:
        return problem(404, "Unknown SKU", str(exc))

    async def bad_query(request: Request, exc: Exception) -> Response:
        return problem(400, "Bad query parameter", str(exc))

    async def storage_down(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", exc)
        response = problem(503, "Database unavailable", "the ledger cannot be read right now")
        response.headers["Retry-After"] = "5"
        return response

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/api/v1/skus/{sku:str}", sku),
        Route("/api/v1/skus/{sku:str}/at", sku_at),
        Route("/api/v1/skus/{sku:str}/history", sku_history),
        Route("/api/v1/oversells", oversells),
        Route("/api/v1/history", audit),
        *rules_routes(ledger, rules),
        *(reservation_routes(reservations) if reservations is not None else []),
        Route(
            "/api/v1/stock-changes",
            stock_changes_endpoint(ledger, idempotency),
            methods=["POST"],
        ),
    ]
    lifespan = None
    if intake is not None:
        receiver = WebhookReceiver(intake.router)
        routes += [
            Route("/webhooks/{channel_id:str}", receiver.handle, methods=["POST"]),
            *operations_routes(intake),
        ]
        lifespan = _intake_lifespan(intake, receiver)
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(BearerAuth, tokens=tokens)],
        exception_handlers={
            UnknownSku: unknown_sku,
            BadQuery: bad_query,
            OperationalError: storage_down,
            InterfaceError: storage_down,
        },
    )


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


def _time(value: str | None, name: str, *, required: bool = False) -> datetime | None:
    if value is None:
        if required:
            raise BadQuery(f"{name} is required (an ISO 8601 time with a zone)")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        raise BadQuery(f"{name}={value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise BadQuery(f"{name}={value!r} needs a time zone, e.g. 2026-11-28T12:00:00Z")
    return parsed


def _int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise BadQuery(f"{name}={value!r} is not a whole number")
    return int(value)


def _limit(value: str | None) -> int:
    limit = _int(value, "limit")
    if limit is None:
        return 50
    if not 1 <= limit <= 1000:
        raise BadQuery(f"limit must be between 1 and 1000, got {limit}")
    return limit


def _encode_cursor(recorded_at: datetime, business_key: str) -> str:
    raw = f"{recorded_at.isoformat()}|{business_key}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _audit_cursor(value: str | None) -> tuple[datetime, str] | None:
    if value is None:
        return None
    try:
        stamp, _, key = base64.urlsafe_b64decode(value.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), key
    except ValueError:
        raise BadQuery("cursor is not one this API gave out") from None


_CSV_COLUMNS = (
    "recorded_at",
    "occurred_at",
    "sku",
    "kind",
    "location",
    "source",
    "reference",
    "business_key",
    "shortfall",
)


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _flag(value: str | None, name: str) -> bool:
    if value in (None, "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise BadQuery(f"{name} must be true or false, got {value!r}")


def _newest_first(order: str) -> bool:
    if order not in ("newest", "oldest"):
        raise BadQuery(f"order must be newest or oldest, got {order!r}")
    return order == "newest"


def _kinds(values: list[str]) -> list[ChangeKind]:
    try:
        return [ChangeKind(value) for value in values]
    except ValueError:
        allowed = ", ".join(ChangeKind)
        raise BadQuery(f"kind must be one of: {allowed}") from None
