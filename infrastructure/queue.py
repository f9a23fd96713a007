"""Dramatiq on Redis: the broker (keeping dead letters in PostgreSQL, `dead_letters.py`), the
intake actors, and the sweeper that re-sends what Redis may have lost. Messages are hints; the
inbox is the truth."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import q_name
from dramatiq.errors import ConnectionClosed

from infrastructure.channels.base import Lane
from infrastructure.dead_letters import DeadLetterRecorder
from infrastructure.inbox import INTAKE_ACTORS, PostgresInbox

log = logging.getLogger(__name__)

# A killed worker's messages return after its heartbeat is this old (ms)...
HEARTBEAT_TIMEOUT_MS = 10_000
# ...on the next command against that queue: every command runs maintenance (the default is one
# in a thousand, which left messages stranded for half an hour in a test). Maintenance is a
# sorted-set range query when no worker has died, so it costs next to nothing.
MAINTENANCE_EVERY_COMMAND = 1_000_000
INTAKE_RETRIES = 8
# How often a consumer looks for messages (ms) while its delay queue is idle or its threads are
# all busy: a message waits for it, so it is part of every intake's and every push's latency.
CONSUMER_POLL_MS = 20
# How long an idle consumer waits for its queue's doorbell before looking anyway (ms): a message
# enqueued without a ring (Dramatiq's own requeues, a dead worker's messages) waits at most this.
IDLE_WAIT_MS = 500
# Rings kept while no consumer waits: enough to wake every consumer of a queue in a few worker
# processes, few enough that stale rings cost an idle consumer only a few needless looks.
RINGS_KEPT = 16
# The intake lanes' queues (`Lane`'s values) start so: the worker serves them from a pool of
# their own.
INTAKE_QUEUES = "intake."


class DoorbellBroker(RedisBroker):
    """A Redis broker whose idle consumers wait for a ring instead of polling: every message
    enqueued on a queue rings the queue's doorbell (a Redis list), and a consumer with room for
    more messages blocks on it (BLPOP) for up to `idle_wait_ms`. Polled every 10-20 ms, a
    stored webhook waited 7.5 ms on average for its intake worker to look, and the looks, two
    consumers a queue with its delay queue, were a fifth of `invsync run`'s CPU under the
    propagation benchmark's load (py-spy). A delay queue's consumer waits so only while it
    holds no delayed message: one it holds must be moved on at its time, so it looks as
    Dramatiq does, every `CONSUMER_POLL_MS`."""

    def __init__(self, *, idle_wait_ms: int = IDLE_WAIT_MS, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self.idle_wait_ms = idle_wait_ms

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _WokenConsumer

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> Any:
        enqueued = super().enqueue(message, delay=delay)
        bell = self.doorbell(enqueued.queue_name)  # the queue's, or its delay queue's
        with self.client.pipeline(transaction=False) as ring:  # one round trip
            ring.lpush(bell, 1)
            ring.ltrim(bell, 0, RINGS_KEPT - 1)
            ring.execute()
        return enqueued

    def close(self) -> None:
        """Close the broker's connections to Redis, its consumers' waits among them (Dramatiq's
        own close leaves them open until the process ends)."""
        super().close()
        self.client.connection_pool.disconnect()

    def doorbell(self, queue_name: str) -> str:
        return f"{self.namespace}:{queue_name}.bell"


class _WokenConsumer(_RedisConsumer):
    """A queue's consumer that, finding nothing, waits for the queue's doorbell; Dramatiq's
    own consumer (its private class, pinned in pyproject: the wait is the one thing changed)
    sleeps instead. Its wait holds back no ack or nack: the worker thread that ran a message
    sends them through the broker at once, not with the consumer's next look, so a worker
    killed while its consumers wait has no finished message run again
    (`tests/unit/test_doorbell_consumer.py`, `tests/integration/test_queue_doorbell.py`)."""

    def __init__(self, broker: DoorbellBroker, queue_name: str, prefetch: int, timeout: int):
        # Dramatiq's wait after a look that found nothing goes (0 ms); `_wait` replaces it.
        super().__init__(broker, queue_name, prefetch, 0)  # type: ignore[no-untyped-call]
        self._bell = broker.doorbell(queue_name)
        self._poll = timeout / 1000
        # Holding this many, it looks again soon instead: with every thread busy, a ring taken
        # would be lost to the messages it announced; a delayed message held is moved on at
        # its time only between looks.
        self._held = prefetch if queue_name == q_name(queue_name) else 1

    def __next__(self) -> Any:
        message = super().__next__()  # type: ignore[no-untyped-call]
        if message is None:
            self._wait()
        return message

    def _wait(self) -> None:
        if self.outstanding_message_count >= self._held:
            time.sleep(self._poll)
            return
        try:
            self.broker.client.blpop([self._bell], timeout=self.broker.idle_wait_ms / 1000)
        except redis.ConnectionError as error:
            raise ConnectionClosed(error) from None  # type: ignore[no-untyped-call]


def make_broker(redis_url: str, database_url: str, namespace: str = "invsync") -> RedisBroker:
    broker = DoorbellBroker(
        url=redis_url,
        namespace=namespace,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_EVERY_COMMAND,
    )
    broker.add_middleware(DeadLetterRecorder(database_url))
    return broker


class IntakeQueues:
    """The intake actors on one broker: one queue per lane, so sales never wait behind
    receipts. Each message carries inbox ids; the actor applies what is still pending."""

    def __init__(
        self, broker: RedisBroker, process: Callable[[Sequence[int], str], object]
    ) -> None:
        self.broker = broker
        self.actors = {
            lane: dramatiq.actor(
                broker=broker,
                actor_name=name,
                queue_name=lane.value,
                max_retries=INTAKE_RETRIES,
                min_backoff=500,
                max_backoff=30_000,
            )(_applier(process, lane))
            for lane, name in INTAKE_ACTORS.items()
        }

    def send(self, lane: Lane, ids: Sequence[int]) -> None:
        self.actors[lane].send(list(ids))


def _applier(
    process: Callable[[Sequence[int], str], object], lane: Lane
) -> Callable[[list[int]], None]:
    def apply(ids: list[int]) -> None:
        process(ids, lane.value)

    return apply


class Sweeper:
    """Re-sends inbox deliveries still pending some seconds after their last send: losing Redis,
    a message or a worker loses nothing. Also sends, once their SKUs are known, the deliveries
    that waited for them."""

    def __init__(
        self,
        inbox: PostgresInbox,
        queues: IntakeQueues,
        known_skus: Callable[[set[str]], set[str]],
        *,
        after_seconds: float = 3.0,
        every_seconds: float = 1.0,
    ) -> None:
        self._inbox, self._queues, self._known_skus = inbox, queues, known_skus
        self._after, self._every = after_seconds, every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="inbox-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sweep_once(self) -> int:
        """Send what is still pending after a while, and what waited for SKUs the ledger now
        knows (received or counted since, by any route)."""
        rows = self._inbox.stale_pending(self._after)
        rows += self._inbox.release_waiting(self._known_skus)
        by_lane: dict[Lane, list[int]] = defaultdict(list)
        for row in rows:
            by_lane[Lane(row["lane"])].append(row["id"])
        for lane, ids in by_lane.items():
            for start in range(0, len(ids), 200):
                self._queues.send(lane, ids[start : start + 200])
        return len(rows)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if swept := self.sweep_once():
                    log.info("re-sent %d pending deliveries", swept)
            except Exception:  # Redis or PostgreSQL down: try again next round
                log.warning("sweep failed; retrying", exc_info=True)


@dataclass(frozen=True)
class Pool:
    """Worker threads of their own for the queues whose names start with `prefix` (and are no
    earlier pool's): work on other queues, however long it holds its threads (a drain staying
    on a busy channel, a reconciliation step waiting for a turn or for its readings to settle),
    never keeps these queues' messages waiting for a thread."""

    prefix: str
    threads: int


def pooled(queue_names: Iterable[str], pools: Sequence[Pool]) -> list[tuple[Pool, set[str]]]:
    """Each pool with the queues it serves (the first pool whose prefix a queue's name starts
    with), leaving out pools with none: a Dramatiq worker given no queues consumes every one."""
    served: dict[Pool, set[str]] = {pool: set() for pool in pools}
    for name in queue_names:
        pool = next((pool for pool in pools if name.startswith(pool.prefix)), None)
        if pool is not None:
            served[pool].add(name)
    return [(pool, names) for pool, names in served.items() if names]


class Workers:
    """In-process Dramatiq workers, one per pool of queues (`Pool`), plus the sweeper (for
    `invsync run` and `invsync worker`). Every queue declared on the broker when they start is
    served by the first pool whose prefix it matches; one matching none is not consumed here."""

    def __init__(
        self,
        queues: IntakeQueues,
        sweeper: Sweeper,
        pools: Sequence[Pool] = (Pool("", 4),),
        warm_up: Callable[[], object] | None = None,
    ) -> None:
        self._queues, self._sweeper, self._pools = queues, sweeper, tuple(pools)
        self._warm_up = warm_up
        self._workers: list[dramatiq.Worker] = []

    def start(self) -> None:
        if self._warm_up is not None:
            # Connections opened and what waits applied before the first message arrives.
            self._warm_up()
        broker = self._queues.broker
        broker.emit_after("process_boot")  # without it, time limits are silently off
        for pool, names in pooled(broker.get_declared_queues(), self._pools):
            worker = dramatiq.Worker(
                broker, queues=names, worker_threads=pool.threads, worker_timeout=CONSUMER_POLL_MS
            )
            worker.start()
            self._workers.append(worker)
            log.info("worker pool started: %d threads on %s", pool.threads, ", ".join(names))
        self._sweeper.start()

    def stop(self) -> None:
        self._sweeper.stop()
        for worker in self._workers:
            worker.stop()
        self._queues.broker.close()
