"""Each error a route may raise, mapped to its status and problem document."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from application.errors import UnknownSku
from infrastructure.settings import HttpLimits
from interfaces.http.limits import BodyTooLarge, BodyTooSlow, too_large, too_slow
from interfaces.http.params import BadQuery
from interfaces.http.problems import problem, routing_problem

log = logging.getLogger(__name__)

Handler = Callable[[Request, Exception], Awaitable[Response]]


def exception_handlers(limits: HttpLimits) -> dict[type[Exception], Handler]:
    """The app's handlers; `limits` are what a body too large or too slow was held to."""

    async def body_too_large(request: Request, exc: Exception) -> Response:
        return too_large(limits.max_api_body_bytes)

    async def body_too_slow(request: Request, exc: Exception) -> Response:
        return too_slow(limits.body_timeout_seconds)

    return {
        HTTPException: routing_problem,
        BodyTooLarge: body_too_large,
        BodyTooSlow: body_too_slow,
        ClientDisconnect: _gone,
        UnknownSku: _unknown_sku,
        BadQuery: _bad_query,
        OperationalError: _storage_down,
        InterfaceError: _storage_down,
        psycopg.OperationalError: _storage_down,  # the stores we query without the library
    }


async def _unknown_sku(request: Request, exc: Exception) -> Response:
    return problem(404, "Unknown SKU", str(exc))


async def _bad_query(request: Request, exc: Exception) -> Response:
    return problem(400, "Bad query parameter", str(exc))


async def _storage_down(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", exc)
    response = problem(503, "Database unavailable", "the ledger cannot be read right now")
    response.headers["Retry-After"] = "5"
    return response


async def _gone(request: Request, exc: Exception) -> Response:
    """The client went away mid-request: nobody reads the answer, and anyone can cause it, so
    it is no error to log with a traceback."""
    log.debug("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=499)
