"""Keeping a projection up with the ledger, a batch per transaction, woken by LISTEN/NOTIFY; and
waiting for a projection to reach a position without polling.

The library's `ProjectionRunner` gives each event a transaction of its own, which caps a view
at a few hundred events a second; a batch folds up to `batch_size` events into the rows they
touch and moves the tracking position once, in the same transaction (still exactly once). Its
`wait()` polls at 100-800 ms steps; `ProjectionWaiter` listens for the position instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self, cast

from eventsourcing.persistence import InfrastructureFactory, OperationalError, PersistenceError
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import Environment
from prometheus_client import Counter, Gauge
from psycopg import Error as PsycopgError
from psycopg.sql import SQL, Identifier

from application.ledger import Ledger
from domain.allocation import ChannelRule
from domain.errors import InvsyncError
from infrastructure.projections.availability import NAME, PROJECTION_CHANNEL, AvailabilityView

log = logging.getLogger(__name__)

# After this many failures in a row on the same event, the projection says it is stuck.
STUCK_AFTER = 5
STUCK = Gauge(
    "invsync_projection_stuck",
    "1 while a projection keeps failing to fold the same ledger event",
    ["projection"],
)
FAILURES = Counter(
    "invsync_projection_failures_total", "Failed attempts to fold a batch", ["projection"]
)


class ProjectionStuck(InvsyncError):
    """Raised (by a readiness probe) when a projection keeps failing on the same event."""


def open_view(env: dict[str, str], schema: str = "", *, create: bool = False) -> AvailabilityView:
    """The availability view on the database of `env`, in `schema` (default: the live one)."""
    settings = {**env, "CREATE_TABLE": "y" if create else "n"}
    if schema:
        settings["POSTGRES_SCHEMA"] = schema
    factory = InfrastructureFactory[AvailabilityView].construct(env=Environment(NAME, settings))
    return factory.tracking_recorder(AvailabilityView)


class AvailabilityRunner:
    """Runs the availability projection in a thread of its own until stopped.

    Parameters:
      env: the ledger's `eventsourcing` settings.
      rules: the configured allocation rules (recorded rule changes apply over them).
      batch_size: the most events folded in one transaction.
    """

    def __init__(
        self, env: dict[str, str], rules: Sequence[ChannelRule], *, batch_size: int = 1000
    ) -> None:
        self.app = Ledger(env={**env, "CREATE_TABLE": "n"})
        self.view = open_view(env)
        self.rules = tuple(rules)
        self.batch_size = batch_size
        self.position = self.view.max_tracking_id(self.app.name) or 0
        self.error: BaseException | None = None
        self.stuck: str | None = None  # why, while it keeps failing on the same event
        self._failures = (self.position, 0)  # (position it failed after, times in a row)
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name="projection-availability", daemon=True),
            threading.Thread(target=self._listen, name="projection-listen", daemon=True),
        ]

    def start(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._woken.set()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=10)

    def run_forever(self) -> None:
        """Block until stopped; re-raise what stopped the runner, if it failed."""
        while not self._stopping.wait(0.5):
            pass
        if self.error is not None:
            raise self.error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.app.close()
        self.view.close()

    def wait(self, position: int, timeout: float = 5.0) -> bool:
        """True once the view has folded the ledger up to `position` (see `ProjectionWaiter`)."""
        return ProjectionWaiter(self.view, self.app.name).wait(position, timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if not self._step():
                    self._woken.wait(timeout=1.0)  # a NOTIFY, or a look anyway
                    self._woken.clear()
                self._recovered()
            except (PersistenceError, PsycopgError) as error:
                # The database is away, or refuses what this batch writes: keep the position,
                # try again, and say loudly when it is the same event again and again.
                self._failed(error)
                self._stopping.wait(1.0)
            except BaseException as error:
                log.exception("availability projection stopped")
                self.error = error
                self._stopping.set()

    def check(self) -> None:
        """A readiness probe: raises `ProjectionStuck` while the projection cannot go on."""
        if self.stuck is not None:
            raise ProjectionStuck(self.stuck)

    def _failed(self, error: BaseException) -> None:
        FAILURES.labels(NAME).inc()
        at, times = self._failures
        times = times + 1 if at == self.position else 1
        self._failures = (self.position, times)
        if times < STUCK_AFTER:
            log.warning("availability projection paused: %s", error)
            return
        if self.stuck is None:
            self.stuck = (
                f"the availability projection cannot fold the ledger after position "
                f"{self.position} ({times} attempts): {error}"
            )
            log.error("%s; pushes and read-your-writes wait until it is mended", self.stuck)
        STUCK.labels(NAME).set(1)

    def _recovered(self) -> None:
        if self._failures[1]:
            self._failures = (self.position, 0)
        if self.stuck is not None:
            log.info("availability projection goes on after position %s", self.position)
            self.stuck = None
            STUCK.labels(NAME).set(0)

    def _step(self) -> bool:
        notifications = self.app.recorder.select_notifications(
            start=self.position,
            limit=self.batch_size,
            inclusive_of_start=False,
        )
        if not notifications:
            return False
        events = [(n.id, self.app.mapper.to_domain_event(n)) for n in notifications]
        self.position = self.view.apply_batch(self.app.name, events, self.rules)
        return True

    def _listen(self) -> None:
        recorder = cast(PostgresApplicationRecorder, self.app.recorder)
        channel = SQL("LISTEN {}").format(Identifier(recorder.channel_name))
        while not self._stopping.is_set():
            try:
                with recorder.datastore.get_connection() as conn:
                    conn.execute(channel)
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._woken.set()
            except (OperationalError, PsycopgError):
                self._stopping.wait(1.0)


class ProjectionWaiter:
    """Waits until a projection has folded a ledger position, by listening for its NOTIFY."""

    def __init__(self, view: AvailabilityView, application_name: str = Ledger.name) -> None:
        self.view = view
        self.application_name = application_name

    def wait(self, position: int, timeout: float = 5.0) -> bool:
        """True once the projection has reached `position`; False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        listen = SQL("LISTEN {}").format(Identifier(PROJECTION_CHANNEL))
        with self.view.datastore.get_connection() as conn:
            conn.execute(listen)
            conn.commit()
            try:
                # Listening first, then looking: a position reached in between is not missed.
                if (self.view.max_tracking_id(self.application_name) or 0) >= position:
                    return True
                while (remaining := deadline - time.monotonic()) > 0:
                    for note in conn.notifies(timeout=remaining, stop_after=1):
                        name, _, reached = note.payload.partition(":")
                        if name == NAME and int(reached) >= position:
                            return True
                return False
            finally:  # the connection goes back to the pool: it must not keep listening
                conn.execute(SQL("UNLISTEN {}").format(Identifier(PROJECTION_CHANNEL)))
                conn.commit()
