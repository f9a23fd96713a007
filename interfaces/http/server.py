"""The HTTP server's part of the limits: a connection must send its request headers in time.

uvicorn waits for ever on a connection that sends nothing, or its headers a byte at a time
(slow-loris), before any app code runs; and every such connection counts against
`limit_concurrency`, so a thousand of them would have every other client answered 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def fastest_protocol() -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol (a C parser, several times h11's speed), or h11 where
    httptools is not installed (a platform without its wheel)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return H11Protocol
    return HttpToolsProtocol


def fastest_loop() -> str:
    """uvloop where it is installed (not on Windows), else asyncio's own loop."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def with_header_timeout(
    seconds: float, base: type[asyncio.Protocol] | None = None
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol `base` (default `fastest_protocol()`), closing a connection whose
    request headers are not whole within `seconds` of their first byte (or of the connection,
    for the first request). Idle connections between requests are uvicorn's keep-alive
    timeout's. Both of uvicorn's protocols keep the request being served as `cycle`."""
    protocol: Any = base or fastest_protocol()

    class HeaderTimeoutProtocol(protocol):  # type: ignore[misc]
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._header_deadline is None and self._between_requests():
                self._arm()
            before = self.cycle
            super().data_received(data)
            if self.cycle is not before:  # a request's headers are whole: the app has it
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            self._header_deadline = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self._between_requests() and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol
