"""Log lines anyone can cause, let through at most once per interval, with a count.

uvicorn logs a warning for every connection refused over `limit_concurrency` and every request
it cannot parse: whoever can reach the port can write to our log as fast as they can send. Those
lines still matter (they say the service is refusing work), so one of each kind passes per
interval, saying how many like it were held back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

# uvicorn's own wording: what a client causes, as opposed to what the server itself does.
CLIENT_CAUSED = frozenset(
    {
        "Exceeded concurrency limit.",
        "Invalid HTTP request received.",
        "Unsupported upgrade request.",
    }
)
SERVER_LOGGER = "uvicorn.error"  # uvicorn's logger for everything but access lines


class OnePerInterval(logging.Filter):
    """Lets the first record of each of `messages` through, then at most one per `every`
    seconds, telling in it how many were held back since the last one passed. Other records
    pass untouched. Safe across threads (the demo's sandbox servers log through the same
    logger)."""

    def __init__(
        self,
        every: float = 10.0,
        messages: Iterable[str] = CLIENT_CAUSED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.every = every
        self.messages = frozenset(messages)
        self.clock = clock
        self._passed: dict[str, float] = {}  # message -> when it last passed
        self._held: dict[str, int] = {}  # message -> how many held back since
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message not in self.messages:
            return True
        now = self.clock()
        with self._lock:
            last = self._passed.get(message)
            if last is not None and now - last < self.every:
                self._held[message] = self._held.get(message, 0) + 1
                return False
            held = self._held.pop(message, 0)
            self._passed[message] = now
        if held and last is not None:
            record.msg = f"{message} ({held} more like it held back in the last {now - last:.0f} s)"
            record.args = ()
        return True


def quiet_client_caused_lines(every: float = 10.0) -> OnePerInterval:
    """Install `OnePerInterval` on uvicorn's server logger (filters on a logger survive the
    `dictConfig` uvicorn applies when it starts); returns it, so it can be removed."""
    logger = logging.getLogger(SERVER_LOGGER)
    for installed in [f for f in logger.filters if isinstance(f, OnePerInterval)]:
        logger.removeFilter(installed)  # installed again (a second run in one process): one only
    lines = OnePerInterval(every)
    logger.addFilter(lines)
    return lines
