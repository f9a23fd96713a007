"""Gauges of what PostgreSQL and Redis hold (the outbox, the inbox, dead letters, open
discrepancies, the projection's lag, oversells, the breakers), read when Prometheus scrapes.

A custom collector, not gauges set as work happens: every process (`run`, each `worker`,
`project`) then reports the same truth, whichever did the work and however many run, and a
process that restarts reports it at once. Each owner module's query is cheap (an index, a
partial index or a small table), on a pool of one connection whose statements PostgreSQL
cancels after `STATEMENT_TIMEOUT_MS`; when they fail the scrape still answers, with
`invsync_state_up` 0 and the process's own counters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg import Connection
from psycopg import Error as PsycopgError
from psycopg_pool import PoolTimeout
from redis import RedisError

from application.ledger import Ledger
from infrastructure import dead_letters, inbox, outbox
from infrastructure.eventstore import LedgerRecorder
from infrastructure.postgres import open_pool
from infrastructure.projections import availability
from infrastructure.reconcile import discrepancies

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 2_000  # a scrape waits no longer for any one query
CONNECT_TIMEOUT_SECONDS = 2.0


class StateMetrics(Collector):
    """Parameters:
    database_url: the database the owners' queries read.
    ledger: the ledger's recorder (oversells, when the first event not folded was recorded).
    channels: the configured channels' ids, each reported (at 0) even with nothing to say.
    breakers: each pushing channel's breaker, True while open (read from Redis).
    targets: the consistency targets by kind, exported beside the windows they judge.
    """

    def __init__(
        self,
        database_url: str,
        ledger: LedgerRecorder,
        channels: Sequence[str],
        breakers: Callable[[], Mapping[str, bool]],
        targets: Mapping[str, float],
    ) -> None:
        self._pool = open_pool(
            database_url, 1, STATEMENT_TIMEOUT_MS, timeout=CONNECT_TIMEOUT_SECONDS
        )
        self._ledger, self._channels = ledger, tuple(channels)
        self._breakers, self._targets = breakers, dict(targets)

    def close(self) -> None:
        self._pool.close()

    def describe(self) -> list[Metric]:
        # Nothing to check at registration: reading the database then would cost a query.
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("invsync_state_up", "1 when the state gauges could be read")
        try:
            with self._pool.connection() as conn:
                found = [*self._database(conn), self._breaker_family()]
        except (PsycopgError, PoolTimeout, RedisError) as error:
            log.warning("state metrics not read: %s", error)
            found = []
        up.add_metric([], 1 if found else 0)
        yield up
        yield from found
        yield self._targets_family()

    def _database(self, conn: Connection[Any]) -> Iterator[Metric]:
        now = datetime.now(UTC)
        yield from self._outbox(conn, now)
        yield from self._inbox(conn, now)
        yield _by_state("invsync_dead_letters", "Dead letters by state", dead_letters.counts(conn))
        yield from self._discrepancies(conn, now)
        yield self._projection_lag(conn, now)
        oversells = CounterMetricFamily(
            "invsync_oversells", "Sales recorded that drove a SKU's available stock below zero"
        )
        oversells.add_metric([], self._ledger.count_oversells())
        yield oversells

    def _outbox(self, conn: Connection[Any], now: datetime) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "invsync_outbox_pending", "Quantities waiting to be pushed", labels=["channel"]
        )
        oldest = GaugeMetricFamily(
            "invsync_outbox_oldest_seconds",
            "Age of the oldest change waiting to be pushed (0: none waits)",
            labels=["channel"],
        )
        backlog = outbox.backlog(conn)
        for channel in sorted({*self._channels, *backlog}):
            count, since = backlog.get(channel, (0, None))
            pending.add_metric([channel], count)
            oldest.add_metric([channel], _age(since, now))
        yield from (pending, oldest)

    def _inbox(self, conn: Connection[Any], now: datetime) -> Iterator[Metric]:
        counts, oldest = inbox.waiting_counts(conn)
        yield _by_state(
            "invsync_deliveries",
            "Webhook deliveries not yet processed, by state (pending, parked, waiting)",
            counts,
        )
        age = GaugeMetricFamily(
            "invsync_deliveries_oldest_pending_seconds",
            "Age of the oldest delivery waiting to be applied (0: none waits)",
        )
        age.add_metric([], _age(oldest, now))
        yield age

    def _discrepancies(self, conn: Connection[Any], now: datetime) -> Iterator[Metric]:
        count = GaugeMetricFamily(
            "invsync_discrepancies_open", "Discrepancies waiting for review", labels=["channel"]
        )
        oldest = GaugeMetricFamily(
            "invsync_discrepancies_oldest_open_seconds",
            "Age of the oldest discrepancy waiting for review (0: none waits)",
            labels=["channel"],
        )
        found = discrepancies.open_by_channel(conn)
        for channel in sorted({*self._channels, *found}):
            opened, since = found.get(channel, (0, None))
            count.add_metric([channel], opened)
            oldest.add_metric([channel], _age(since, now))
        yield from (count, oldest)

    def _projection_lag(self, conn: Connection[Any], now: datetime) -> Metric:
        lag = GaugeMetricFamily(
            "invsync_projection_lag_seconds",
            "Age of the oldest ledger event the projection has not folded (0: caught up)",
            labels=["projection"],
        )
        position = availability.folded(conn, Ledger.name)
        lag.add_metric([availability.NAME], _age(self._ledger.recorded_after(position), now))
        return lag

    def _breaker_family(self) -> Metric:
        family = GaugeMetricFamily(
            "invsync_channel_breaker_open",
            "1 while the channel's circuit breaker is open (no pushes go)",
            labels=["channel"],
        )
        for channel, is_open in sorted(self._breakers().items()):
            family.add_metric([channel], 1 if is_open else 0)
        return family

    def _targets_family(self) -> Metric:
        family = GaugeMetricFamily(
            "invsync_consistency_target_seconds",
            "The consistency target of each kind of change (INVSYNC_CONSISTENCY_TARGETS)",
            labels=["kind"],
        )
        for kind, seconds in sorted(self._targets.items()):
            family.add_metric([kind], seconds)
        return family


def _by_state(name: str, documentation: str, counts: Mapping[str, int]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=["state"])
    for state, count in sorted(counts.items()):
        family.add_metric([state], count)
    return family


def _age(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0
