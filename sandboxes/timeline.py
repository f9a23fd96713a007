"""Delayed work for a sandbox, on one background thread: what a channel does some time after a
call (applies a patch, processes a feed, sends or retries a webhook) runs at its time, in the
order it fell due, so compressed delays in a test keep the channel's order."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Timeline:
    """Jobs run at their time, in the order they were due, on one background thread (started with
    the first job, ended by `close`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def after(self, delay: float, job: Callable[[], object]) -> None:
        """Run `job` `delay` seconds from now."""
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
                self._thread.start()
            heapq.heappush(self._jobs, (time.monotonic() + delay, next(self._order), job))
            self._changed.notify()

    def close(self) -> None:
        """Stop: jobs not yet run never run."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while (job := self._next()) is not None:
            job()

    def _next(self) -> Callable[[], object] | None:
        """The next job once it is due; None once closed."""
        with self._changed:
            while not self._closed and (not self._jobs or self._jobs[0][0] > time.monotonic()):
                self._changed.wait(self._jobs[0][0] - time.monotonic() if self._jobs else None)
            if self._closed:
                return None
            return heapq.heappop(self._jobs)[2]
