"""The Dramatiq actor that works reconciliation runs, one step per message (`reconcile_step`
with a run id and a step number, on the `reconcile` queue): an orders poll, the levels of a
batch of SKUs, or a page of the catalogue. A step is claimed under a lease, renewed while it
runs, and counted only if the run is still at it, so a message delivered twice, or retried after
its work was recorded, changes nothing; a worker killed mid-step leaves the run to another once
its lease is over; a step that fails is retried by Dramatiq until the run gives up on it
(`runs.MAX_ATTEMPTS`), except when the channel asked for a wait (`step_wait`): then the step
waits that long, as the channel's pushes do, and spends none of its attempts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from application.reconcile_plan import Step, last_planned, step_at
from domain.errors import InvsyncError
from infrastructure import metrics
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import Throttled
from infrastructure.periodic import every
from infrastructure.reconcile import readings, runs
from infrastructure.reconcile.runs import Counts, LevelStep, Run, RunStore, Stepped

log = logging.getLogger(__name__)

QUEUE = "reconcile"
ACTOR = "reconcile_step"


@dataclass(frozen=True)
class Reconcilers:
    """What the steps do (Seam 1's orders poll and Seam 2's level check, bound to their
    dependencies), each answering with what it counted (a level step, also where the
    catalogue's next page starts)."""

    poll_orders: Callable[[ChannelConfig], Counts]
    check_levels: Callable[[ChannelConfig, LevelStep], Stepped]


def step_wait(error: Exception) -> float | None:
    """Seconds a failed step waits before it is tried again when the channel asked for a wait:
    a 429's `Retry-After`, or what the kind makes of a 429 naming none (eBay: twice the wait
    before it in a row, never past eBay's next day, when a spent daily call limit starts
    again; `ebay/call_limits.py`), the same `Throttled.retry_after` the pushers pause the
    channel for. None for any other failure, which spends one of the run's attempts: a spent
    day would otherwise fail every run until Pacific midnight, each after `MAX_ATTEMPTS` calls."""
    return error.retry_after if isinstance(error, Throttled) else None


class Send(Protocol):
    """Sends a run's step, to be worked `delay` seconds from now at the earliest (`judging`:
    the last level step, its page read, sent again to judge its readings)."""

    def __call__(
        self, run_id: int, step: int, delay: float = 0.0, *, judging: bool = False
    ) -> None: ...


class UnknownRunChannel(InvsyncError):
    """Raised when a run names a channel the configuration no longer holds."""


class StepWorker:
    """Works the step a message names, then sends the run's next step (`send`: run, step,
    seconds to delay it)."""

    def __init__(
        self,
        store: RunStore,
        channels: Mapping[str, ChannelConfig],
        reconcilers: Reconcilers,
        send: Send,
        *,
        lease: float = runs.LEASE_SECONDS,
    ) -> None:
        self._store, self._channels, self._reconcilers = store, channels, reconcilers
        self._send, self._lease = send, lease

    def work(self, run_id: int, step: int, *, judging: bool = False) -> Run | None:
        """Work `step` of the run unless it is past it or leased by another worker; returns the
        run as the step left it (None: nothing was done). `judging`: the run's last level step
        sent again once its page was read. Raises what the step raised while the run still
        retries it."""
        with self._store.connection() as conn:
            run = runs.claim(conn, run_id, step, self._lease)
        if run is None:
            return None
        try:
            with every(self._lease / 3, lambda: self._renew(run, step), name="reconcile-lease"):
                stepped = self._stepped(run, step, judging)
        except Exception as error:  # recorded on the run, then waited, retried or given up
            return self._failed(run, step, error)
        if stepped.settling is not None:
            return self._settling(run, step, stepped.settling)
        return self._advanced(run, step, stepped)

    def _renew(self, run: Run, step: int) -> None:
        with self._store.connection() as conn:
            runs.renew(conn, run.id, step, self._lease)

    def _stepped(self, run: Run, index: int, judging: bool) -> Stepped:
        channel = self._channels.get(run.channel_id)
        if channel is None:
            raise UnknownRunChannel(f"channel {run.channel_id!r} is no longer configured")
        step = step_at(run.what, run.skus, index)
        return Stepped() if step is None else self._do(run, index, step, channel, judging)

    def _do(
        self, run: Run, index: int, step: Step, channel: ChannelConfig, judging: bool
    ) -> Stepped:
        if step.what == "orders":
            return Stepped(self._reconcilers.poll_orders(channel))
        cursor = run.page_cursor if step.skus is None else None
        last = last_planned(run.what, run.skus, index)
        level_step = LevelStep(run.id, step.skus, cursor, last, judging)
        return self._reconcilers.check_levels(channel, level_step)

    def _failed(self, run: Run, step: int, error: Exception) -> Run | None:
        wait = step_wait(error)
        if wait is not None:
            self._waiting(run, step, wait, error)
            return None
        with self._store.connection() as conn:
            gave_up = runs.failed(conn, run.id, step, f"{type(error).__name__}: {error}")
            if gave_up:
                readings.discard(conn, run.id)  # the next run reads them again
        if not gave_up:
            raise error
        log.warning("reconciliation run %d of %s failed: %s", run.id, run.channel_id, error)
        count_reconciled(run, Counts(), "failed")
        return None

    def _waiting(self, run: Run, step: int, wait: float, error: Exception) -> None:
        why = f"{type(error).__name__}: {error}; waiting {wait:.0f} s as the channel asked"
        with self._store.connection() as conn:
            held = runs.wait(conn, run.id, step, wait, why)
        if held:  # the lease ends with the wait: the delayed message finds the step free
            log.info("reconciliation run %d of %s: %s", run.id, run.channel_id, why)
            self._send(run.id, step, wait)

    def _settling(self, run: Run, step: int, seconds: float) -> Run:
        # Sent again rather than waited out, so the thread works other messages meanwhile;
        # held for the wait, so neither `to_send` nor a message delivered twice reads the
        # page again before the delayed message judges it.
        with self._store.connection() as conn:
            held = runs.wait(conn, run.id, step, seconds, None)
        if held:
            self._send(run.id, step, seconds, judging=True)
        return run

    def _advanced(self, run: Run, step: int, stepped: Stepped) -> Run | None:
        with self._store.connection() as conn:
            after = runs.advance(conn, run.id, step, stepped.counts, stepped.next_page)
            if after is not None and after.state == "done":
                readings.discard(conn, run.id)  # judged, kept only while a step could resume
        if after is None:
            return None
        count_reconciled(after, stepped.counts, after.state)
        if after.state == "running":
            self._send(after.id, after.step)
        return after


def count_reconciled(run: Run, counts: Counts, outcome: str) -> None:
    """Count what a step of `run` found, and the run once it finished (`outcome` done or
    failed; running: not yet)."""
    channel = run.channel_id
    metrics.RECONCILE_ORDERS.labels(channel, "found").inc(counts.orders_found)
    metrics.RECONCILE_ORDERS.labels(channel, "applied").inc(counts.orders_applied)
    metrics.RECONCILE_SKUS_READ.labels(channel).inc(counts.skus_read)
    metrics.RECONCILE_DRIFT.labels(channel, "small").inc(counts.corrected)
    metrics.RECONCILE_DRIFT.labels(channel, "large").inc(counts.escalated)
    if outcome != "running":
        metrics.RECONCILE_RUNS.labels(channel, run.scope, outcome).inc()


class RunQueue:
    """The `reconcile_step` actor on `broker`, working messages through `worker` once it is
    given (`serve`): a process that only asks for runs sends without working them."""

    def __init__(self, broker: RedisBroker) -> None:
        self._worker: StepWorker | None = None
        self.actor = dramatiq.actor(
            broker=broker,
            actor_name=ACTOR,
            queue_name=QUEUE,
            max_retries=runs.MAX_ATTEMPTS,
            min_backoff=1_000,
            max_backoff=60_000,
        )(self._work)

    def serve(self, worker: StepWorker) -> None:
        self._worker = worker

    def send(self, run_id: int, step: int, delay: float = 0.0, *, judging: bool = False) -> None:
        """Send the run's `step`, to be worked `delay` seconds from now at the earliest
        (`judging`: the last level step, its page read, to judge its readings)."""
        args = (run_id, step, True) if judging else (run_id, step)
        self.actor.send_with_options(args=args, delay=round(delay * 1000) or None)

    def _work(self, run_id: int, step: int, judging: bool = False) -> None:
        if self._worker is None:
            raise RuntimeError("this process sends reconciliation runs; it does not work them")
        self._worker.work(run_id, step, judging=judging)
