"""The broker's doorbells: an idle consumer waits for a ring, not for its next look, and what
arrives without a ring, or while every thread is busy, is still taken; a finished message is
acknowledged while its consumer waits. Real Redis and Dramatiq workers; each test's idle wait is
far longer than what it allows, so a message (or an ack) that waited for it fails the test."""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from infrastructure.queue import CONSUMER_POLL_MS, DoorbellBroker
from tests.integration.intake_fixtures import wait_until

LONG_WAIT_MS = 5_000


class Ran:
    """When each message ran (monotonic clock)."""

    def __init__(self, takes: float = 0.0) -> None:
        self.at: list[float] = []
        self.takes = takes
        self._lock = threading.Lock()

    def __call__(self) -> None:
        time.sleep(self.takes)
        with self._lock:
            self.at.append(time.monotonic())


@pytest.fixture
def broker(redis_url) -> Iterator[DoorbellBroker]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    # Its connections carry the namespace as their name, so CLIENT LIST tells its waits apart.
    client = redis.Redis.from_url(redis_url, client_name=namespace)
    broker = DoorbellBroker(client=client, namespace=namespace, idle_wait_ms=LONG_WAIT_MS)
    yield broker
    broker.close()


@contextmanager
def worker(broker: DoorbellBroker, threads: int = 2) -> Iterator[None]:
    running = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=CONSUMER_POLL_MS)
    running.start()
    time.sleep(0.3)  # every consumer has looked, found nothing and waits
    try:
        yield
    finally:
        running.stop()


def actor(broker: DoorbellBroker, ran: Ran) -> dramatiq.Actor:
    return dramatiq.actor(broker=broker, actor_name="ran", queue_name="doorbell", max_retries=0)(
        ran
    )


def test_a_message_to_an_idle_worker_runs_at_once_not_after_the_consumers_wait(broker):
    ran = Ran()
    ring = actor(broker, ran)
    with worker(broker):
        sent = time.monotonic()
        ring.send()
        wait_until(lambda: ran.at, timeout=LONG_WAIT_MS / 1000 + 2, every=0.005)
    assert ran.at[0] - sent < 0.25


def test_a_message_enqueued_without_a_ring_runs_within_the_idle_wait(redis_url):
    broker = DoorbellBroker(
        url=redis_url, namespace=f"test-{uuid.uuid4().hex[:8]}", idle_wait_ms=300
    )
    ran = Ran()
    silent = actor(broker, ran)
    try:
        with worker(broker):
            # As Dramatiq's own requeues and a dead worker's messages return: no ring.
            RedisBroker.enqueue(broker, silent.message())
            wait_until(lambda: ran.at, timeout=2)
    finally:
        broker.close()


def test_messages_beyond_what_the_busy_threads_hold_run_without_waiting_for_a_ring(broker):
    ran = Ran(takes=0.05)
    busy = actor(broker, ran)
    with worker(broker, threads=1):  # prefetches 2: the other 4 wait in Redis
        started = time.monotonic()
        for _ in range(6):
            busy.send()
        wait_until(lambda: len(ran.at) == 6, timeout=LONG_WAIT_MS / 1000 + 2, every=0.01)
    assert max(ran.at) - started < 2.0


def test_a_delayed_message_runs_at_its_time_not_after_the_consumers_wait(broker):
    ran = Ran()
    later = actor(broker, ran)
    with worker(broker):
        sent = time.monotonic()
        later.send_with_options(delay=300)
        wait_until(lambda: ran.at, timeout=LONG_WAIT_MS / 1000 + 2, every=0.01)
    assert 0.3 <= ran.at[0] - sent < 1.0


def settled(broker: DoorbellBroker, queue_name: str) -> bool:
    """Whether nothing of the queue is in progress in Redis: no message taken and not yet
    acknowledged (the broker's ack set), none stored under it."""
    taken = f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_name}"
    stored = f"{broker.namespace}:{queue_name}.msgs"
    return broker.client.scard(taken) == 0 and broker.client.hlen(stored) == 0


def waiting(broker: DoorbellBroker) -> int:
    """How many of the broker's connections are blocked in a doorbell's BLPOP."""
    return sum(
        1
        for client in broker.client.client_list()
        if client["name"] == broker.namespace
        and client["cmd"] == "blpop"
        and "b" in client["flags"]
    )


def fails() -> None:
    raise RuntimeError("refused")


def settles_while_consumers_wait(broker: DoorbellBroker, done: Callable[[], object]) -> None:
    """`done` holds within half the idle wait, and the queue's consumers (its own and its
    delay queue's) are still waiting on their doorbells: a worker killed before the ack or
    nack reaches Redis has its message run again, so it never waits for a consumer's look."""
    wait_until(done, timeout=LONG_WAIT_MS / 1000 / 2)
    assert settled(broker, "doorbell")
    wait_until(lambda: waiting(broker) == 2, timeout=LONG_WAIT_MS / 1000 / 2)


def test_a_finished_message_is_acknowledged_while_its_idle_consumer_waits(broker):
    ran = Ran()
    one = actor(broker, ran)
    with worker(broker):
        one.send()
        settles_while_consumers_wait(broker, lambda: ran.at and settled(broker, "doorbell"))


def test_a_failed_message_is_dead_lettered_while_its_idle_consumer_waits(broker):
    failing = dramatiq.actor(
        broker=broker, actor_name="fails", queue_name="doorbell", max_retries=0
    )(fails)
    dead = f"{broker.namespace}:doorbell.XQ"
    with worker(broker):
        failing.send()
        settles_while_consumers_wait(broker, lambda: broker.client.zcard(dead) == 1)
