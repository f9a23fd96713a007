"""Hints to the intake workers that deliveries were stored, sent off the event loop and
coalesced: one thread sends whatever commits have stored since its last send, one message per
lane, so at full rate many commits share one Redis round trip instead of each taking a thread
pool's turn and a round trip of its own (a profile under load found the thread pool's hand-off
and the per-commit sends costing a tenth of the webhook path). A hint is never waited for:
while Redis is slow or down, ids beyond `max_waiting` are dropped, and the sweeper re-sends from
the inbox, which is the truth."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from application.intake_processing import BATCH
from infrastructure.channels.base import Lane
from infrastructure.inbox import Stored

log = logging.getLogger(__name__)

# A worker applies at most this many deliveries a message: ids beyond it in one message would
# wait for the sweeper.
MESSAGE_IDS = BATCH
MAX_WAITING = 20_000  # ids: some seconds of full-rate intake while Redis does not answer

Send = Callable[[Lane, list[int]], None]


def messages(pending: Sequence[tuple[str, int]]) -> list[tuple[Lane, list[int]]]:
    """The messages that hint `pending` (lane, inbox id) pairs: per lane in order of first
    appearance, ids in the order given, at most `MESSAGE_IDS` a message."""
    by_lane: dict[str, list[int]] = {}
    for lane, delivery_id in pending:
        by_lane.setdefault(lane, []).append(delivery_id)
    return [
        (Lane(lane), ids[start : start + MESSAGE_IDS])
        for lane, ids in by_lane.items()
        for start in range(0, len(ids), MESSAGE_IDS)
    ]


class HintSender:
    """Takes hints from any thread (the event loop's group commits, an orders poll) without
    waiting, and sends them from a thread of its own, started at the first hint."""

    def __init__(self, send: Send, *, max_waiting: int = MAX_WAITING) -> None:
        self._send = send
        self._max_waiting = max_waiting
        self._ready = threading.Condition()
        self._pending: list[tuple[str, int]] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._dropping = False

    def hint(self, stored: Sequence[Stored]) -> None:
        """Have the stored deliveries among `stored` (those with an id) sent to their lanes'
        workers soon; dropped, for the sweeper, when too many wait already."""
        new = [(s.delivery.lane, s.id) for s in stored if s.id is not None]
        if not new:
            return
        with self._ready:
            if self._closed:
                return
            if len(self._pending) + len(new) > self._max_waiting:
                if not self._dropping:  # once until a send succeeds, not once a commit
                    log.warning(
                        "%d hints wait already; the sweeper sends the next ones", len(self._pending)
                    )
                self._dropping = True
                return
            self._pending.extend(new)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="intake-hints", daemon=True)
                self._thread.start()
            self._ready.notify()

    def close(self) -> None:
        """Stop sending; hints not sent yet are left to the sweeper."""
        with self._ready:
            self._closed = True
            self._pending = []
            self._ready.notify()

    def _loop(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                pending, self._pending = self._pending, []
            for lane, ids in messages(pending):
                try:
                    self._send(lane, ids)
                except Exception as error:
                    log.warning(
                        "could not enqueue %d deliveries (%s); the sweeper will", len(ids), error
                    )
                    continue
                with self._ready:  # hint() reads and sets it under the lock
                    self._dropping = False
