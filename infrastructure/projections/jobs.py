"""Rebuilds started through the API: one at a time per projection, in a thread of their own,
with their progress and their last report kept for whoever asks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.allocation import ChannelRule
from domain.errors import InvsyncError
from infrastructure.projections.availability import NAME
from infrastructure.projections.rebuild import Rebuild, RebuildReport, RebuildStuck

log = logging.getLogger(__name__)


class RebuildRunning(InvsyncError):
    """Raised when a rebuild of the projection is asked for while one is still running."""


class UnknownProjection(InvsyncError):
    """Raised when no projection has the name asked for."""


@dataclass
class RebuildJob:
    projection: str
    started_at: datetime
    done: int = 0  # notification position reached
    aim: int = 0  # position to reach
    finished_at: datetime | None = None
    report: RebuildReport | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None


class RebuildJobs:
    """Starts rebuilds of the ledger at `database_url` under `rules`, and remembers them."""

    def __init__(
        self,
        database_url: str,
        rules: Sequence[ChannelRule],
        rebuild: Callable[[str, Sequence[ChannelRule]], Rebuild] = Rebuild,
    ) -> None:
        self._rebuild = rebuild(database_url, rules)
        self._jobs: dict[str, RebuildJob] = {}
        self._lock = threading.Lock()

    def start(self, projection: str) -> RebuildJob:
        """Start a rebuild. Raises `UnknownProjection` or `RebuildRunning`."""
        if projection != NAME:
            raise UnknownProjection(f"no projection {projection!r}; known: {NAME}")
        with self._lock:
            current = self._jobs.get(projection)
            if current is not None and current.running:
                raise RebuildRunning(f"a rebuild of {projection} is running already")
            job = self._jobs[projection] = RebuildJob(projection, datetime.now(UTC))
        threading.Thread(target=self._run, args=(job,), name=f"rebuild-{projection}").start()
        return job

    def last(self, projection: str) -> RebuildJob | None:
        if projection != NAME:
            raise UnknownProjection(f"no projection {projection!r}; known: {NAME}")
        return self._jobs.get(projection)

    def _run(self, job: RebuildJob) -> None:
        def progress(done: int, aim: int) -> None:
            job.done, job.aim = done, aim

        try:
            job.report = self._rebuild.run(progress)
        except RebuildStuck as error:  # not done: the projection cannot go on past it
            log.error("rebuild of %s did not finish: %s", job.projection, error)
            job.error = f"{type(error).__name__}: {error}"
        except Exception as error:  # the job's record says it failed; the service goes on
            log.exception("rebuild of %s failed", job.projection)
            job.error = f"{type(error).__name__}: {error}"
        finally:
            job.finished_at = datetime.now(UTC)
