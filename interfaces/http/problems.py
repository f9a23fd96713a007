"""RFC 9457 problem documents: every error answer says what went wrong and for which request."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")
