"""What a pusher decides, as pure functions of what it read: which pending rows the next call
carries (`due`), what each row may set now (`outgoing`), what a failed call means for the channel
(`setback`) and what the channel's answers mean for each row (`outcomes`). The pusher reads,
asks these, calls the gateway and records; nothing here does I/O or reads a clock.

Due: a hot SKU (top sellers) at once; any other once its oldest change has waited the batch
window, so the long tail travels in few, full calls, but only while the channel's calls are in
demand: in a quiet store nothing comes to share a call, and a sale of a slow mover goes at once
(`quiet`). A SKU that caused a call within the window is no slow mover: it waits the window
like the long tail, so a SKU selling without pause that is not hot yet calls once a window, not
once every interval. A SKU at risk goes at once whatever its velocity (`at_risk`: its new
quantity at or below what could sell during the batch window plus the channel's buffer, or a
move to or from zero), and leads the call (`rank`: the lowest cover in days of sales first, then
by velocity), so a channel that takes few SKUs a call (Amazon's patches) spends them where an
oversell is nearest. Each push carries that verdict (`urgent`: at risk or hot), so a gateway
that sets a few SKUs quickly and the rest slowly (Walmart's single PUTs beside a feed) follows
the pusher's judgement instead of making one of its own. A call that goes takes every other
pending row along, up to the batch size: riders cost no call. A SKU that caused a call a moment
ago causes none of its own (it may ride along, and a move to or from zero goes all the same), so
a best seller costs calls per interval, not per sale, and while many SKUs change, calls go at
the channel's full rate.

A channel that refuses a push because it moved under us (Shopify's compare-and-set answers
CHANGE_FROM_QUANTITY_STALE, and is read again) keeps its row pending: what it shows now is the
base of the next push, which goes at once when it does not raise the channel, and otherwise only
as far as the channel's own sales the ledger has not recorded yet allow (`decisions.py`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from infrastructure.channels.gateway import (
    ChannelAuthFailed,
    ChannelError,
    ChannelUnavailable,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.push.decisions import Drift, allowed, expected, refused, settled, unrecorded
from infrastructure.push.store import Acknowledged, Pending, Shown

STALE = "CHANGE_FROM_QUANTITY_STALE"
# Auth failures need a person: the channel is not called again for this long.
AUTH_PAUSE_SECONDS = 300.0
# SKUs a pusher remembers having caused a call before it forgets those whose interval is over.
CAUSES_KEPT = 10_000


@dataclass(frozen=True)
class Outgoing:
    """A pending row, the quantity its push may set now (its own, or part of a raise), what
    the channel is expected to show (the compare-and-set's base), the count of its losses if
    it does, and whether `due` judged it `urgent`."""

    pending: Pending
    quantity: int
    shows: int | None
    drift: Drift | None
    urgent: bool = False

    @property
    def sku(self) -> str:
        return self.pending.sku

    def push(self) -> Push:
        """What the gateway is asked: the quantity, the ledger version it was computed at,
        what the channel is expected to show (the compare-and-set's base) and the verdict."""
        return Push(self.sku, self.quantity, self.pending.version, self.shows, self.urgent)


def as_pending(pending: Pending) -> Outgoing:
    """`pending` pushed as it is: its own quantity against what the channel last showed."""
    return Outgoing(pending, pending.quantity, pending.acknowledged_quantity, pending.drift)


def outgoing(pending: Pending, now: float, wait: float) -> Outgoing | None:
    """The push `pending` may make at `now` (seconds of the drift's clock); None while a raise
    waits for the channel's own sales to be recorded (at most `wait` seconds). Without its
    sales read (no losses unrecorded), it goes as it is."""
    if pending.sold is None:
        return as_pending(pending)
    shows, drift = expected(pending.acknowledged_quantity, pending.drift, pending.sold)
    missing = unrecorded(drift, pending.sold, now, wait)
    quantity = allowed(pending.quantity, shows, missing)
    return None if quantity is None else Outgoing(pending, quantity, shows, drift)


def sendable(rows: Sequence[Pending], now: float, wait: float) -> list[Outgoing]:
    """The pushes `rows` may make now (`outgoing`), in their order; rows waiting for the
    channel's own sales to be recorded are left out."""
    return [o for p in rows if (o := outgoing(p, now, wait)) is not None]


def with_sales(
    sent: Sequence[Outgoing], read: Mapping[str, Pending], now: float, wait: float
) -> list[Outgoing]:
    """`sent` once the channel's sales of the rows that went without were `read` (by SKU): what
    the channel is expected to show follows from them (the push's compare-and-set base). Each
    keeps its verdict: the call was decided on it."""
    again = [(o, outgoing(read[o.sku], now, wait) if o.sku in read else o) for o in sent]
    # None: nothing was lost, the row goes as it was.
    return [o if redone is None else replace(redone, urgent=o.urgent) for o, redone in again]


SECONDS_A_DAY = 86_400.0


@dataclass(frozen=True)
class Risk:
    """What puts a row at risk on this channel: `velocity`, units sold a day by SKU (absent:
    none), `window` the seconds the long tail may wait, `buffer` the channel's safety buffer."""

    velocity: Mapping[str, float] = field(default_factory=dict)
    window: float = 0.0
    buffer: int = 0

    def at_risk(self, row: Outgoing) -> bool:
        """True when `row` must go at once whatever its velocity (`zero_move`, or its new
        quantity at or below what could sell during the window plus the buffer)."""
        could_sell = math.ceil(self.velocity.get(row.sku, 0.0) * self.window / SECONDS_A_DAY)
        return zero_move(row) or row.quantity <= could_sell + self.buffer

    def rank(self, row: Outgoing) -> tuple[int, float]:
        """Where `row` stands among a call's causes: at risk first, the fewest days of sales
        its new quantity covers first; then the fastest sellers first."""
        velocity = self.velocity.get(row.sku, 0.0)
        if self.at_risk(row):
            return (0, cover(row.quantity, velocity))
        return (1, -velocity)


def zero_move(row: Outgoing) -> bool:
    """True when `row` moves the channel to zero or up from it (the first push of a SKU
    counts as from zero only when it sets zero)."""
    before = row.pending.acknowledged_quantity
    return (row.quantity <= 0) != (before is not None and before <= 0)


def cover(quantity: int, velocity: float) -> float:
    """Days of sales at `velocity` a day that `quantity` covers (infinite: none sell)."""
    if quantity <= 0:
        return 0.0
    return quantity / velocity if velocity > 0 else math.inf


def quiet(calls: Sequence[float], now: float, rate: float, share: float) -> bool:
    """True when the channel's calls in the second up to `now` (`calls`, in seconds of the same
    clock) used less than `share` of its `rate`: the long tail need not wait for company."""
    return sum(1 for at in calls if now - at < 1.0) < share * rate


def slow_mover(store_quiet: bool, caused_in_window: bool) -> bool:
    """True when a SKU's change may skip the batch window: the store is quiet (`quiet`) and
    the SKU caused no call during the window (a SKU that did keeps selling: it waits)."""
    return store_quiet and not caused_in_window


def urgent(row: Outgoing, hot: Collection[str], risk: Risk) -> bool:
    """The verdict `row`'s push carries: True when it is at `risk` or its SKU is among the
    `hot` sellers, the pushes a channel with few quick calls spends them on first."""
    return row.sku in hot or risk.at_risk(row)


def never(sku: str) -> bool:
    return False


def due(
    rows: Sequence[Outgoing],
    *,
    hot: Collection[str],
    cutoff: datetime,
    resting: Callable[[str], bool],
    max_batch: int,
    risk: Risk = Risk(),
    quiet: Callable[[str], bool] = never,
) -> list[Outgoing]:
    """What the next call carries: nothing unless some row may cause a call (its SKU is `hot`,
    at `risk`, `quiet` (may skip the batch window), or its oldest change is no later than
    `cutoff`, and it is not `resting` unless it moves to or from zero); else those rows in
    `risk`'s rank, then every other one riding along, in their order, up to `max_batch`, each
    judged (`urgent`; a rider too: a hot SKU resting after its last call still sells fast)."""

    def causes(row: Outgoing) -> bool:
        sku = row.sku
        waited = urgent(row, hot, risk) or row.pending.first_changed_at <= cutoff
        return ((waited or quiet(sku)) and not resting(sku)) or zero_move(row)

    causing = [o for o in rows if causes(o)]
    if not causing:
        return []
    causing.sort(key=risk.rank)
    chosen = {o.sku for o in causing}
    carried = (causing + [o for o in rows if o.sku not in chosen])[:max_batch]
    # Rows come unjudged from `sendable`: only the urgent need a copy.
    return [replace(o, urgent=True) if urgent(o, hot, risk) else o for o in carried]


class Causes:
    """When each SKU last caused a call (seconds of a monotonic clock), so that one that did
    causes none again for an interval."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def resting(self, sku: str, since: float) -> bool:
        """True when `sku` caused a call after `since`."""
        return self._at.get(sku, float("-inf")) > since

    def caused(self, sku: str, now: float, since: float) -> None:
        """`sku` caused a call at `now`; those that last did before `since` may be forgotten."""
        if len(self._at) > CAUSES_KEPT:
            self._at = {s: at for s, at in self._at.items() if at > since}
        self._at[sku] = now


@dataclass(frozen=True)
class Setback:
    """What a call that failed as a whole means: `outcome` names it (the calls counter's
    label), `pause` is how long the channel must not be called (None: as the breaker says),
    `failure` whether it counts against the breaker, `says` what to log as an error (None:
    nothing; an outage is logged once the breaker opens)."""

    outcome: str
    pause: float | None = None
    failure: bool = False
    says: str | None = None


def setback(error: ChannelError) -> Setback:
    """The setback `error` (raised by the gateway for the whole call) is. The rows stay
    pending whatever it is: only the channel's calls wait."""
    if isinstance(error, Throttled):
        return Setback("throttled", pause=error.retry_after)
    if isinstance(error, ChannelUnavailable):
        return Setback("unavailable", failure=True)
    if isinstance(error, ChannelAuthFailed):
        return Setback("auth_failed", pause=AUTH_PAUSE_SECONDS, says="refuses our credentials")
    # The call as a whole was refused (a 400 to a feed): the breaker keeps the channel from
    # being asked again and again meanwhile.
    return Setback("refused", failure=True, says="refused the call")


@dataclass(frozen=True)
class Refusal:
    """The channel refused to set `asked` (`sku=quantity`) of `sku` with `code`, showing
    `shows` (None: it did not say)."""

    sku: str
    code: str
    asked: str
    shows: int | None


@dataclass
class Outcomes:
    """What the channel's answers to one call mean, per table the pusher records them in."""

    acknowledged: list[Acknowledged] = field(default_factory=list)  # answered: not pending
    shown: list[Shown] = field(default_factory=list)  # what the channel shows; still pending
    drifts: list[tuple[Pending, Drift]] = field(default_factory=list)  # counts started again
    observed: list[tuple[str, int]] = field(default_factory=list)  # for reconciliation
    refusals: list[Refusal] = field(default_factory=list)
    submitted: dict[str, list[Pending]] = field(default_factory=dict)  # by ticket
    applied: list[str] = field(default_factory=list)  # `sku=quantity` the channel now shows
    unusual: list[str] = field(default_factory=list)  # answers worth a warning


@dataclass(frozen=True)
class Clock:
    """When the answers came: `now` in seconds of the drift's clock, `today` the UTC date;
    `wait` the seconds a raise waits at most for the channel's sales to be recorded."""

    now: float
    today: date
    wait: float


def outcomes(sent: Sequence[Outgoing], results: Sequence[PushResult], clock: Clock) -> Outcomes:
    """What each row `sent` comes to, by the channel's result for its SKU. A row without a
    result stays pending and goes again."""
    by_sku = {result.sku: result for result in results}
    found = Outcomes()
    for row in sent:
        result = by_sku.get(row.sku)
        if result is not None:
            _ANSWERS.get(result.status, _other)(found, row, result, clock)
    return found


def _submitted(found: Outcomes, row: Outgoing, result: PushResult, clock: Clock) -> None:
    found.submitted.setdefault(result.ticket, []).append(row.pending)


def _applied(found: Outcomes, row: Outgoing, result: PushResult, clock: Clock) -> None:
    pending = row.pending
    shows = row.quantity if result.channel_quantity is None else result.channel_quantity
    found.applied.append(f"{row.sku}={shows}")
    if row.quantity != pending.quantity:  # part of a raise: the rest waits
        found.shown.append(Shown(pending, shows, row.drift))
        return
    if (drift := counted(row, clock)) is not None:
        found.drifts.append((pending, drift))
    found.acknowledged.append(Acknowledged(pending, shows, True))


def _stale(found: Outcomes, row: Outgoing, result: PushResult, clock: Clock) -> None:
    """The channel moved under us (its shoppers' sales not recorded yet): never overwrite it
    blindly. What it shows is the base of the next push, which stays pending unless the
    channel happens to show what is pending; reconciliation gets an observation to compare."""
    shows = result.channel_quantity
    if shows is None:
        _other(found, row, result, clock)
        return
    found.observed.append((row.sku, shows))
    found.refusals.append(Refusal(row.sku, STALE, f"{row.sku}={row.quantity}", shows))
    found.shown.append(Shown(row.pending, shows, stale_drift(row, shows, clock)))
    if shows == row.pending.quantity:  # the row is done (its drift is kept)
        found.acknowledged.append(Acknowledged(row.pending, shows, True))


def _other(found: Outcomes, row: Outgoing, result: PushResult, clock: Clock) -> None:
    """Not applied: a refusal of this item, a SKU the channel does not list, a stale answer
    that did not say what the channel shows. Answered all the same: not pushed again."""
    code, shows = refusal_code(result), result.channel_quantity
    if result.status is PushStatus.REJECTED:
        found.refusals.append(Refusal(row.sku, code, f"{row.sku}={row.quantity}", shows))
    else:
        found.unusual.append(f"{row.sku} {result.status} {code}")
    found.acknowledged.append(Acknowledged(row.pending, shows, result.status is PushStatus.STALE))


_ANSWERS: dict[PushStatus, Callable[[Outcomes, Outgoing, PushResult, Clock], None]] = {
    PushStatus.SUBMITTED: _submitted,
    PushStatus.APPLIED: _applied,
    PushStatus.STALE: _stale,
}


def counted(row: Outgoing, clock: Clock) -> Drift | None:
    """The count of the channel's losses to keep after it took `row` whole (None: the one on
    file stands): started again when none is unrecorded."""
    kept, sold = row.pending.drift, row.pending.sold
    if sold is None:  # a submission settled: nothing read, nothing to count
        return None
    base = settled(row.drift, sold, clock.now, clock.wait)
    if base is None:
        return row.drift if row.drift != kept else None
    # Started again when it moved, or when it counts older days than it needs to (no harm if
    # the database's days are not UTC's: a count is as right from any day).
    counts_from = row.pending.sold_from
    old = counts_from is None or counts_from < clock.today - timedelta(days=1)
    if kept is None or kept.lost or kept.sold != base.sold or old:
        return base
    return None


def stale_drift(row: Outgoing, shows: int, clock: Clock) -> Drift | None:
    """The drift a refusal of `row` revealed, the channel read to show `shows` (None: its
    sales were not read, nothing to count)."""
    pending = row.pending
    if pending.sold is None:
        return None
    before = pending.acknowledged_quantity
    before = shows if before is None else before  # no check: no drift seen
    guessed = row.shows if row.shows != before else None
    return refused(
        pending.drift, before, shows, pending.sold, now=clock.now, wait=clock.wait, guessed=guessed
    )


def refusal_code(result: PushResult) -> str:
    """The channel's code for a refusal (`CODE: message` details), else the status."""
    head = result.detail.split(":", 1)[0].strip()
    if head and head.replace("_", "").isalnum() and head.isupper():
        return head
    return result.status.value.upper()


def overdue(submitted_at: datetime, now: datetime, timeout: float) -> bool:
    """True when a submission made at `submitted_at` has waited more than `timeout` seconds
    for the channel's answer: it is given up, and its rows go again."""
    return (now - submitted_at).total_seconds() > timeout
