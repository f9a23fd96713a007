"""Reconciliation as one process holds it: the run table, the queue its steps go through, and
the channels it may run for. `request_check` is the one way anything asks for a run (the API,
the CLI, a Shopify stale compare-and-set, an observation that is not an echo)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from application.reconcile_plan import What
from domain.errors import InvsyncError
from infrastructure import outbox
from infrastructure.channels.config import ChannelConfig
from infrastructure.reconcile import runs
from infrastructure.reconcile.actors import Reconcilers, RunQueue, StepWorker
from infrastructure.reconcile.review import supersede_overridden
from infrastructure.reconcile.runs import LEASE_SECONDS, RESEND_SECONDS, Run, RunStore
from infrastructure.reconcile.scheduler import Scheduler
from infrastructure.reconcile.triggers import Triggers


class NotReconciled(InvsyncError):
    """Raised when a run is asked for a channel that is not configured, has no API, or has
    reconciliation switched off (`[channels.reconcile] enabled = false`)."""


@dataclass
class Reconciliation:
    """Runs of `channels` (those that reconcile), recorded in `store`, worked through `queue`."""

    store: RunStore
    queue: RunQueue
    channels: Mapping[str, ChannelConfig]

    def request_check(
        self,
        channel_id: str,
        skus: Sequence[str] | None,
        *,
        what: What = "levels",
        by: str = "",
    ) -> int:
        """Ask for a run of `what` over `skus` (None: every SKU the channel lists) and send it;
        returns its id (a queued run's, when the SKUs join it).

        Raises:
            NotReconciled: the channel is unknown or not reconciled.
        """
        if not self.reconciles(channel_id):
            raise NotReconciled(f"channel {channel_id!r} is not reconciled")
        with self.store.connection() as conn:
            run_id = runs.request_check(conn, channel_id, skus, what=what, by=by)
        self.queue.send(run_id, 0)  # a queued run sent twice is claimed once
        return run_id

    def reconciles(self, channel_id: str) -> bool:
        """Whether the channel is configured and reconciled."""
        channel = self.channels.get(channel_id)
        return channel is not None and channel.reconciles

    def latest(self, channel_id: str, limit: int = 20) -> list[Run]:
        """The channel's newest runs, newest first."""
        with self.store.connection() as conn:
            return runs.latest(conn, channel_id, limit)

    def run(self, run_id: int) -> Run | None:
        with self.store.connection() as conn:
            return runs.get(conn, run_id)

    def scheduler(self, *, resend_after: float = RESEND_SECONDS) -> Scheduler:
        """The scheduler of every channel that reconciles, sending through the queue."""
        return Scheduler(
            self.store,
            list(self.channels.values()),
            self.queue.send,
            self._active_skus,
            resend_after=resend_after,
        )

    def triggers(self) -> Callable[[], object]:
        """A tick of the level checks that observations not echoing our pushes ask for, which
        also closes the discrepancies a push has superseded since (`supersede_overridden`)."""
        reconciled = [c.id for c in self.channels.values() if c.reconciles]
        triggers = Triggers(self.request_check, reconciled)

        def tick() -> object:
            with self.store.connection() as conn:
                supersede_overridden(conn)
                return triggers.tick(conn)

        return tick

    def serve(self, reconcilers: Reconcilers, *, lease: float = LEASE_SECONDS) -> StepWorker:
        """Work this process's messages with `reconcilers`."""
        worker = StepWorker(self.store, self.channels, reconcilers, self.queue.send, lease=lease)
        self.queue.serve(worker)
        return worker

    def close(self) -> None:
        self.store.close()

    def _active_skus(self, channel_id: str) -> list[str]:
        with self.store.connection() as conn:
            return outbox.active_skus(conn, channel_id)
