"""The composition root's builders: how each part (servers, the ledger, stores, intake,
propagation) is built from one `Settings`; `interfaces.bootstrap` puts them together."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import dramatiq
import redis

from application.errors import StorageNotConfigured
from application.intake_processing import IntakeProcessor
from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.time_travel import TimeTravel
from domain.allocation import ChannelRule
from infrastructure.channels.base import Lane
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import Gate
from infrastructure.channels.kinds import api_for, push_gateway
from infrastructure.channels.reads import GatewayReads
from infrastructure.channels.routing import ChannelRouter
from infrastructure.config import Config, PushConfig
from infrastructure.dead_letters import DeadLetters
from infrastructure.embedded import EmbeddedPostgres, EmbeddedRedis
from infrastructure.eventstore import LedgerRecorder
from infrastructure.idempotency import IdempotencyStore
from infrastructure.inbox import PostgresInbox, Stored
from infrastructure.intake_hints import HintSender
from infrastructure.intake_writer import GroupCommitWriter
from infrastructure.migrations import apply_pending, migration_lock
from infrastructure.postgres import check_migrated, eventsourcing_env
from infrastructure.projections import AvailabilityRunner, create_projection_tables
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.redis_limits import RedisLimits
from infrastructure.push.service import GatewayFactory, Propagation
from infrastructure.push.service import build_propagation as build_push_service
from infrastructure.push.store import PushStore
from infrastructure.queue import (
    CONSUMER_POLL_MS,
    IntakeQueues,
    Pool,
    Sweeper,
    Workers,
    make_broker,
)
from infrastructure.reconcile.actors import RunQueue
from infrastructure.reconcile.level_steps import LevelChecks
from infrastructure.reconcile.runs import RunStore
from infrastructure.reconcile.service import Reconciliation
from infrastructure.reconcile.steps import ChannelSteps
from infrastructure.reservation_store import PostgresReservations
from infrastructure.settings import DatabaseLimits, Settings
from infrastructure.state_metrics import StateMetrics

log = logging.getLogger(__name__)

S = TypeVar("S")  # a store, built by `_bounded`


@dataclass(frozen=True)
class Servers:
    """Where PostgreSQL and Redis are, configured or embedded."""

    database_url: str
    redis_url: str | None


@contextmanager
def servers(settings: Settings, *, with_redis: bool = True) -> Iterator[Servers]:
    """The configured servers, or embedded ones started for the duration of the block."""
    with ExitStack() as stack:
        database_url = settings.database_url
        if database_url is None:
            postgres = EmbeddedPostgres(settings.data_dir)
            database_url = postgres.start()
            stack.callback(postgres.stop)
        redis_url = settings.redis_url
        if redis_url is None and with_redis:
            redis = EmbeddedRedis(settings.data_dir)
            redis_url = redis.start()
            stack.callback(redis.stop)
        yield Servers(database_url, redis_url)


def migrate(database_url: str) -> None:
    """Create or upgrade every table invsync needs; safe to run again, and beside another
    process doing the same (they take turns). Only this creates tables."""
    with migration_lock(database_url) as conn:
        build_ledger(eventsourcing_env(database_url, create_table=True)).close()
        apply_pending(conn)
        create_projection_tables(database_url, eventsourcing_env(database_url))
    log.info("database migrated")


def open_ledger(database_url: str, limits: DatabaseLimits | None = None) -> Ledger:
    """The ledger on an already migrated database, its pool and statements bounded by
    `limits`. Raises `NotMigrated` otherwise."""
    check_migrated(database_url)
    return build_ledger(ledger_env(database_url, limits))


def build_ledger(env: Mapping[str, str]) -> Ledger:
    """The ledger on the storage `env` names: the one place invsync builds its ledger.

    Raises `StorageNotConfigured` unless that is the invsync PostgreSQL recorder: in-memory or
    SQLite storage would lose or split the ledger (the tests' in-memory store is for tests of
    the application alone)."""
    ledger = Ledger(env=dict(env))
    if not isinstance(ledger.recorder, LedgerRecorder):
        ledger.close()
        raise StorageNotConfigured(
            f"the ledger refuses {type(ledger.recorder).__name__}: it needs the invsync "
            "PostgreSQL recorder (in-memory or SQLite storage would lose or split the ledger)"
        )
    return ledger


def _given(limits: DatabaseLimits | None) -> DatabaseLimits:
    """`limits`, or when none are given (library use, tests) the default pool bound and no
    statement timeout: only what `Settings` configures cancels statements."""
    return limits or DatabaseLimits(statement_timeout_seconds=0)


def ledger_env(database_url: str, limits: DatabaseLimits | None = None) -> dict[str, str]:
    """The ledger's `eventsourcing` settings: at most `limits.pool_max` connections, each
    statement cancelled after `limits.statement_timeout_seconds`."""
    limits = _given(limits)
    return eventsourcing_env(
        database_url, pool_max=limits.pool_max, statement_timeout_ms=limits.statement_timeout_ms
    )


def projection_env(database_url: str, limits: DatabaseLimits | None = None) -> dict[str, str]:
    """The projection's `eventsourcing` settings: at most `limits.pool_max` connections (no
    statement timeout: a large fold is not a stuck one)."""
    return eventsourcing_env(database_url, pool_max=_given(limits).pool_max)


def idempotency_store(database_url: str, limits: DatabaseLimits | None = None) -> IdempotencyStore:
    return _bounded(IdempotencyStore, database_url, limits, most=4)


def reservation_store(
    database_url: str, limits: DatabaseLimits | None = None
) -> PostgresReservations:
    return _bounded(PostgresReservations, database_url, limits, most=4)


def inbox(database_url: str, limits: DatabaseLimits | None = None) -> PostgresInbox:
    return _bounded(PostgresInbox, database_url, limits, most=8)


def push_store(database_url: str, limits: DatabaseLimits | None = None) -> PushStore:
    """The pushers' store: the outbox and what pushes record, and the offers on file."""
    return _bounded(PushStore, database_url, limits, most=4)


def _bounded(
    store: Callable[..., S], database_url: str, limits: DatabaseLimits | None, *, most: int
) -> S:
    """`store` over a pool of `most` connections at most (fewer when `limits.pool_max` is),
    each statement cancelled after `limits`' timeout."""
    limits = _given(limits)
    return store(
        database_url,
        max_size=min(most, limits.pool_max),
        statement_timeout_ms=limits.statement_timeout_ms,
    )


@dataclass
class Intake:
    """Everything that turns stored deliveries into ledger changes, wired once."""

    database_url: str
    router: ChannelRouter
    inbox: PostgresInbox
    processor: IntakeProcessor
    queues: IntakeQueues
    dead_letters: DeadLetters
    workers: Workers

    hints: HintSender = field(init=False)

    def __post_init__(self) -> None:
        self.hints = HintSender(self.queues.send)

    def close(self) -> None:
        self.hints.close()
        self.inbox.close()
        self.router.close()

    def writer(self) -> GroupCommitWriter:
        """A group-commit writer whose commits hint the workers (call inside the event loop)."""
        return GroupCommitWriter(self.database_url, after_commit=self.hint)

    def hint(self, stored: Sequence[Stored]) -> None:
        """Tell the workers about stored deliveries, without waiting (`HintSender`)."""
        self.hints.hint(stored)


def build_intake(
    database_url: str,
    redis_url: str,
    config: Config,
    ledger: Ledger,
    *,
    pools: Sequence[Pool] = (Pool("", 4),),
    namespace: str = "invsync",
    limits: DatabaseLimits | None = None,
) -> Intake:
    """Intake on `redis_url`'s broker, its workers serving the broker's queues in `pools`
    (see `Workers`)."""
    reads = GatewayReads(read_gates(redis.Redis.from_url(redis_url), namespace))
    router = ChannelRouter(config, reads)
    store = inbox(database_url, limits)
    processor = IntakeProcessor(ledger, store, router.translate, router.acknowledge)
    broker = make_broker(redis_url, database_url, namespace)
    queues = IntakeQueues(broker, processor.process)
    sweeper = Sweeper(store, queues, LedgerQueries(ledger).known_skus)
    workers = Workers(
        queues,
        sweeper,
        pools,
        warm_up=lambda: [processor.process([], lane.value) for lane in Lane],
    )
    return Intake(
        database_url, router, store, processor, queues, DeadLetters(database_url, broker), workers
    )


def build_propagation(
    database_url: str,
    redis_url: str,
    config: Config,
    intake: Intake,
    namespace: str = "invsync",
    *,
    limits: DatabaseLimits | None = None,
    targets: Mapping[str, float] | None = None,
) -> Propagation:
    """Pushers for every channel with a gateway, their queues declared on the intake's broker:
    build it before `intake.workers.start()`, so the same worker consumes them; `targets`:
    the consistency targets by kind (default: the seed's). The gateways file the offers they
    look up in the pushers' store, where they find them again after a restart."""
    store = push_store(database_url, limits)
    gateways = {
        channel.id: (build, channel.push)
        for channel in config.channels
        if (build := push_gateway(channel, offers=store)) is not None
    }
    client = redis.Redis.from_url(redis_url)
    return build_push_service(
        database_url,
        intake.queues.broker,
        RedisLimits(client),
        gateways,
        namespace,
        buffers={channel.id: channel.rules.safety_buffer for channel in config.channels},
        targets=targets,
        store=store,
    )


def state_metrics(
    database_url: str,
    ledger: Ledger,
    config: Config,
    breakers: Callable[[], Mapping[str, bool]],
    targets: Mapping[str, float],
) -> StateMetrics:
    """The gauges read from the database at each scrape, for the configured channels."""
    assert isinstance(ledger.recorder, LedgerRecorder), "build_ledger refuses any other"
    channels = [channel.id for channel in config.channels]
    return StateMetrics(database_url, ledger.recorder, channels, breakers, targets)


def build_reconciliation(
    database_url: str, config: Config, intake: Intake, *, limits: DatabaseLimits | None = None
) -> Reconciliation:
    """Reconciliation of the configured channels, its queue declared on the intake's broker:
    build it before `intake.workers.start()`, so the same worker consumes it."""
    limits = _given(limits)
    store = RunStore(
        database_url,
        max_size=min(4, limits.pool_max),
        statement_timeout_ms=limits.statement_timeout_ms,
    )
    channels = {channel.id: channel for channel in config.channels}
    return Reconciliation(store, RunQueue(intake.queues.broker), channels)


def read_gates(client: redis.Redis, namespace: str) -> Callable[[ChannelConfig], Gate]:
    """Each channel's gate for reads: the same rate limit its pushes take turns of, yielding
    each turn a push is waiting for (pushes keep priority)."""

    def gate(channel: ChannelConfig) -> Gate:
        policy = GatePolicy(
            rate=channel.push.rate_per_second, calls_per_push=channel.push.calls_per_push
        )
        return ChannelGate(RedisLimits(client), channel.id, policy, namespace, yields=True)

    return gate


def reconcile_steps(
    database_url: str,
    redis_url: str,
    *,
    intake: Intake,
    ledger: Ledger,
    reconciliation: Reconciliation,
    namespace: str = "invsync",
) -> ChannelSteps:
    """The steps of reconciliation runs: orders polled into `intake`, levels judged against
    `ledger`, each channel read behind its gate (the same rate limit as its pushes)."""
    gates = read_gates(redis.Redis.from_url(redis_url), namespace)
    # The level checks read through gateways of their own: the orders poll's are the steps'.
    sales = TimeTravel(ledger).channel_sales
    levels = LevelChecks(lambda c: api_for(c, gates(c)), reconciliation.store.connection, sales)
    return ChannelSteps(database_url, gates, intake.hint, levels)


@contextmanager
def running_propagation(
    database_url: str,
    redis_url: str,
    gateways: Mapping[str, tuple[GatewayFactory, PushConfig]],
    rules: Sequence[ChannelRule],
    *,
    threads: int = 4,
    namespace: str = "invsync",
) -> Iterator[Propagation]:
    """The availability projection and propagation to `gateways`, with a Dramatiq worker of
    their own, until the block ends: what `invsync run` does for pushing, for tests and
    benchmarks that bring their own channels."""
    broker = make_broker(redis_url, database_url, namespace)
    client = redis.Redis.from_url(redis_url)
    propagation = build_push_service(database_url, broker, RedisLimits(client), gateways, namespace)
    broker.emit_after("process_boot")  # without it, time limits are silently off
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=CONSUMER_POLL_MS)
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
