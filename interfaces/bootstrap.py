"""The one bootstrap: the service's parts, built once from one `Settings`.

`invsync run`, `invsync worker` and `invsync project` open the same `Service` and start the
parts each runs (run and worker: intake, propagation and reconciliation); the stock and admin
commands open only the database (they need no Redis). How each part is built is
`interfaces.composition`'s; which parts a process holds, and in what order they start and stop,
is this module's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cached_property

from prometheus_client import REGISTRY, start_http_server

from application.ledger import Ledger
from application.reservations import Reservations
from domain.allocation import ChannelRule
from infrastructure.config import Config
from infrastructure.console_sessions import ConsoleSessions
from infrastructure.idempotency import IdempotencyStore
from infrastructure.periodic import every
from infrastructure.postgres import check_database, check_migrated
from infrastructure.projections import AvailabilityRunner
from infrastructure.projections.jobs import RebuildJobs
from infrastructure.push.dispatch import PUSH_QUEUES
from infrastructure.push.service import Propagation
from infrastructure.queue import INTAKE_QUEUES, Pool
from infrastructure.reconcile.review import Review
from infrastructure.reconcile.scheduler import TICK_SECONDS
from infrastructure.reconcile.service import Reconciliation
from infrastructure.redis import check_redis
from infrastructure.retention import Retention
from infrastructure.settings import Settings
from interfaces import composition
from interfaces.composition import Intake, Servers
from interfaces.http.api import Api
from interfaces.http.projections import Projections

RESERVATION_EXPIRY_SECONDS = 5.0


@dataclass
class Service:
    """The service's parts. Those only some processes use (the API's stores, the projection,
    propagation) are built on first use, so a process holds the connections of what it runs
    and no more; everything built or started stops, in reverse order, when the service closes.
    """

    settings: Settings
    servers: Servers
    config: Config
    ledger: Ledger
    intake: Intake
    _running: ExitStack = field(default_factory=ExitStack, repr=False)

    @property
    def database_url(self) -> str:
        return self.servers.database_url

    @property
    def redis_url(self) -> str:
        assert self.servers.redis_url is not None, "a service is opened with Redis"
        return self.servers.redis_url

    @cached_property
    def rules(self) -> list[ChannelRule]:
        """The channels' rules as configured: the defaults recorded changes start from."""
        return self.config.allocation_rules()

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        """The API's idempotency keys."""
        store = composition.idempotency_store(self.database_url, self.settings.database)
        self._running.callback(store.close)
        return store

    @cached_property
    def reservations(self) -> Reservations:
        held = composition.reservation_store(self.database_url, self.settings.database)
        self._running.callback(held.close)
        return Reservations(self.ledger, held)

    @cached_property
    def projection(self) -> AvailabilityRunner:
        """The availability projection, folding in threads of its own from first use."""
        env = composition.projection_env(self.database_url, self.settings.database)
        return self._running.enter_context(AvailabilityRunner(env, self.rules))

    @cached_property
    def propagation(self) -> Propagation:
        """Pushers for every channel with a gateway, built (not started) before the intake's
        workers start, so the same worker consumes their queues."""
        propagation = composition.build_propagation(
            self.database_url,
            self.redis_url,
            self.config,
            self.intake,
            self.settings.queue_namespace,
            limits=self.settings.database,
            targets=self.settings.consistency_targets,
        )
        self._running.callback(propagation.stop)
        return propagation

    @cached_property
    def reconciliation(self) -> Reconciliation:
        """Reconciliation runs: asked for through it, their queue on the intake's broker
        (built before the intake's workers start, so the same worker consumes it)."""
        reconciliation = composition.build_reconciliation(
            self.database_url, self.config, self.intake, limits=self.settings.database
        )
        self._running.callback(reconciliation.close)
        return reconciliation

    @cached_property
    def console_sessions(self) -> ConsoleSessions:
        """The operator console's sessions, in the Redis every HTTP process shares."""
        sessions = ConsoleSessions(self.redis_url, self.settings.queue_namespace)
        self._running.callback(sessions.close)
        return sessions

    def report_state(self) -> None:
        """Add the database's state, as gauges read at each scrape, to this process's metrics
        until the service closes: every process then reports the same truth."""
        metrics = composition.state_metrics(
            self.database_url,
            self.ledger,
            self.config,
            self.propagation.breakers,
            self.settings.consistency_targets,
        )
        self._running.callback(metrics.close)
        REGISTRY.register(metrics)
        self._running.callback(REGISTRY.unregister, metrics)

    def serve_metrics(self, port: int) -> int:
        """Serve this process's `/metrics` on `port` at the configured host (Prometheus's own
        small server, in a thread) until the service closes; returns the port (given 0: the
        one the system chose)."""
        self.report_state()
        server, thread = start_http_server(port, self.settings.metrics_host)
        self._running.callback(thread.join, 5.0)
        self._running.callback(server.server_close)
        self._running.callback(server.shutdown)
        return int(server.server_address[1])

    def start_upkeep(self, *, with_keys: bool = False) -> None:
        """Expire reservations every few seconds, and delete what is past its retention every
        `[retention] every_seconds` (with the API's idempotency keys when `with_keys`, and the
        offer lookups in the pushers' store past their hour)."""
        expire = self.reservations.expire
        self._running.enter_context(
            every(RESERVATION_EXPIRY_SECONDS, expire, name="reservation-expiry")
        )
        keys = self.idempotency if with_keys else None
        retention = Retention(
            self.intake.inbox,
            self.intake.dead_letters,
            self.config.retention,
            keys,
            offers=self.propagation.store,
        )
        seconds = self.config.retention.every_seconds
        self._running.enter_context(every(seconds, retention.apply, name="retention"))

    def start_reconciliation(self) -> None:
        """Work reconciliation runs, and make and send the due ones: every process that works
        runs the scheduler (the run table makes each due run once)."""
        steps = composition.reconcile_steps(
            self.database_url,
            self.redis_url,
            intake=self.intake,
            ledger=self.ledger,
            reconciliation=self.reconciliation,
            namespace=self.settings.queue_namespace,
        )
        self._running.callback(steps.close)
        self.reconciliation.serve(steps.reconcilers())
        tick = self.reconciliation.scheduler().tick
        self._running.enter_context(every(TICK_SECONDS, tick, name="reconcile-scheduler"))
        triggers = self.reconciliation.triggers()
        self._running.enter_context(every(TICK_SECONDS, triggers, name="reconcile-triggers"))

    def start_workers(self) -> None:
        """Push to the channels, reconcile them, and work the intake queues."""
        self.propagation.start()
        self.start_reconciliation()  # its queue declared before the worker starts
        self.intake.workers.start()
        self._running.callback(self.intake.workers.stop)

    def api(self) -> Api:
        """What the HTTP API serves, over the running projection and propagation."""
        projection, rules = self.projection, self.rules
        return Api(
            self.ledger,
            probes={
                "database": functools.partial(check_database, self.database_url),
                "redis": functools.partial(check_redis, self.redis_url),
                "projection": projection.check,  # not ready while it cannot go on
            },
            intake=self.intake,
            rules=rules,
            idempotency=self.idempotency,
            tokens=self.config.api_tokens,
            reservations=self.reservations,
            velocities=projection.view.velocities,
            sent=functools.partial(projection.view.channels, defaults=rules),
            projections=Projections(projection, RebuildJobs(self.database_url, rules)),
            sync=self.propagation.status,
            reconciliation=self.reconciliation,
            review=Review(
                self.reconciliation.store.connection,
                self.ledger,
                {channel.id: channel for channel in self.config.channels},
            ),
            sessions=self.console_sessions,
            consistency_targets=self.settings.consistency_targets,
            limits=self.settings.http,
        )

    def close(self) -> None:
        self._running.close()


def worker_pools(config: Config, threads: int) -> list[Pool]:
    """The worker's pools of threads: `threads` for the intake lanes; one per channel that
    pushes (its drain holds one while the channel stays busy) and one to spare for the pushes;
    `threads` for the rest (reconciliation's steps). In one pool, webhooks waited for a thread
    behind drains and reconciliation steps waiting for turns or for their readings to settle."""
    pushing = sum(1 for channel in config.channels if channel.pushes)
    return [Pool(INTAKE_QUEUES, threads), Pool(PUSH_QUEUES, pushing + 1), Pool("", threads)]


@contextmanager
def open_service(
    settings: Settings, config: Config, *, migrate: bool = False, threads: int = 4
) -> Iterator[Service]:
    """The service on the configured (or embedded) servers until the block ends. Only `run`
    migrates (`migrate`); a worker expects the tables."""
    with composition.servers(settings) as found, ExitStack() as closing:
        if migrate:
            composition.migrate(found.database_url)
        ledger = composition.open_ledger(found.database_url, settings.database)
        closing.callback(ledger.close)
        assert found.redis_url is not None
        intake = composition.build_intake(
            found.database_url,
            found.redis_url,
            config,
            ledger,
            pools=worker_pools(config, threads),
            namespace=settings.queue_namespace,
            limits=settings.database,
        )
        closing.callback(intake.close)
        service = Service(settings, found, config, ledger, intake)
        closing.callback(service.close)
        yield service


@contextmanager
def database_only(settings: Settings) -> Iterator[str]:
    """The URL of the configured (or embedded) database, migrated: for the commands that need
    no Redis."""
    with composition.servers(settings, with_redis=False) as found:
        if settings.database_url is None:
            composition.migrate(found.database_url)  # embedded: nobody else creates tables
        check_migrated(found.database_url)
        yield found.database_url


@contextmanager
def ledger_only(settings: Settings) -> Iterator[Ledger]:
    """The ledger alone, on `database_only`'s database: for the stock commands."""
    with database_only(settings) as database_url:
        ledger = composition.open_ledger(database_url, settings.database)
        try:
            yield ledger
        finally:
            ledger.close()
