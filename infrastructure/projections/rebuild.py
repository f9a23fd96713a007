"""Rebuilding a projection from the whole history while the live one keeps serving.

1. Replay: the notification log is read in large pages (the next page is fetched while this one
   is decoded) and folded in memory, up to the live runner's position; the result is copied into
   tables of the same names in a schema of their own.
2. Swap, in one transaction, under the lock the live runner takes for each batch: fold what the
   live runner has done since, so both stand at the same position; compare them; announce to the
   outbox every quantity the rebuild corrects; and move the live tables out and the copies in.

Intake never waits: it writes only the ledger. The live runner waits for the swap, then skips
what the swapped-in tables already hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from application.ledger import Ledger
from domain.allocation import ChannelRule
from domain.errors import InvsyncError
from infrastructure import outbox
from infrastructure.outbox import Announcement
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections.availability import (
    NAME,
    PROJECTION_CHANNEL,
    SWAP_LOCK,
    TABLES,
    AvailabilityView,
)
from infrastructure.projections.replay import PAGE, Progress, Replay, read_log, replay
from infrastructure.projections.runner import open_view

log = logging.getLogger(__name__)


class RebuildStuck(InvsyncError):
    """Raised when the rebuilt projection could not fold the ledger's next event either: the
    live one would stay stuck at the same position, so the rebuild swaps nothing."""


SHADOW_SCHEMA = f"invsync_rebuild_{NAME}"
RETIRED_SCHEMA = f"invsync_retired_{NAME}"
PROBE = 100  # events after the rebuilt position folded (then undone) before the swap


@dataclass(frozen=True)
class Difference:
    """One (SKU, channel) whose available-to-sell the rebuild changed."""

    sku: str
    channel_id: str
    live: int | None
    rebuilt: int | None
    version: int  # of the SKU, as the rebuilt row has it


@dataclass
class RebuildReport:
    projection: str
    events: int
    position: int
    seconds: float
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (live, rebuilt)
    differences: list[Difference] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Rebuild:
    """Rebuilds the availability projection of the ledger at `database_url` under `rules`."""

    def __init__(
        self, database_url: str, rules: Sequence[ChannelRule], *, page: int = PAGE
    ) -> None:
        self.database_url = database_url
        self.env = eventsourcing_env(database_url)
        self.rules = tuple(rules)
        self.page = page

    def run(self, progress: Progress | None = None) -> RebuildReport:
        started = time.perf_counter()
        ledger = Ledger(env={**self.env, "CREATE_TABLE": "n"})
        live = open_view(self.env)
        try:
            target = live.max_tracking_id(ledger.name) or ledger.recorder.max_notification_id() or 0
            job = Replay(self.database_url, self.rules, target, self.page)
            fold, events = replay(job, progress)
            shadow = self._fresh_shadow()
            try:
                shadow.load_fold(ledger.name, fold, target)
                report = self._swap(ledger, live, shadow, target)
            finally:
                shadow.close()
            report.events += events
            report.seconds = time.perf_counter() - started
            log.info(
                "rebuilt %s: %d events in %.1f s, %d channel quantities changed",
                NAME,
                report.events,
                report.seconds,
                len(report.differences),
            )
            return report
        finally:
            live.close()
            ledger.close()

    def _fresh_shadow(self) -> AvailabilityView:
        shadow = Identifier(SHADOW_SCHEMA)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(shadow))
            conn.execute(SQL("CREATE SCHEMA {}").format(shadow))
        return open_view(self.env, SHADOW_SCHEMA, create=True)

    def _swap(
        self, ledger: Ledger, live: AvailabilityView, shadow: AvailabilityView, target: int
    ) -> RebuildReport:
        with live.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT pg_advisory_xact_lock(%s)", [SWAP_LOCK])
            position = live._max_tracking_id(ledger.name, curs) or 0
            caught_up = 0
            for notifications in read_log(ledger, target, position, self.page):
                decode = ledger.mapper.to_domain_event
                batch = [(n.id, decode(n)) for n in notifications]
                shadow.fold_into(curs, ledger.name, batch, self.rules, announce=False)
                caught_up += len(batch)
            report = RebuildReport(NAME, caught_up, max(position, target), 0.0)
            report.rows = _row_counts(curs)
            report.differences = _differences(curs)
            now = datetime.now(UTC)
            outbox.announce(
                curs,
                [
                    Announcement(
                        d.channel_id,
                        d.sku,
                        d.rebuilt or 0,
                        d.version,
                        report.position,
                        now,
                        "rebuild",
                    )
                    for d in report.differences
                ],
            )
            _exchange(curs)
            self._probe_next(ledger, live, curs, report.position)
            curs.execute(
                "SELECT pg_notify(%s, %s)", [PROJECTION_CHANNEL, f"{NAME}:{report.position}"]
            )
        return report

    def _probe_next(
        self, ledger: Ledger, live: AvailabilityView, curs: Cursor[DictRow], position: int
    ) -> None:
        """Fold the events after `position` (up to `PROBE` of them) into the swapped-in tables
        and undo it: a rebuild that stands where the live projection is stuck must say so, with
        the event that cannot be folded, not report done."""
        following = ledger.recorder.select_notifications(position + 1, PROBE)
        if not following:
            return
        batch = [(n.id, ledger.mapper.to_domain_event(n)) for n in following]
        try:
            with curs.connection.transaction(force_rollback=True):
                live.fold_into(curs, ledger.name, batch, self.rules, announce=False)
            return
        except Exception:  # find the culprit: one event at a time, in order
            log.warning("%s: the events after position %d cannot be folded", NAME, position)
        with curs.connection.transaction(force_rollback=True):
            for notification, (at, event) in zip(following, batch, strict=True):
                try:
                    with curs.connection.transaction():
                        live.fold_into(curs, ledger.name, [(at, event)], self.rules, announce=False)
                except Exception as error:
                    raise RebuildStuck(
                        f"the {NAME} projection cannot fold the ledger's event at position {at} "
                        f"({notification.topic.rpartition('.')[2]} of "
                        f"{notification.originator_id}), after position {position} where it was "
                        f"rebuilt to: {' '.join(str(error).split())[:500]}; nothing was swapped"
                    ) from error
        raise RebuildStuck(  # each event alone folds, the batch does not
            f"the {NAME} projection cannot fold the ledger's events after position {position} "
            f"where it was rebuilt to; nothing was swapped"
        )


def _row_counts(curs: Cursor[DictRow]) -> dict[str, tuple[int, int]]:
    counts = {}
    for table in TABLES[:-1]:
        curs.execute(
            SQL(
                "SELECT (SELECT count(*) FROM public.{t}) AS live, "
                "(SELECT count(*) FROM {s}.{t}) AS rebuilt"
            ).format(t=Identifier(table), s=Identifier(SHADOW_SCHEMA))
        )
        row = curs.fetchone()
        assert row is not None
        counts[table] = (row["live"], row["rebuilt"])
    return counts


def _differences(curs: Cursor[DictRow]) -> list[Difference]:
    curs.execute(
        SQL(
            "SELECT coalesce(l.sku, r.sku) AS sku, coalesce(l.channel_id, r.channel_id) AS "
            "channel_id, l.available_to_sell AS live, r.available_to_sell AS rebuilt, "
            "coalesce(r.version, l.version) AS version "
            "FROM public.availability l FULL JOIN {s}.availability r "
            "ON l.sku = r.sku AND l.channel_id = r.channel_id "
            "WHERE l.available_to_sell IS DISTINCT FROM r.available_to_sell "
            "ORDER BY 1, 2"
        ).format(s=Identifier(SHADOW_SCHEMA))
    )
    return [Difference(**row) for row in curs.fetchall()]


def _exchange(curs: Cursor[Any]) -> None:
    """Move the live tables out of the way and the rebuilt ones in, in the caller's transaction."""
    retired, shadow = Identifier(RETIRED_SCHEMA), Identifier(SHADOW_SCHEMA)
    curs.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(retired))
    curs.execute(SQL("CREATE SCHEMA {}").format(retired))
    for table in TABLES:
        curs.execute(SQL("ALTER TABLE public.{} SET SCHEMA {}").format(Identifier(table), retired))
        curs.execute(SQL("ALTER TABLE {}.{} SET SCHEMA public").format(shadow, Identifier(table)))
    curs.execute(SQL("DROP SCHEMA {} CASCADE").format(retired))
    curs.execute(SQL("DROP SCHEMA {} CASCADE").format(shadow))
