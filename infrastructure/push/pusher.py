"""One channel's pusher: sends what is due from the outbox to the channel's gateway, a batch per
call, as fast as the gate allows, and records what the channel acknowledged.

Due: a hot SKU (top sellers) at once; any other once its oldest change has waited
`batch_window` seconds, so the long tail travels in few, full calls. A call that goes takes every
other pending row along, up to the batch size: riders cost no call. Nothing is lost when the
channel fails: rows stay pending in PostgreSQL and go out, in ledger order, when it answers.

A drain stays on a busy channel: it waits for the rate limit's next turn, then reads what is due
at that moment, so a call carries every change up to the instant it leaves, with no queue hop
between two calls.

A channel that takes pushes for processing later (an Amazon feed) answers SUBMITTED with a
ticket; the rows are kept aside until `settle` finds the channel has answered for them.

A channel that refuses a push because it moved under us (Shopify's compare-and-set answers
CHANGE_FROM_QUANTITY_STALE, and is read again) keeps its row pending: what it shows now is the
base of the next push, which goes at once when it does not raise the channel, and otherwise only
as far as the channel's own sales the ledger has not recorded yet allow (`decisions.py`). A
refusal is logged and counted as one, never as the channel following."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Histogram

from infrastructure.channels.gateway import (
    ChannelAuthFailed,
    ChannelError,
    ChannelGateway,
    ChannelUnavailable,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.push.decisions import (
    Drift,
    allowed,
    expected,
    refused,
    settled,
    unrecorded,
)
from infrastructure.push.gate import ChannelGate
from infrastructure.push.store import Acknowledged, Pending, PushStore, Shown, Submission

log = logging.getLogger(__name__)

CONSISTENCY = Histogram(
    "invsync_consistency_window_seconds",
    "From a ledger change to the channel's acknowledgement of the quantity it led to",
    ["channel", "kind"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
CALLS = Counter("invsync_channel_calls_total", "Calls to channel APIs", ["channel", "outcome"])
REFUSALS = Counter(
    "invsync_push_refusals_total", "Pushes a channel refused, by its code", ["channel", "code"]
)
STALE = "CHANGE_FROM_QUANTITY_STALE"
# Auth failures need a person: the channel is not called again for this long.
AUTH_PAUSE_SECONDS = 300.0


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


@dataclass(frozen=True)
class Outgoing:
    """A pending row, the quantity its push may set now (its own, or part of a raise), what
    the channel is expected to show (the compare-and-set's base) and the count of its losses
    if it does."""

    pending: Pending
    quantity: int
    shows: int | None
    drift: Drift | None

    @property
    def sku(self) -> str:
        return self.pending.sku


class Pusher:
    def __init__(
        self,
        gateway: ChannelGateway,
        store: PushStore,
        gate: ChannelGate,
        policy: PushPolicy = PushPolicy(),
        hot: Callable[[], set[str]] = set,
    ) -> None:
        self.gateway, self.store, self.gate, self.policy = gateway, store, gate, policy
        self.channel_id = gateway.channel_id
        self._hot = hot
        self._listed: set[str] = set()  # SKUs whose channel item ref is on file
        self._settle_at = 0.0  # monotonic time of the next look at open submissions
        self._caused: dict[str, float] = {}  # SKU → monotonic time it last caused a call
        self._woken = threading.Event()  # set when the outbox has moved

    def wake(self) -> None:
        """The outbox has moved: a lingering drain looks at once instead of at its next poll."""
        self._woken.set()

    def drain(self) -> int:
        """Push what is due until nothing is, or the channel may not be called; returns calls."""
        calls, policy = 0, self.policy
        with self.gate.draining() as mine:
            if not mine:
                return 0  # another worker is draining this channel
            started = idle_since = time.monotonic()
            while self.gate.closed_for() == 0 and time.monotonic() - started < policy.turn:
                self._settle()
                if not self._due():
                    if time.monotonic() - idle_since >= policy.linger:
                        break
                    self._woken.wait(policy.poll)
                    self._woken.clear()
                    continue
                if not self.gate.take_call(policy.call_timeout):
                    break
                # Read again: what changed while waiting for the turn goes in this call too.
                due = self._due()
                if not due:
                    continue
                calls += 1
                self._caused_by(due[0].sku)
                if not self._call(due):
                    break
                idle_since = time.monotonic()
        return calls

    def _due(self) -> list[Outgoing]:
        """What the next call carries: empty unless some row may cause a call, else every
        pending row (those due first) up to the batch size; rows waiting for the channel's own
        sales to be recorded stay behind."""
        # Beyond a batch, so hot rows behind a long tail are found; bounded, as this is read
        # twice a call and a feed's batch is large.
        pending = self.store.pending(self.channel_id, min(self.gateway.max_batch * 4, 10_000))
        if not pending:
            return []
        now = time.time()
        outgoing = [o for p in pending if (o := self._outgoing(p, now)) is not None]
        hot, cutoff = self._hot(), datetime.now(UTC) - timedelta(seconds=self.policy.batch_window)
        recently = time.monotonic() - self.policy.sku_interval
        due = [
            o
            for o in outgoing
            if (o.sku in hot or o.pending.first_changed_at <= cutoff)
            and self._caused.get(o.sku, float("-inf")) <= recently
        ]
        if not due:
            return []
        # A call that goes anyway takes every other pending row along, up to the batch size.
        chosen = {o.sku for o in due}
        riders = [o for o in outgoing if o.sku not in chosen]
        return (due + riders)[: self.gateway.max_batch]

    def _outgoing(self, pending: Pending, now: float) -> Outgoing | None:
        """The push `pending` may make now; None while it waits for the channel's own sales.
        Without its sales read (no losses unrecorded), it goes as it is."""
        if pending.sold is None:
            return Outgoing(pending, pending.quantity, pending.acknowledged_quantity, pending.drift)
        shows, drift = expected(pending.acknowledged_quantity, pending.drift, pending.sold)
        missing = unrecorded(drift, pending.sold, now, self.policy.unrecorded_wait)
        quantity = allowed(pending.quantity, shows, missing)
        return None if quantity is None else Outgoing(pending, quantity, shows, drift)

    def _caused_by(self, sku: str) -> None:
        """`sku` caused a call: it causes none again for `sku_interval` (it may ride along).
        One SKU per call, so while many SKUs change, calls go at the channel's full rate."""
        now = time.monotonic()
        if len(self._caused) > 10_000:  # forget SKUs whose interval is long over
            self._caused = {
                sku: at for sku, at in self._caused.items() if at > now - self.policy.sku_interval
            }
        self._caused[sku] = now

    def _call(self, due: list[Outgoing]) -> bool:
        """One call; False when the channel should not be called again now."""
        due = self._with_sales(due)
        pushes = [Push(o.sku, o.quantity, o.pending.version, o.shows) for o in due]
        self.gateway.turn_taken()  # the first call goes on the turn just taken
        try:
            self._file_listings(due)
            results = self.gateway.push(pushes)
            answered_at = datetime.now(UTC)
        except Throttled as throttled:
            CALLS.labels(self.channel_id, "throttled").inc()
            self.gate.pause(throttled.retry_after)
            return False
        except ChannelUnavailable as error:
            CALLS.labels(self.channel_id, "unavailable").inc()
            if self.gate.failed():
                log.warning("%s: circuit open after failures: %s", self.channel_id, error)
            return False
        except ChannelAuthFailed as error:
            CALLS.labels(self.channel_id, "auth_failed").inc()
            log.error("%s refuses our credentials: %s", self.channel_id, error)
            self.gate.pause(AUTH_PAUSE_SECONDS)
            return False
        except ChannelError as error:
            # The call as a whole was refused (a 400 to a feed): the rows stay pending, and the
            # breaker keeps the channel from being asked again and again meanwhile.
            CALLS.labels(self.channel_id, "refused").inc()
            log.error("%s refused the call: %s", self.channel_id, error)
            self.gate.failed()
            return False
        CALLS.labels(self.channel_id, "ok").inc()
        self.gate.succeeded()
        self._record(due, results, answered_at)
        return True

    def _record(  # noqa: PLR0912 (one branch per kind of answer)
        self, sent: list[Outgoing], results: list[PushResult], answered_at: datetime
    ) -> None:
        by_sku = {result.sku: result for result in results}
        acknowledged: list[Acknowledged] = []
        observed: list[tuple[str, int]] = []
        shown: list[Shown] = []
        stale: list[tuple[Outgoing, int]] = []
        applied: list[str] = []
        refusals: list[tuple[str, str, str, int | None]] = []
        based: list[tuple[Pending, Drift]] = []
        submitted: dict[str, list[Pending]] = {}
        now = time.time()
        for outgoing in sent:
            pending, result = outgoing.pending, by_sku.get(outgoing.sku)
            if result is None:
                continue  # not answered: stays pending, goes again
            if result.status is PushStatus.SUBMITTED:
                submitted.setdefault(result.ticket, []).append(pending)
                continue
            shows = result.channel_quantity
            if result.status is PushStatus.APPLIED:
                shows = outgoing.quantity if shows is None else shows
                applied.append(f"{pending.sku}={shows}")
                if outgoing.quantity != pending.quantity:  # part of a raise: the rest waits
                    shown.append(Shown(pending, shows, outgoing.drift))
                    continue
                if (drift := self._counted(outgoing, now)) is not None:
                    based.append((pending, drift))
            elif result.status is PushStatus.STALE and shows is not None:
                # The channel moved under us (its shoppers' sales not recorded yet): never
                # overwrite it blindly. What it shows is the base of the next push, which
                # stays pending; reconciliation gets an observation to compare.
                observed.append((pending.sku, shows))
                stale.append((outgoing, shows))
                refusals.append((pending.sku, STALE, f"{pending.sku}={outgoing.quantity}", shows))
                if shows != pending.quantity:
                    continue
                # It happens to show what is pending: the row is done (its drift is kept).
            else:
                code = _code(result)
                if result.status is PushStatus.REJECTED:
                    refusals.append(
                        (pending.sku, code, f"{pending.sku}={outgoing.quantity}", shows)
                    )
                else:
                    log.warning("%s: %s %s %s", self.channel_id, pending.sku, result.status, code)
            done = result.status in {PushStatus.APPLIED, PushStatus.STALE}
            acknowledged.append(Acknowledged(pending, shows, done))
        shown += self._drifted(stale, now)
        for kind, seconds in self.store.acknowledge(self.channel_id, acknowledged, answered_at):
            CONSISTENCY.labels(self.channel_id, kind).observe(seconds)
        self.store.shown(self.channel_id, shown, answered_at)
        self.store.drifts(self.channel_id, based)
        self.store.observe(self.channel_id, observed, reference="push:stale")
        self.store.refused(self.channel_id, [(sku, code) for sku, code, _, _ in refusals])
        for ticket, taken in submitted.items():
            self.store.submit(self.channel_id, ticket, taken)
        self._log(applied, refusals)

    def _with_sales(self, due: list[Outgoing]) -> list[Outgoing]:
        """`due` with the channel's sales read for the rows that went without: what the
        channel is expected to show follows from them (the push's compare-and-set base)."""
        unread = [o.pending for o in due if o.pending.sold is None]
        read = {p.sku: p for p in self.store.sold(self.channel_id, unread)}
        now, outgoing = time.time(), []
        for o in due:
            pending = read.get(o.sku)
            again = self._outgoing(pending, now) if pending is not None else o
            outgoing.append(o if again is None else again)  # None: never, nothing was lost
        return outgoing

    def _counted(self, outgoing: Outgoing, now: float) -> Drift | None:
        """The count of the channel's losses to keep after it took `outgoing` whole (None: the
        one on file stands): started again when none is unrecorded."""
        kept, sold = outgoing.pending.drift, outgoing.pending.sold
        if sold is None:  # a submission settled: nothing read, nothing to count
            return None
        base = settled(outgoing.drift, sold, now, self.policy.unrecorded_wait)
        if base is None:
            return outgoing.drift if outgoing.drift != kept else None
        # Started again when it moved, or when it counts older days than it needs to (no
        # harm if the database's days are not UTC's: a count is as right from any day).
        counts_from = outgoing.pending.sold_from
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        old = counts_from is None or counts_from < yesterday
        if kept is None or kept.lost or kept.sold != base.sold or old:
            return base
        return None

    def _drifted(self, stale: list[tuple[Outgoing, int]], now: float) -> list[Shown]:
        """What refused rows' channels show, and the drift each refusal revealed."""
        shown, wait = [], self.policy.unrecorded_wait
        for outgoing, shows in stale:
            pending = outgoing.pending
            before = pending.acknowledged_quantity
            before = shows if before is None else before  # no check: no drift seen
            guessed = outgoing.shows if outgoing.shows != before else None
            drift = None
            if pending.sold is not None:
                drift = refused(
                    pending.drift, before, shows, pending.sold, now=now, wait=wait, guessed=guessed
                )
            shown.append(Shown(pending, shows, drift))
        return shown

    def _log(self, applied: list[str], refusals: list[tuple[str, str, str, int | None]]) -> None:
        if applied:
            more = f" and {len(applied) - 5} more" if len(applied) > 5 else ""
            log.info("%s now shows %s%s", self.channel_id, ", ".join(applied[:5]), more)
        for _, code, asked, shows in refusals:
            REFUSALS.labels(self.channel_id, code).inc()
            showing = "" if shows is None else f"; it shows {shows}"
            log.info("%s refused %s: %s%s", self.channel_id, asked, code, showing)

    def _settle(self) -> None:
        """Record what the channel has answered for among the pushes it took for later."""
        if time.monotonic() < self._settle_at:
            return
        self._settle_at = time.monotonic() + self.policy.settle_every
        for submission in self.store.submissions(self.channel_id):
            try:
                results = self.gateway.settle(
                    submission.ticket, [p.sku for p in submission.pending]
                )
            except ChannelError as error:  # throttled, unreachable: look again later
                log.info(
                    "%s: submission %s not settled: %s", self.channel_id, submission.ticket, error
                )
                return
            if results is None:
                self._give_up_if_old(submission)
                continue
            sent = [
                Outgoing(p, p.quantity, p.acknowledged_quantity, p.drift)
                for p in submission.pending
            ]
            self._record(sent, results, datetime.now(UTC))
            self.store.forget_submission(self.channel_id, submission.ticket)

    def _give_up_if_old(self, submission: Submission) -> None:
        age = (datetime.now(UTC) - submission.submitted_at).total_seconds()
        if age > self.policy.submission_timeout:
            log.warning(
                "%s: no answer for submission %s after %.0f s: its %d rows go again",
                self.channel_id,
                submission.ticket,
                age,
                len(submission.pending),
            )
            self.store.forget_submission(self.channel_id, submission.ticket)

    def _file_listings(self, due: list[Outgoing]) -> None:
        # A channel that names our SKUs by its own ids (a Shopify inventory item) in its
        # webhooks: file the names before the push, so its echo is known for one however
        # fast the webhook comes.
        listings = getattr(self.gateway, "listings", None)
        unlisted = [p.sku for p in due if p.sku not in self._listed]
        if listings is None or not unlisted:
            return
        refs = listings(unlisted)
        self.store.remember_listings(self.channel_id, refs)
        self._listed.update(sku for _, sku in refs)


def _code(result: PushResult) -> str:
    """The channel's code for a refusal (`CODE: message` details), else the status."""
    head = result.detail.split(":", 1)[0].strip()
    return (
        head
        if head and head.replace("_", "").isalnum() and head.isupper()
        else (result.status.value.upper())
    )
