"""What reconciliation does when, decided without I/O: which scheduled runs of a channel are due
(`due_runs`), and the steps a run is worked in (`plan`, `step_at`), one Dramatiq message each:
a catalogue's read is one step per page of the channel's API, as many as the catalogue has.

A schedule's runs fall in fixed slots of its period, shifted per channel, so every process that
asks what is due at the same time names the same slot (the run table keeps one row per slot),
and channels with the same period do not all start on the same second.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

What = Literal["orders", "levels", "both"]
Scope = Literal["requested", "orders", "active", "catalog"]

# SKUs one level step reads: a page of the API that allows the fewest per read (Amazon's
# searchListingsItems, 20) many times over, so a step stays well inside a worker's lease.
SKUS_PER_STEP = 500


@dataclass(frozen=True)
class Cadence:
    """A schedule of a channel: a run of `what` over `scope`'s SKUs every `every` seconds."""

    scope: Scope
    what: What
    every: float


@dataclass(frozen=True)
class Due:
    """A scheduled run due now: its slot's start names it (`key`)."""

    scope: Scope
    what: What
    slot: datetime

    @property
    def key(self) -> str:
        return f"{self.scope}:{int(self.slot.timestamp())}"


@dataclass(frozen=True)
class Step:
    """One message's work: the orders poll, or the levels of `skus` (None: every SKU the
    channel lists)."""

    what: Literal["orders", "levels"]
    skus: tuple[str, ...] | None = None


def cadences(orders_every: float, active_every: float, catalog_every: float) -> tuple[Cadence, ...]:
    """A channel's three schedules, the catalogue's before the active SKUs' (see `covering`).
    Level runs poll orders first: a sale the channel took but the ledger has not seen yet
    would otherwise look like drift."""
    return (
        Cadence("orders", "orders", orders_every),
        Cadence("catalog", "both", catalog_every),
        Cadence("active", "both", active_every),
    )


def covering(scope: Scope) -> tuple[Scope, ...]:
    """The schedules whose open run makes a new run of `scope` needless: its own (a channel
    that is down gets no pile of runs), and for the active SKUs the catalogue's, which reads
    them too."""
    return (scope, "catalog") if scope == "active" else (scope,)


def slot_start(channel_id: str, every: float, now: datetime) -> datetime:
    """The start of the slot of `every` seconds that `now` falls in, for this channel."""
    period = max(1, int(every))
    offset = zlib.crc32(channel_id.encode()) % period  # the same in every process
    seconds = int(now.timestamp()) - offset
    return datetime.fromtimestamp(seconds - seconds % period + offset, UTC)


def due_runs(channel_id: str, schedules: Sequence[Cadence], now: datetime) -> list[Due]:
    """The run of each schedule whose slot `now` is in (the table makes it at most once)."""
    return [Due(c.scope, c.what, slot_start(channel_id, c.every, now)) for c in schedules]


def plan(what: What, skus: Sequence[str] | None, per_step: int = SKUS_PER_STEP) -> list[Step]:
    """The steps of a run: the orders poll first, then the levels in batches of `per_step`
    SKUs (one step reading every SKU the channel lists when `skus` is None)."""
    steps = [Step("orders")] if what in ("orders", "both") else []
    if what == "orders":
        return steps
    if skus is None:
        return [*steps, Step("levels")]
    ordered = sorted(set(skus))
    batches = [tuple(ordered[i : i + per_step]) for i in range(0, len(ordered), per_step)]
    return [*steps, *(Step("levels", batch) for batch in batches)]


def step_at(what: What, skus: Sequence[str] | None, index: int) -> Step | None:
    """The run's step `index`: its plan's, or past the plan of a run reading the catalogue, a
    later page of it (a page's step adds the next page's); None past a plan of named SKUs."""
    steps = plan(what, skus)
    if index < len(steps):
        return steps[index]
    return Step("levels") if skus is None and what != "orders" else None


def last_planned(what: What, skus: Sequence[str] | None, index: int) -> bool:
    """Whether step `index` is the plan's last or past it (a catalogue's later page): the step
    that judges the run's remaining readings once it has no more to read."""
    return index >= len(plan(what, skus)) - 1
