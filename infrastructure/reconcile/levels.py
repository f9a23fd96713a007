"""Levels read and judged (Seam 2): each channel's quantities read in bulk through its kind's
`read_levels`, judged against what it should show (`domain.drift`: the quantity it last
acknowledged, less its own sales since, unjudged while a push is in flight), and acted on. A
small drift is corrected: the outbox row goes out again with the ledger's quantity (compare-and-
set against what the channel shows, on Shopify) and the correction is recorded as a discrepancy
resolved at once by invsync. A larger one opens a discrepancy for review, and a channel showing
more than it should is set back at once (it would oversell); one showing less waits.

The orders poll runs first (the run's steps: `application.reconcile_plan`), so a sale whose
webhook was lost is in the ledger before its SKU's level is judged; and a reading is judged
only `settle` seconds after it was read (while later pages are read: `settled`), so a sale made
just before a reading has had its webhook's time to reach the ledger; and a reading within
`settle` of a sale or of the push's acknowledgement is left unjudged (`domain.drift.judge`'s
margin, by default `SALE_MARGIN`). A run judges its readings a page at a time:
`level_steps.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from psycopg import Connection

from domain.discrepancy import Discrepancy, Resolution
from domain.drift import (
    SALE_MARGIN,
    Correct,
    Escalate,
    PushRecord,
    Sale,
    as_asked,
    judge,
    set_back_at_once,
)
from infrastructure import outbox
from infrastructure.channels.base import LevelReading
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import ChannelGateway
from infrastructure.channels.kinds import kind_of
from infrastructure.reconcile import discrepancies

Connect = Callable[[], AbstractContextManager[Connection[Any]]]
# The channel's own sales of a SKU recorded after a time (`TimeTravel.channel_sales`).
ChannelSales = Callable[[str, str, datetime], Sequence[Sale]]

BATCH = 500  # readings judged per transaction
AUTO = "invsync"  # who resolves the corrections invsync makes unasked


@dataclass(frozen=True)
class LevelsChecked:
    """SKUs read, drifts corrected, discrepancies opened."""

    read: int = 0
    corrected: int = 0
    escalated: int = 0

    def __add__(self, other: LevelsChecked) -> LevelsChecked:
        return LevelsChecked(
            self.read + other.read,
            self.corrected + other.corrected,
            self.escalated + other.escalated,
        )


def check_levels(
    channel: ChannelConfig,
    *,
    gateway: ChannelGateway,
    connect: Connect,
    sales: ChannelSales,
    skus: Sequence[str] | None = None,
    settle: float = SALE_MARGIN.total_seconds(),
) -> LevelsChecked:
    """Read the levels of `skus` (None: every SKU the channel lists) through `gateway` (the
    channel's own, in its SKUs: `api_for`) in this process, and correct or escalate what
    drifted: each batch judged once `settle` seconds passed since it was read, while later ones
    are read.

    Raises what the kind's `read_levels` raises (`Throttled`, `ChannelUnavailable`, ...)."""
    read = kind_of(channel).read_levels
    if read is None:
        return LevelsChecked()
    checked, waiting = LevelsChecked(), list[LevelReading]()
    for batch in _batches(read(channel, gateway, skus)):
        ready, waiting = settled([*waiting, *batch], datetime.now(UTC), settle)
        checked += judged(channel, connect, sales, settle, ready)
    wait_settled(waiting, settle)
    checked += judged(channel, connect, sales, settle, waiting)
    return checked


def settled(
    readings: Sequence[LevelReading], now: datetime, settle: float
) -> tuple[list[LevelReading], list[LevelReading]]:
    """`readings` split into those taken `settle` seconds or more before `now` (to judge now)
    and the rest (to judge later)."""
    before = now - timedelta(seconds=settle)
    ready = [reading for reading in readings if reading.read_at <= before]
    return ready, [reading for reading in readings if reading.read_at > before]


def settling_for(last_read: datetime, now: datetime, settle: float) -> float | None:
    """Seconds from `now` until a reading taken at `last_read` has settled; None once it
    has (to judge now)."""
    left = last_read + timedelta(seconds=settle) - now  # as `settled` counts, to the microsecond
    return left.total_seconds() if left > timedelta(0) else None


def wait_settled(readings: Sequence[LevelReading], settle: float) -> None:
    """Wait until `settle` seconds have passed since the last of `readings` was taken."""
    if readings:
        last = max(reading.read_at for reading in readings)
        wait = settling_for(last, datetime.now(UTC), settle)
        if wait is not None:
            time.sleep(wait)


def judged(
    channel: ChannelConfig,
    connect: Connect,
    sales: ChannelSales,
    settle: float,
    readings: Sequence[LevelReading],
) -> LevelsChecked:
    """Judge `readings` and act on them, in one transaction; count what was found."""
    if not readings:
        return LevelsChecked()
    with connect() as conn:
        return _Judge(channel, conn, sales, timedelta(seconds=settle)).batch(readings)


def _batches(readings: Iterable[LevelReading]) -> Iterator[list[LevelReading]]:
    iterator = iter(readings)
    while batch := list(islice(iterator, BATCH)):
        yield batch


class _Judge:
    """Judges a batch of one channel's readings in one transaction, and acts on them."""

    def __init__(
        self, channel: ChannelConfig, conn: Connection[Any], sales: ChannelSales, margin: timedelta
    ) -> None:
        self.channel, self.conn, self.sales, self.margin = channel, conn, sales, margin

    def batch(self, readings: Sequence[LevelReading]) -> LevelsChecked:
        skus = [reading.sku for reading in readings]
        pushes = outbox.pushed(self.conn, self.channel.id, skus)
        checked = LevelsChecked(read=len(readings))
        for reading in readings:
            checked += self.one(reading, pushes.get(reading.sku))
        return checked

    def one(self, reading: LevelReading, pushed: outbox.Pushed | None) -> LevelsChecked:
        if pushed is None:
            return LevelsChecked()  # never announced: nothing it should show (adoption's case)
        record = PushRecord(pushed.acknowledged_quantity, pushed.acknowledged_at, pushed.in_flight)
        if as_asked(reading.quantity, record, pushed.quantity):
            return LevelsChecked()
        sold: Sequence[Sale] = []
        if record.acknowledged_at is not None and not record.in_flight:
            sold = self.sales(reading.sku, self.channel.id, record.acknowledged_at)
        below = self.channel.reconcile.auto_correct_below
        verdict = judge(reading.quantity, reading.read_at, record, sold, below, margin=self.margin)
        if isinstance(verdict, Correct):
            return self.correct(reading, verdict, _evidence(reading, pushed, sold, below))
        if isinstance(verdict, Escalate):
            return self.escalate(reading, verdict, _evidence(reading, pushed, sold, below))
        return LevelsChecked()

    def correct(
        self, reading: LevelReading, drift: Correct, evidence: dict[str, Any]
    ) -> LevelsChecked:
        found = self._detected(reading, drift.observed, drift.expected, evidence)
        why = f"corrected: {drift.difference:+d} is within auto_correct_below"
        found.resolve(Resolution.PUSH_LEDGER, why, by=AUTO)
        with self.conn.transaction(), self.conn.cursor() as curs:
            outbox.push_again(curs, self.channel.id, reading.sku, drift.observed)
            discrepancies.save(self.conn, found)
        return LevelsChecked(corrected=1)

    def escalate(
        self, reading: LevelReading, drift: Escalate, evidence: dict[str, Any]
    ) -> LevelsChecked:
        found = self._detected(reading, drift.observed, drift.expected, evidence)
        with self.conn.transaction(), self.conn.cursor() as curs:
            opened = discrepancies.save(self.conn, found)
            if set_back_at_once(drift.observed, drift.expected):
                outbox.push_again(curs, self.channel.id, reading.sku, drift.observed)
        return LevelsChecked(escalated=int(opened))

    def _detected(
        self, reading: LevelReading, observed: int, expected: int, evidence: dict[str, Any]
    ) -> Discrepancy:
        return Discrepancy(
            self.channel.id,
            reading.sku,
            observed=observed,
            expected=expected,
            read_at=reading.read_at,
            evidence=evidence,
        )


def _evidence(
    reading: LevelReading, pushed: outbox.Pushed, sold: Sequence[Sale], below: int
) -> dict[str, Any]:
    """What the judgement rested on, as the review shows it (JSON: times in ISO 8601)."""
    acknowledged_at = pushed.acknowledged_at
    return {
        "reading": {"quantity": reading.quantity, "read_at": reading.read_at.isoformat()},
        "push": {
            "ledger_quantity": pushed.quantity,
            "acknowledged": pushed.acknowledged_quantity,
            "acknowledged_at": acknowledged_at and acknowledged_at.isoformat(),
        },
        "sales_since": [
            {"units": sale.units, "occurred_at": sale.occurred_at.isoformat()} for sale in sold
        ],
        "auto_correct_below": below,
    }
