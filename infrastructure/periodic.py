"""A background thread that calls a function every few seconds until its block ends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def every(seconds: float, task: Callable[[], object], *, name: str) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                task()
            except Exception:  # the database may be down for a while: try again next round
                log.warning("%s failed; retrying in %s s", name, seconds, exc_info=True)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=seconds + 10)
