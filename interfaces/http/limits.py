"""What one client may hold of the service: request bodies are bounded in size and in time.

Anyone may open a connection and start a body, so the server must never wait on one for ever
nor hold more of it than it would accept. The limits come from `HttpLimits` (settings).
"""

from __future__ import annotations

import asyncio
import time

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.settings import HttpLimits
from interfaces.http.problems import problem

WEBHOOK_PREFIX = "/webhooks/"


class BodyTooLarge(Exception):
    """Raised when a request body passes its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request bodies here are limited to {limit} bytes")
        self.limit = limit


class BodyTooSlow(Exception):
    """Raised when a request body has not arrived within the body timeout (a slow-loris)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body did not arrive within {seconds:g} s")


class BodyLimits:
    """ASGI middleware: a request body must arrive within `body_timeout_seconds` and hold at most
    `max_api_body_bytes`. Webhooks are left to their endpoint (`webhooks.py`), which keeps the
    same timeout and the channel file's own size limit.

    A body declared too large is answered 413 before a byte of it is read; one that turns out
    too large or too slow raises `BodyTooLarge` or `BodyTooSlow` where the route reads it, which
    the app answers 413 or 408 and closes the connection.
    """

    def __init__(self, app: ASGIApp, limits: HttpLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(WEBHOOK_PREFIX):
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_api_body_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await too_large(limit)(scope, receive, send)
            return
        await self.app(scope, _bounded(receive, limit, self.limits.body_timeout_seconds), send)


def _bounded(receive: Receive, limit: int, seconds: float) -> Receive:
    """`receive`, refusing a body past `limit` bytes or not whole `seconds` after the request
    began (its headers are in)."""
    size, whole = 0, False
    deadline = time.monotonic() + seconds

    async def bounded_receive() -> Message:
        nonlocal size, whole
        if whole:  # waiting for a disconnect (a streamed answer) is no body's fault
            return await receive()
        try:
            # A timeout of the request's own task, not wait_for's task per message.
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                message = await receive()
        except TimeoutError:
            raise BodyTooSlow(seconds) from None
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)
            whole = not message.get("more_body", False)
        return message

    return bounded_receive


def too_large(limit: int) -> Response:
    response = problem(
        413, "Payload too large", f"request bodies here are limited to {limit} bytes"
    )
    response.headers["Connection"] = "close"  # the rest of the body is never read
    return response


def too_slow(seconds: float) -> Response:
    response = problem(
        408, "Request timeout", f"the request body did not arrive within {seconds:g} s"
    )
    response.headers["Connection"] = "close"
    return response
