"""The scheduler every `invsync run` and `invsync worker` starts: each tick it makes the due runs
of every channel that reconciles (one per schedule's slot, however many processes tick at once:
the run table's unique slot key decides) and sends them, then re-sends the open runs nobody
works on (their message lost, or their worker dead past its lease)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from application.reconcile_plan import Due, cadences, due_runs
from infrastructure.channels.config import ChannelConfig
from infrastructure.reconcile import runs
from infrastructure.reconcile.runs import RunStore

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0  # how soon a due run, or a lost one, is sent


class Scheduler:
    """Makes and sends due runs of `channels`; `active_skus` names a channel's SKUs that
    changed or sold lately (the `active` schedule's)."""

    def __init__(
        self,
        store: RunStore,
        channels: Sequence[ChannelConfig],
        send: Callable[[int, int], None],
        active_skus: Callable[[str], list[str]],
        *,
        resend_after: float = runs.RESEND_SECONDS,
    ) -> None:
        self._store, self._send, self._active_skus = store, send, active_skus
        self._channels = [channel for channel in channels if channel.reconciles]
        self._resend_after = resend_after
        # The slots this process has asked for: each is asked for once, not every tick.
        self._asked: set[tuple[str, str]] = set()

    def tick(self, now: datetime | None = None) -> list[int]:
        """Make and send what is due at `now`, re-send what is lost; returns the runs sent."""
        return self.schedule(now or datetime.now(UTC)) + self.resend()

    def schedule(self, now: datetime) -> list[int]:
        """Make and send the runs due at `now` that no process made yet; returns them."""
        due = [(channel, d) for channel in self._channels for d in self._due(channel, now)]
        fresh = [(channel, d) for channel, d in due if (channel.id, d.key) not in self._asked]
        made = [run_id for channel, d in fresh if (run_id := self._schedule(channel, d))]
        self._asked = {(channel.id, d.key) for channel, d in due}
        for run_id in made:
            self._send(run_id, 0)
        return made

    def resend(self) -> list[int]:
        """Send again the open runs of these channels nobody works on; returns them."""
        with self._store.connection() as conn:
            lost = runs.to_send(conn, [c.id for c in self._channels], self._resend_after)
        for run_id, step in lost:
            self._send(run_id, step)
        return [run_id for run_id, _ in lost]

    def _due(self, channel: ChannelConfig, now: datetime) -> list[Due]:
        every = channel.reconcile
        schedules = cadences(
            every.orders_every_seconds, every.active_every_seconds, every.catalog_every_seconds
        )
        return due_runs(channel.id, schedules, now)

    def _schedule(self, channel: ChannelConfig, due: Due) -> int | None:
        skus = self._active_skus(channel.id) if due.scope == "active" else None
        with self._store.connection() as conn:
            return runs.schedule(conn, channel.id, due, skus)
