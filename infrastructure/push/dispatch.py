"""Turning outbox changes into work: one Dramatiq queue and actor per channel account
(`push.<channel>`), and a dispatcher that asks a channel's queue for a drain whenever its outbox
holds something, unless the channel is paused or its breaker is open.

A message is only a nudge: the rows it is about stay in PostgreSQL until the channel
acknowledges them, so a message lost, or a worker killed, costs one dispatcher tick."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

import dramatiq
import psycopg
import redis
from dramatiq.brokers.redis import RedisBroker
from psycopg.sql import SQL, Identifier

from infrastructure.projections.availability import PROJECTION_CHANNEL
from infrastructure.push.limits import LimitsBackend
from infrastructure.push.pusher import Pusher
from infrastructure.push.store import PushStore

log = logging.getLogger(__name__)

# Every channel's queue is `push.<channel>`: the worker serves them from a pool of their own.
PUSH_QUEUES = "push."


class PushQueues:
    def __init__(self, broker: RedisBroker, pushers: Mapping[str, Pusher]) -> None:
        self.broker = broker
        self.actors = {
            channel_id: dramatiq.actor(
                broker=broker,
                actor_name=f"push_{channel_id}",
                queue_name=f"{PUSH_QUEUES}{channel_id}",
                max_retries=3,  # failures of the channel never reach here: bugs, or storage
                min_backoff=200,
                max_backoff=5_000,
            )(_drainer(pusher))
            for channel_id, pusher in pushers.items()
        }

    def send(self, channel_id: str) -> None:
        self.actors[channel_id].send()


def _drainer(pusher: Pusher) -> Callable[[], None]:
    def drain() -> None:
        try:
            pusher.drain()
        except (psycopg.OperationalError, redis.ConnectionError) as error:
            # The dispatcher nudges again once storage is back; retrying here would only
            # pile the same nudge up behind it.
            log.warning("push to %s paused: %s", pusher.channel_id, error)

    return drain


class Dispatcher:
    """Nudges each channel with pending rows every `every` seconds, and at once when a
    projection commits; at most once per `nudge_spacing` seconds per channel across all
    dispatchers (a limiter of theirs), so many dispatchers do not flood a queue."""

    def __init__(
        self,
        database_url: str,
        store: PushStore,
        queues: PushQueues,
        pushers: Mapping[str, Pusher],
        limits: LimitsBackend,
        *,
        every: float = 0.25,
        nudge_spacing: float = 0.02,
        namespace: str = "invsync",
    ) -> None:
        self._database_url, self._store, self._queues = database_url, store, queues
        self._pushers, self._every = pushers, every
        self._nudges = {
            channel_id: limits.limiter(f"{namespace}:push:{channel_id}:nudged", nudge_spacing)
            for channel_id in pushers
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="push-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def nudge_once(self) -> list[str]:
        """Send a drain to every channel with pending rows that may be called now."""
        nudged = []
        # Every few hundred ms in every process: which channels wait, not how much (a down
        # channel's backlog can be 600,000 rows).
        for channel_id in self._store.waiting(list(self._pushers)):
            pusher = self._pushers[channel_id]
            if pusher.gate.closed_for() > 0 or pusher.gate.busy():
                continue  # it asked us to wait, or a drain is on it
            if self._nudges[channel_id].take(wait=0):
                self._queues.send(channel_id)
                nudged.append(channel_id)
        return nudged

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._database_url, autocommit=True) as conn:
                    conn.execute(SQL("LISTEN {}").format(Identifier(PROJECTION_CHANNEL)))
                    while not self._stop.is_set():
                        self.nudge_once()
                        for _ in conn.notifies(timeout=self._every, stop_after=1):
                            # A projection moved: drains lingering here look at once, the
                            # others are nudged now rather than at the next tick.
                            for pusher in self._pushers.values():
                                pusher.wake()
            except (psycopg.OperationalError, redis.ConnectionError) as error:
                log.warning("push dispatcher paused: %s", error)
                self._stop.wait(1.0)
