"""The HTTP server's part of the limits: a connection must send its request headers in time.

uvicorn waits for ever on a connection that sends nothing, or its headers a byte at a time
(slow-loris), before any app code runs; and every such connection counts against
`limit_concurrency`, so a thousand of them would have every other client answered 503.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


def with_header_timeout(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers are not whole within
    `seconds` of their first byte (or of the connection, for the first request). Idle connections
    between requests are uvicorn's keep-alive timeout's."""

    class HeaderTimeoutProtocol(H11Protocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
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
