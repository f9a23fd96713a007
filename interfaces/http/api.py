"""What the HTTP API serves: the parts of the running service its routes call.

`create_app` takes an `Api`; the bootstrap's `Service` builds one from its parts, and a test
builds one over just a ledger. Only `ledger` is required: each other part adds its routes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from application.availability import ChannelAvailability
from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.reservations import Reservations
from application.time_travel import TimeTravel
from domain.allocation import ChannelRule
from infrastructure.channels.routing import ChannelRouter
from infrastructure.config import ApiToken
from infrastructure.console_sessions import ConsoleSessions
from infrastructure.dead_letters import DeadLetters
from infrastructure.idempotency import IdempotencyStore
from infrastructure.inbox import PostgresInbox
from infrastructure.intake_writer import GroupCommitWriter
from infrastructure.queue import IntakeQueues
from infrastructure.reconcile.review import Review
from infrastructure.reconcile.service import Reconciliation
from infrastructure.settings import DEFAULT_LIMITS, HttpLimits
from interfaces.http.projections import Projections
from interfaces.http.sync import Status

Probe = Callable[[], None]  # raises InvsyncError when its dependency is not ready


class Intake(Protocol):
    """What the webhook and operator routes need of intake: the channels' router, the inbox and
    dead letters to review, the queues to retry on, and a writer that stores deliveries."""

    router: ChannelRouter
    inbox: PostgresInbox
    queues: IntakeQueues
    dead_letters: DeadLetters

    def writer(self) -> GroupCommitWriter: ...


@dataclass(frozen=True)
class Api:
    """The parts the routes call. `probes` name what `/readyz` checks; `limits` bound what one
    client may hold (request bodies, webhook verification) and who may read `/metrics`."""

    ledger: Ledger
    probes: Mapping[str, Probe] = field(default_factory=dict)
    intake: Intake | None = None
    rules: Sequence[ChannelRule] = ()
    idempotency: IdempotencyStore | None = None
    tokens: Sequence[ApiToken] = ()
    reservations: Reservations | None = None
    velocities: Callable[[str], Mapping[str, float]] | None = None
    sent: Callable[[str], Mapping[str, ChannelAvailability]] | None = None
    projections: Projections | None = None
    sync: Status | None = None
    reconciliation: Reconciliation | None = None
    review: Review | None = None  # of the discrepancies reconciliation found
    sessions: ConsoleSessions | None = None  # the operator's console's: it is served with them
    # Seconds from a ledger event of each kind to the channel showing it (the console shows
    # each channel's windows against them).
    consistency_targets: Mapping[str, float] = field(default_factory=dict)
    limits: HttpLimits = DEFAULT_LIMITS

    @cached_property
    def queries(self) -> LedgerQueries:
        """The reads of `ledger`."""
        return LedgerQueries(self.ledger)

    @cached_property
    def time_travel(self) -> TimeTravel:
        """The answers about `ledger`'s past."""
        return TimeTravel(self.ledger)
