"""Drift: how far what a channel shows of a SKU is from what it should show, and what to do.

What a channel should show at a reading is the quantity it last acknowledged of our pushes, less
the units it sold itself after that acknowledgement and by the reading (its shoppers' sales lower
its count before any push does). Sales that occurred after the reading are not counted: the
channel had not had them yet. A reading taken while a push is in flight (not acknowledged yet,
or acknowledged within `SALE_MARGIN` of the reading: Amazon applies a patch it accepted a moment
later) cannot tell our push from a hand edit: it is `Unsettled`, and the SKU is checked again on
the next run. So is a reading taken within that margin of one of the channel's sales (its clock
and ours, and the time its answer took, leave it unknown whether the reading counted that sale),
or after a sale within it of the acknowledgement. Pure: the caller reads the facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Sale:
    """Units the channel sold of the SKU itself (net: a cancellation counts negative), when the
    sale occurred on the channel."""

    units: int
    occurred_at: datetime


@dataclass(frozen=True)
class PushRecord:
    """What invsync knows of its pushes of one SKU to one channel when the reading is judged.

    `acknowledged`: the quantity the channel last confirmed, at `acknowledged_at` (None: never
    pushed); `in_flight`: a newer quantity waits to be pushed or to be settled."""

    acknowledged: int | None
    acknowledged_at: datetime | None
    in_flight: bool


@dataclass(frozen=True)
class NoDrift:
    """The channel shows what it should."""


@dataclass(frozen=True)
class Unsettled:
    """The reading cannot be judged now (a push in flight, or none ever acknowledged)."""

    why: str


@dataclass(frozen=True)
class Correct:
    """A small drift: set the channel back to the ledger's value and record it."""

    observed: int
    expected: int

    @property
    def difference(self) -> int:
        return self.observed - self.expected


@dataclass(frozen=True)
class Escalate:
    """A drift too large to correct unasked: a discrepancy for a person to review."""

    observed: int
    expected: int

    @property
    def difference(self) -> int:
        return self.observed - self.expected


Judgement = NoDrift | Unsettled | Correct | Escalate

# Channels date their orders to the second (Shopify, WooCommerce), a reading takes a moment, and
# Amazon applies an accepted patch a moment later: events this close cannot be ordered.
SALE_MARGIN = timedelta(seconds=5)


def expected_at(
    acknowledged: int, acknowledged_at: datetime, sales: Iterable[Sale], read_at: datetime
) -> int:
    """What the channel should show at `read_at`: the acknowledged quantity less its own sales
    that occurred after the acknowledgement and by the reading (never below zero: a channel
    does not show negative stock)."""
    sold = sum(s.units for s in sales if acknowledged_at < s.occurred_at <= read_at)
    return max(acknowledged - sold, 0)


def classify(observed: int, expected: int, auto_correct_below: int) -> NoDrift | Correct | Escalate:
    """No drift when they agree; a correction when `|observed - expected|` is below
    `auto_correct_below`; else an escalation."""
    if observed == expected:
        return NoDrift()
    if abs(observed - expected) < auto_correct_below:
        return Correct(observed, expected)
    return Escalate(observed, expected)


def judge(
    observed: int,
    read_at: datetime,
    record: PushRecord,
    sales: Iterable[Sale],
    auto_correct_below: int,
    *,
    margin: timedelta = SALE_MARGIN,
) -> Judgement:
    """What a reading of `observed` at `read_at` means, given the pushes and the channel's own
    sales as the ledger holds them (after the orders poll, so a missed sale is in `sales`).
    Within `margin` of each other, a reading, an acknowledgement and a sale cannot be told
    apart: the reading is left unjudged."""
    if record.acknowledged is None or record.acknowledged_at is None:
        return Unsettled("no push of the SKU was ever acknowledged by the channel")
    if record.in_flight or read_at - record.acknowledged_at <= margin:
        return Unsettled("a push is in flight: the reading may not show it yet")
    sales = list(sales)
    if _near(sales, read_at, margin):
        return Unsettled("a sale occurred as the channel was read: it may not be in the reading")
    if _near(sales, record.acknowledged_at, margin):
        return Unsettled("a sale occurred as the push was answered: it may be in the quantity")
    expected = expected_at(record.acknowledged, record.acknowledged_at, sales, read_at)
    return classify(observed, expected, auto_correct_below)


def as_asked(observed: int, record: PushRecord, wanted: int) -> bool:
    """Whether a reading is no drift before any sale is looked up: the channel shows the
    quantity it last acknowledged, the ledger still wants that, and no push is in flight. A sale
    the channel made since would show as drift only until its own push, which the ledger's
    quantity has not seen yet (not projected): a correction would push the same quantity
    again. Most readings of a catalogue are so; their SKUs' histories are not read."""
    return not record.in_flight and record.acknowledged == observed == wanted


def _near(sales: Sequence[Sale], moment: datetime, margin: timedelta) -> bool:
    return any(abs(sale.occurred_at - moment) <= margin for sale in sales)


def set_back_at_once(observed: int, expected: int) -> bool:
    """While a discrepancy is open: whether to set the channel back to `expected` now. A channel
    showing more than it should oversells, so it is set back at once; one showing less only
    strands stock, so it waits for the review."""
    return observed > expected
