"""Propagation running for a test: the availability projection, the pushers on a broker of
their own, a Dramatiq worker and the dispatcher, against channels the test provides."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import dramatiq
import redis

from domain.allocation import ChannelRule
from infrastructure.channels.gateway import ChannelGateway
from infrastructure.config import PushConfig
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from infrastructure.push.service import Propagation, build_propagation
from infrastructure.queue import make_broker


@contextmanager
def propagating(
    database_url: str,
    redis_url: str,
    gateways: Mapping[str, tuple[ChannelGateway, PushConfig]],
    rules: Sequence[ChannelRule],
    *,
    threads: int = 4,
) -> Iterator[Propagation]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    broker = make_broker(redis_url, database_url, namespace)
    client = redis.Redis.from_url(redis_url)
    propagation = build_propagation(database_url, broker, client, gateways, namespace)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    with AvailabilityRunner(eventsourcing_env(database_url), rules):
        worker.start()
        propagation.start()
        try:
            yield propagation
        finally:
            propagation.stop()
            worker.stop()
            broker.close()
            client.close()


def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
