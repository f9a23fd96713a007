"""What every channel sandbox shares: a real HTTP server on a free local port, faults an
operator or a test can switch on (outage, 5xx, slowness), and a log of every API call, so tests
and benchmarks can count calls and check rate limits from the channel's side.

A sandbox imitates one channel's documented API and webhooks (see each channel's folder beside
this module); it is never a mock of our own code.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp


@dataclass
class Faults:
    """What the sandbox does wrong, on purpose. Changed at run time."""

    outage: bool = False  # every API call answers 503
    error_rate: float = 0.0  # this share of API calls answers 500
    delay: float = 0.0  # seconds before any API answer (beyond a client's timeout: a timeout)
    # SKU -> its next updates that fail on the channel's side, each answered as a failed item
    # inside a successful batch answer (`fail_items`).
    failing_items: dict[str, int] = field(default_factory=dict)

    def fail_items(self, sku: str, count: int = 1) -> None:
        """The next `count` updates of `sku` fail on the channel's side, as the sandbox's
        batch endpoint answers a failed item (WooCommerce: an item `error` with status 500 in
        a 200; eBay: `statusCode` 500 in a 207)."""
        self.failing_items[sku] = count

    def item_fails(self, sku: str) -> bool:
        """True (and one fewer left) when this update of `sku` is to fail; called under the
        sandbox's lock."""
        left = self.failing_items.get(sku, 0)
        if left:
            self.failing_items[sku] = left - 1
        return left > 0


@dataclass
class CallLog:
    """Every API call the sandbox answered: (monotonic time it arrived, operation, status)."""

    calls: list[tuple[float, str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, status: int, at: float | None = None) -> None:
        """Log a call that arrived at monotonic time `at` (default: now)."""
        with self._lock:
            self.calls.append((time.monotonic() if at is None else at, operation, status))

    def entries(self) -> list[tuple[float, str, int]]:
        """Every call so far, a copy (the log goes on growing)."""
        with self._lock:
            return list(self.calls)

    def count(self, operation: str | None = None, status: int | None = None) -> int:
        with self._lock:
            return sum(
                1
                for _, op, st in self.calls
                if (operation is None or op == operation) and (status is None or st == status)
            )

    def busiest_second(self, operation: str | None = None, since: float = 0.0) -> int:
        """The most calls (of `operation`, answered after monotonic time `since`) within any
        one-second window."""
        with self._lock:
            times = sorted(t for t, op, _ in self.calls if t >= since and operation in (None, op))
        most, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most


Handler = Callable[[Request], Awaitable[Response]]


# Faults drawn from a generator of their own: a sandbox's server thread never moves the global
# random state a property test in the same process draws from.
_FAULTS = random.Random()


def faulty(faults: Faults, log: CallLog, operation: str, handler: Handler) -> Handler:
    """`handler` behind the sandbox's faults, its answers logged under `operation`."""

    async def guarded(request: Request) -> Response:
        arrived = time.monotonic()  # a channel meters calls as they arrive
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.outage:
            response: Response = JSONResponse({"errors": "service unavailable"}, status_code=503)
        elif faults.error_rate and _FAULTS.random() < faults.error_rate:
            response = JSONResponse({"errors": "internal error"}, status_code=500)
        else:
            response = await handler(request)
        log.record(operation, response.status_code, arrived)
        return response

    return guarded


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class SandboxServer:
    """Serves `app` with uvicorn in a background thread until stopped."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host, self.port = host, port or free_port(host)
        self._server = uvicorn.Server(
            # Its lines go through the process's own handlers (invsync's JSON in the demo).
            uvicorn.Config(
                app,
                host=self.host,
                port=self.port,
                log_level="warning",
                log_config=None,
                lifespan="on",
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="sandbox")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"sandbox did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
