"""RFC 9457 problem documents: every error answer says what went wrong and for which request."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


async def routing_problem(request: Request, exc: Exception) -> Response:
    """Starlette's own answers (no such route, a method the route does not take) as problems."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = f"{request.method} {request.url.path}: {HTTPStatus(status).phrase.lower()}"
    response = problem(status, HTTPStatus(status).phrase, detail)
    response.headers.update(getattr(exc, "headers", None) or {})
    return response


def invalid_fields(error: ValidationError) -> str:
    """What a request body got wrong, one `field.path: why` per error (`body` for the whole)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
    )
