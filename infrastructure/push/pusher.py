"""One channel's pusher: sends what is due from the outbox to the channel's gateway, a batch per
call, as fast as the gate allows, and records what the channel acknowledged. Each round reads
(the store), decides (`policy.py`, pure), calls (the gateway) and records (the store).

A drain stays on a busy channel: it reads what is due and takes the rate limit's turn only then,
just before the call, so calls reach the channel no closer together than the limit spaces them
however slow the reads; a call whose turn has not come waits for it and reads again, so it
carries every change up to the instant it leaves, with no queue hop between two calls. Nothing
is lost when the channel fails: rows stay pending in PostgreSQL and go out, in ledger order,
when it answers.

A channel that takes pushes for processing later (an Amazon feed) answers SUBMITTED with a
ticket; the rows are kept aside until `settle` finds the channel has answered for them. A
refusal is logged and counted as one, never as the channel following."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum

from prometheus_client import Counter, Histogram

from infrastructure.channels.gateway import ChannelError, ChannelGateway, PushResult
from infrastructure.push import policy as decide
from infrastructure.push.gate import ChannelGate
from infrastructure.push.policy import Outcomes, Outgoing
from infrastructure.push.store import PushStore, Submission
from infrastructure.settings import CONSISTENCY_TARGETS

log = logging.getLogger(__name__)

CONSISTENCY = Histogram(
    "invsync_consistency_window_seconds",
    "From a ledger change to the channel's acknowledgement of the quantity it led to",
    ["channel", "kind"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
BREACHES = Counter(
    "invsync_consistency_breaches_total",
    "Ledger changes the channel showed later than their kind's consistency target",
    ["channel", "kind"],
)
CALLS = Counter("invsync_channel_calls_total", "Calls to channel APIs", ["channel", "outcome"])
REFUSALS = Counter(
    "invsync_push_refusals_total", "Pushes a channel refused, by its code", ["channel", "code"]
)
# Pending rows read for one decision: beyond a batch, so hot rows behind a long tail are found;
# bounded, as this is read up to twice a call and a feed's batch is large.
READ_BATCHES, READ_MOST = 4, 10_000
CALLS_KEPT = 1_000  # call times kept: more than any rate allows in a second
APPLIED_LOGGED = 5  # SKUs named in the line that says what a call set


@dataclass(frozen=True)
class PushPolicy:
    batch_window: float = 2.0  # seconds the long tail may wait to share a call
    # A SKU changing all the time causes a call at most this often: its changes in between
    # ride along other calls or are coalesced into the next push, so a best seller alone
    # costs calls per interval, not per sale.
    sku_interval: float = 0.25
    call_timeout: float = 2.0  # seconds to wait for the rate limit before giving the turn up
    # A drain leaves the channel after `linger` seconds with nothing due (looking every `poll`
    # seconds), or after `turn` seconds in all, so other work gets the worker thread.
    linger: float = 0.0
    poll: float = 0.05  # when no `wake` comes (the dispatcher runs in another process)
    turn: float = 20.0
    settle_every: float = 1.0  # seconds between two looks at the channel's open submissions
    # A submission the channel has not answered for in this long is given up: its rows go again.
    submission_timeout: float = 3600.0
    # A raise waits at most this long for the channel's own sales, seen missing in a refusal,
    # to be recorded; then what the channel lost is taken as no sale (reconciliation's business).
    unrecorded_wait: float = 10.0
    # The long tail waits `batch_window` only while the calls of the last second used this
    # share of the channel's rate or more: in a quiet store no company comes (0: always waits).
    quiet_share: float = 0.5
    buffer: int = 0  # the channel's safety buffer: a SKU at or below it (and its sales) is at risk
    # Seconds from a ledger change of each kind to the channel showing it; slower is a breach.
    targets: Mapping[str, float] = field(default_factory=lambda: dict(CONSISTENCY_TARGETS))


class Turn(Enum):
    """What a call's attempt at the channel's turn came to."""

    TAKEN = "taken"  # the call goes now
    READ_AGAIN = "read again"  # slept towards the turn: read what is due once more just before it
    GIVEN_UP = "given up"  # the attempt's deadline passed: the rows stay for the next drain


@dataclass(frozen=True)
class CallAttempt:
    """One call's attempt at the channel's turn, made when the call is first decided. The turn
    is taken after the reads, just before the call, so calls reach the channel no closer
    together than the limiter spaces them however slow the reads. A turn no further off than
    the reads took is waited for: the rows are then no staler than a read after the turn would
    leave them, and the call keeps the turn's time. A turn further off is slept towards, waking
    as long before it as the reads took, so the call reads again and its reads end about when
    the turn comes; but once only (`read_again`): other callers of the channel (a lookup's
    turns, reconciliation's reads) may take each turn it slept towards, and reading again every
    time would keep the call from ever going (eBay's pushes waited seconds so under load, its
    lookups of new SKUs taking the turns)."""

    deadline: float  # monotonic, `call_timeout` after the first decision: reading again keeps it
    read_again: bool = False

    @classmethod
    def starting(cls, timeout: float) -> CallAttempt:
        return cls(time.monotonic() + timeout)

    def reading_again(self) -> CallAttempt:
        return replace(self, read_again=True)

    def take_turn(self, gate: ChannelGate, reads: float) -> Turn:
        """Take `gate`'s turns for one call (`calls_per_push`) whose reads took `reads` seconds."""
        calls = gate.policy.calls_per_push
        wait, left = gate.try_call(calls), self.deadline - time.monotonic()
        if wait == 0:
            return Turn.TAKEN
        if left <= 0:
            return Turn.GIVEN_UP
        if wait <= reads or self.read_again:
            return Turn.TAKEN if gate.take_call(left, calls) else Turn.GIVEN_UP
        time.sleep(min(wait - reads, left))
        return Turn.READ_AGAIN


class Pusher:
    def __init__(
        self,
        gateway: ChannelGateway,
        store: PushStore,
        gate: ChannelGate,
        policy: PushPolicy = PushPolicy(),
        *,
        hot: Callable[[], set[str]] = set,
        velocity: Callable[[], Mapping[str, float]] = dict,
    ) -> None:
        self.gateway, self.store, self.gate, self.policy = gateway, store, gate, policy
        self.channel_id = gateway.channel_id
        self._hot, self._velocity = hot, velocity
        self._calls: deque[float] = deque(maxlen=CALLS_KEPT)  # when recent calls went (monotonic)
        self._listed: set[str] = set()  # SKUs whose channel item ref is on file
        self._settle_at = 0.0  # monotonic time of the next look at open submissions
        self._causes = decide.Causes()
        self._woken = threading.Event()  # set when the outbox has moved
        for kind in policy.targets:  # exported at 0 from the start: rates need a first sample
            BREACHES.labels(self.channel_id, kind)

    def wake(self) -> None:
        """The outbox has moved: a lingering drain looks at once instead of at its next poll."""
        self._woken.set()

    def drain(self) -> int:
        """Push what is due until nothing is, or the channel may not be called; returns calls."""
        with self.gate.draining() as mine:
            return self._drain() if mine else 0  # not mine: another worker is draining it

    def _drain(self) -> int:
        calls, started = 0, time.monotonic()
        idle_since = started
        # Kept across a read again, so the call's deadline holds and it reads again once only.
        attempt: CallAttempt | None = None
        while self.gate.closed_for() == 0 and time.monotonic() - started < self.policy.turn:
            self._settle()
            reading = time.monotonic()
            due = self._due()
            if not due:
                attempt = None
                if self._lingered(idle_since):
                    break
                continue
            ready = self._ready(due)
            if ready is None:
                break
            attempt = attempt or CallAttempt.starting(self.policy.call_timeout)
            turn = attempt.take_turn(self.gate, time.monotonic() - reading)
            if turn is Turn.READ_AGAIN:
                attempt = attempt.reading_again()  # what changed meanwhile goes in this call
                continue
            if turn is Turn.GIVEN_UP:
                break
            calls, attempt = calls + 1, None
            if not self._call(ready):
                break
            idle_since = time.monotonic()
        return calls

    def _lingered(self, idle_since: float) -> bool:
        """True once nothing has been due for `linger` seconds; else waits for the outbox to
        move (or the next poll)."""
        if time.monotonic() - idle_since >= self.policy.linger:
            return True
        self._woken.wait(self.policy.poll)
        self._woken.clear()
        return False

    def _due(self) -> list[Outgoing]:
        """What the next call carries (`policy.due`); rows whose raise waits for the channel's
        own sales to be recorded stay behind."""
        limit = min(self.gateway.max_batch * READ_BATCHES, READ_MOST)
        now, wait = time.time(), self.policy.unrecorded_wait
        rows = decide.sendable(self.store.pending(self.channel_id, limit), now, wait)
        if not rows:
            return []
        now, window = time.monotonic(), self.policy.batch_window
        since, store_quiet = now - self.policy.sku_interval, self._quiet()
        return decide.due(
            rows,
            hot=self._hot(),
            cutoff=datetime.now(UTC) - timedelta(seconds=window),
            resting=lambda sku: self._causes.resting(sku, since),
            max_batch=self.gateway.max_batch,
            risk=decide.Risk(self._velocity(), window, self.policy.buffer),
            quiet=lambda sku: decide.slow_mover(
                store_quiet, self._causes.resting(sku, now - window)
            ),
        )

    def _quiet(self) -> bool:
        """True when the channel's calls leave its rate to spare (`policy.quiet`)."""
        rate, share = self.gate.policy.rate, self.policy.quiet_share
        return decide.quiet(self._calls, time.monotonic(), rate, share)

    def _ready(self, due: list[Outgoing]) -> list[Outgoing] | None:
        """`due` with the channel's sales read and its SKUs' listings filed, before the turn is
        taken; None when the channel failed a lookup and should not be called again now."""
        due = self._with_sales(due)
        try:
            self._file_listings(due)  # a lookup takes a turn of its own, just before it goes
        except ChannelError as error:
            self._set_back(error)
            return None
        return due

    def _call(self, due: list[Outgoing]) -> bool:
        """One call, on the turns just taken; False when the channel should not be called
        again now."""
        now = time.monotonic()
        remembered = max(self.policy.sku_interval, self.policy.batch_window)
        self._causes.caused(due[0].sku, now, now - remembered)
        self._calls.append(now)
        # The call's first calls (`calls_per_push`: WooCommerce's read and write) go on the
        # turns just taken; those it leaves unused lapse, as they were granted for now, not a
        # later call.
        self.gateway.turn_taken(self.gate.policy.calls_per_push)
        try:
            results = self.gateway.push([o.push() for o in due])
        except ChannelError as error:
            self._set_back(error)
            return False
        finally:
            self.gateway.turn_taken(0)
        CALLS.labels(self.channel_id, "ok").inc()
        self.gate.succeeded()
        self._record(due, results)
        return True

    def _with_sales(self, due: list[Outgoing]) -> list[Outgoing]:
        """`due` with the channel's sales read for the rows that went without."""
        unread = [o.pending for o in due if o.pending.sold is None]
        read = {p.sku: p for p in self.store.sold(self.channel_id, unread)}
        return decide.with_sales(due, read, time.time(), self.policy.unrecorded_wait)

    def _set_back(self, error: ChannelError) -> None:
        setback = decide.setback(error)
        CALLS.labels(self.channel_id, setback.outcome).inc()
        if setback.says is not None:
            log.error("%s %s: %s", self.channel_id, setback.says, error)
        if setback.pause is not None:
            self.gate.pause(setback.pause)
        # An error already said why; an outage says so once the breaker opens.
        if setback.failure and self.gate.failed() and setback.says is None:
            log.warning("%s: circuit open after failures: %s", self.channel_id, error)

    def _record(self, sent: list[Outgoing], results: list[PushResult]) -> None:
        """Record what the channel's answers to `sent` mean (`policy.outcomes`)."""
        answered_at = datetime.now(UTC)
        clock = decide.Clock(time.time(), answered_at.date(), self.policy.unrecorded_wait)
        found = decide.outcomes(sent, results, clock)
        store, channel_id = self.store, self.channel_id
        windows = store.acknowledge(channel_id, found.acknowledged, answered_at, found.drifts)
        for kind, seconds in windows:
            CONSISTENCY.labels(channel_id, kind).observe(seconds)
            if seconds > self.policy.targets.get(kind, float("inf")):
                BREACHES.labels(channel_id, kind).inc()
        store.shown(channel_id, found.shown, answered_at)
        store.observe(channel_id, found.observed, reference="push:stale")
        store.refused(channel_id, [(r.sku, r.code) for r in found.refusals])
        for ticket, taken in found.submitted.items():
            store.submit(channel_id, ticket, taken)
        self._log(found)

    def _log(self, found: Outcomes) -> None:
        if found.applied:
            skus = [shown.rpartition("=")[0] for shown in found.applied[:APPLIED_LOGGED]]
            ids: dict[str, object] = {"channel": self.channel_id, "skus": skus}
            if len(found.applied) == 1:
                ids["sku"] = skus[0]
            log.info(
                "%s now shows %s", self.channel_id, _some(found.applied, APPLIED_LOGGED), extra=ids
            )
        for unusual in found.unusual:
            log.warning("%s: %s", self.channel_id, unusual)
        for refusal in found.refusals:
            REFUSALS.labels(self.channel_id, refusal.code).inc()
            showing = "" if refusal.shows is None else f"; it shows {refusal.shows}"
            log.info("%s refused %s: %s%s", self.channel_id, refusal.asked, refusal.code, showing)

    def _settle(self) -> None:
        """Record what the channel has answered for among the pushes it took for later."""
        if time.monotonic() < self._settle_at:
            return
        self._settle_at = time.monotonic() + self.policy.settle_every
        for submission in self.store.submissions(self.channel_id):
            if not self._settle_one(submission):
                return

    def _settle_one(self, submission: Submission) -> bool:
        """False when the channel cannot say now (throttled, unreachable): look again later."""
        skus = [p.sku for p in submission.pending]
        try:
            results = self.gateway.settle(submission.ticket, skus)
        except ChannelError as error:
            log.info("%s: submission %s not settled: %s", self.channel_id, submission.ticket, error)
            return False
        if results is not None:
            self._record([decide.as_pending(p) for p in submission.pending], results)
            self.store.forget_submission(self.channel_id, submission.ticket)
        else:
            self._give_up_if_overdue(submission)
        return True

    def _give_up_if_overdue(self, submission: Submission) -> None:
        now, timeout = datetime.now(UTC), self.policy.submission_timeout
        if not decide.overdue(submission.submitted_at, now, timeout):
            return
        since, rows = submission.submitted_at.isoformat(), len(submission.pending)
        why = f"no answer for submission {submission.ticket} since {since}"
        log.warning("%s: %s: its %d rows go again", self.channel_id, why, rows)
        self.store.forget_submission(self.channel_id, submission.ticket)

    def _file_listings(self, due: list[Outgoing]) -> None:
        # A channel that names our SKUs by its own ids (a Shopify inventory item) in its
        # webhooks: file the names before the push, so its echo is known for one however
        # fast the webhook comes.
        listings = getattr(self.gateway, "listings", None)
        unlisted = [o.sku for o in due if o.sku not in self._listed]
        if listings is None or not unlisted:
            return
        refs = listings(unlisted)
        self.store.remember_listings(self.channel_id, refs)
        self._listed.update(sku for _, sku in refs)


def _some(items: list[str], most: int) -> str:
    """At most `most` of `items`, saying how many more there are."""
    more = len(items) - most
    return ", ".join(items[:most]) + (f" and {more} more" if more > 0 else "")
