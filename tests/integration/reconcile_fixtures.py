"""Reconciliation on real PostgreSQL and Redis with hand-written steps: channels that reconcile,
and step functions that count their calls (the real orders poll and level check are tested
through their own seams)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import dramatiq

from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.queue import CONSUMER_POLL_MS, make_broker
from infrastructure.reconcile.actors import Reconcilers, RunQueue
from infrastructure.reconcile.runs import Counts, LevelStep, RunStore, Stepped
from infrastructure.reconcile.service import Reconciliation


def reconciled_channel(channel_id: str | None = None, **reconcile: object) -> ChannelConfig:
    """A WooCommerce channel with an API (so it reconciles), under a fresh id unless given."""
    return WooCommerceConfig(
        id=channel_id or f"woo-{uuid.uuid4().hex[:8]}",
        api_base_url="https://shop.example",
        webhook_secrets=("secret",),
        consumer_key="ck",
        consumer_secret="cs",
        reconcile=reconcile,
    )


@dataclass
class CountingSteps:
    """Steps that count what they were asked: each orders poll finds `orders` and applies one,
    each level check reads its SKUs (`catalogue` a page when it names none, in `pages` pages
    whose cursors are their numbers, listed in `pages_read`) and corrects one; with `settling`,
    a run's last level step answers that its readings settle that many seconds, and counts
    once it is sent again to judge them (when, in `judged_at`). A step takes `seconds`, and
    raises `fail_with` while `failures` lasts."""

    orders: int = 2
    catalogue: int = 10
    pages: int = 1
    pages_read: list[int] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0  # each step takes this long
    settling: float = 0.0
    judged_at: list[float] = field(default_factory=list)
    fail_with: BaseException = field(default_factory=lambda: ConnectionError("channel down"))
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reconcilers(self) -> Reconcilers:
        return Reconcilers(self.poll_orders, self.check_levels)

    def poll_orders(self, channel: ChannelConfig) -> Counts:
        self._count(channel.id, "orders")
        return Counts(orders_found=self.orders, orders_applied=1)

    def check_levels(self, channel: ChannelConfig, step: LevelStep) -> Stepped:
        if step.judging:
            self.judged_at.append(time.monotonic())
            return Stepped(Counts(skus_read=len(step.skus or ()), corrected=1))
        self._count(channel.id, "levels")
        if self.settling and step.last and step.skus is not None:
            return Stepped(settling=self.settling)
        if step.skus is not None:
            return Stepped(Counts(skus_read=len(step.skus), corrected=1))
        page = int(step.cursor or 0)
        self.pages_read.append(page)
        more = str(page + 1) if page + 1 < self.pages else None
        return Stepped(Counts(skus_read=self.catalogue, corrected=1), more)

    def _count(self, channel_id: str, what: str) -> None:
        time.sleep(self.seconds)
        with self._lock:
            failing = self.failures > 0
            self.failures -= 1
            if not failing:
                self.calls[(channel_id, what)] += 1
        if failing:
            raise self.fail_with


@contextmanager
def reconciliation(
    database_url: str, redis_url: str, channels: Sequence[ChannelConfig]
) -> Iterator[Reconciliation]:
    """Reconciliation of `channels` on a broker of its own namespace, not worked yet."""
    broker = make_broker(redis_url, database_url, f"test-{uuid.uuid4().hex[:8]}")
    store = RunStore(database_url, max_size=4)
    try:
        yield Reconciliation(store, RunQueue(broker), {c.id: c for c in channels})
    finally:
        store.close()
        broker.close()
        # Dramatiq's close leaves the pool's sockets to the collector, each consumer's (the
        # delay queue's too) a connection of its own.
        broker.client.connection_pool.disconnect()


@contextmanager
def working(
    reconciliation: Reconciliation, steps: CountingSteps, *, threads: int = 2, **serve: float
) -> Iterator[None]:
    """A Dramatiq worker of `threads` threads working `reconciliation`'s runs with `steps`
    until the block ends."""
    reconciliation.serve(steps.reconcilers(), **serve)
    broker = reconciliation.queue.actor.broker
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=CONSUMER_POLL_MS)
    worker.start()
    try:
        yield
    finally:
        worker.stop()
