"""Available-to-sell as a fold over the ledger's events: the one computation behind the live
projection (which loads the state of a batch's SKUs, folds the batch, and writes the rows back)
and the rebuild (which folds the whole history in memory and writes every row once).

Both paths must agree row for row, so everything that decides a number lives here:
- levels per (SKU, location), folded from each event's own `deltas()`;
- units sold per (SKU, channel, day), the channel being the sale's `source`;
- the rules in force: the configured ones, changed by `ChannelRules` events;
- a SKU's ATS is computed when one of its events is folded, or for every SKU when a configured
  channel's rules change, with the sales velocity of the `VELOCITY_DAYS` days up to that event's
  day (the day a stock event occurred at its source; the day a rules event was recorded).

`compute` is the one computation of available-to-sell: the projection calls it for what it
stores and sends, the answers about the past call it with the same inputs rebuilt from the
events, and an explanation of a stored number re-runs `allocate` on the inputs it was computed
from (the velocities are stored with it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID

from domain.allocation import Allocation, ChannelRule, Step, allocate
from domain.inventory import InventoryItem
from domain.rules import ChannelRules, channel_rules_id, rule_in_force
from domain.stock import Levels
from domain.velocity import VELOCITY_DAYS, DailySales, add_sale, velocities_on

__all__ = ["VELOCITY_DAYS"]  # the pushers' store reads the window from here

STATES = ("on_hand", "committed", "reserved", "unavailable")

_INDEX = {state: n for n, state in enumerate(STATES)}
RULES_KIND = "rules"  # what changed a quantity when the rules did, not a stock event

RulesEvent = ChannelRules.Changed | ChannelRules.SkuOverridden


@dataclass(frozen=True, slots=True)
class Computation:
    """One computation of a SKU's available-to-sell: the sales velocity per channel it weighed
    the channels by, and each channel's allocation with the steps that produced it."""

    velocities: dict[str, float]
    allocations: dict[str, Allocation]


def compute(
    locations: Mapping[str, Levels],
    rules: Sequence[ChannelRule],
    sales: DailySales,
    day: date | None,
) -> Computation:
    """Each channel's ATS from the SKU's levels, the rules in force and its sales per (channel,
    day), velocity measured over the window up to `day` (None: no velocity, the SKU has no
    stock event yet). Rules that weigh no velocity make the sales irrelevant: pass `{}`."""
    velocities = velocities_on(sales, day) if day is not None else {}
    return Computation(velocities, allocate(locations, rules, velocities))


@dataclass
class RuleBook:
    """The rules in force: each configured channel's rule, as changed since by recorded events.

    `recorded` and `overrides` hold the keys as events store them, so a book can be saved to and
    loaded from a table as it is."""

    defaults: Sequence[ChannelRule]
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    overrides: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_id = {channel_rules_id(rule.channel_id): rule for rule in self.defaults}

    def channel_of(self, event: RulesEvent) -> str | None:
        """The configured channel the rules event is about; None for a channel not configured."""
        rule = self._by_id.get(event.originator_id)
        return rule.channel_id if rule else None

    def apply(self, event: RulesEvent) -> str | None:
        """Fold a rules event. Returns the one SKU it concerns, or None when all SKUs may change."""
        channel_id = self.channel_of(event)
        if channel_id is None:
            return None
        if isinstance(event, ChannelRules.Changed):
            self.recorded[channel_id] = dict(event.rules)
            return None
        if event.rules:
            self.overrides[channel_id, event.sku] = dict(event.rules)
        else:
            self.overrides.pop((channel_id, event.sku), None)
        return event.sku

    def rules_for(self, sku: str) -> list[ChannelRule]:
        return [
            rule_in_force(
                default,
                self.recorded.get(default.channel_id),
                self.overrides.get((default.channel_id, sku)),
            )
            for default in self.defaults
        ]


@dataclass
class SkuState:
    """What the fold knows of one SKU."""

    sku: str
    levels: dict[str, list[int]] = field(default_factory=dict)  # location -> STATES
    version: int = 0  # of the last stock event folded
    day: date | None = None  # of the last event that recomputed the ATS
    changed_at: datetime | None = None  # when that event was recorded
    kind: str = ""  # what that event was: a ChangeKind value, or "rules"

    def locations(self) -> dict[str, Levels]:
        return {location: Levels(*units) for location, units in self.levels.items()}


@dataclass
class AvailabilityFold:
    """The state of the availability read model, and the fold that advances it."""

    rules: RuleBook
    names: dict[UUID, str] = field(default_factory=dict)  # item id -> SKU
    skus: dict[str, SkuState] = field(default_factory=dict)
    # sales[sku][(channel, day)] = units
    sales: dict[str, dict[tuple[str, date], int]] = field(default_factory=lambda: defaultdict(dict))
    touched: set[str] = field(default_factory=set)  # SKUs whose ATS must be recomputed
    everything_touched: bool = False  # rules changed for every SKU
    sales_changed: set[tuple[str, str, date]] = field(default_factory=set)

    def add(self, item_id: UUID, state: SkuState) -> None:
        self.names[item_id] = state.sku
        self.skus[state.sku] = state

    def fold(self, events: Iterable[Any]) -> None:
        for event in events:
            if isinstance(event, InventoryItem.StockEvent):
                self._fold_stock(event)
            elif isinstance(event, InventoryItem.Created):
                if event.originator_id not in self.names:
                    self.add(event.originator_id, SkuState(event.sku))
            elif isinstance(event, RulesEvent):
                self._fold_rules(event)

    def _fold_stock(self, event: InventoryItem.StockEvent) -> None:
        # The hottest loop of a rebuild (once per event of the whole history): kept lean.
        state = self.skus[self.names[event.originator_id]]
        levels = state.levels
        for location, level, units in event.deltas():
            held = levels.get(location)
            if held is None:
                held = levels[location] = [0, 0, 0, 0]
            held[_INDEX[level]] += units
        day = event.occurred_at.date()
        state.version, state.day, state.changed_at = event.originator_version, day, event.timestamp
        state.kind = event.kind.value
        if sold := event.units_sold():
            channel, sold_on = add_sale(self.sales[state.sku], event, sold)
            self.sales_changed.add((state.sku, channel, sold_on))
        self.touched.add(state.sku)

    def _fold_rules(self, event: RulesEvent) -> None:
        if self.rules.channel_of(event) is None:
            return  # a channel not configured: no ATS of ours depends on it
        sku = self.rules.apply(event)
        day = event.timestamp.date()
        if sku is None:
            self.everything_touched = True
            for state in self.skus.values():
                state.day, state.changed_at, state.kind = day, event.timestamp, RULES_KIND
            return
        if (overridden := self.skus.get(sku)) is not None:
            overridden.day, overridden.changed_at, overridden.kind = (
                day,
                event.timestamp,
                RULES_KIND,
            )
            self.touched.add(sku)

    def computation(self, state: SkuState) -> Computation:
        """The SKU's ATS now, velocity measured up to the day of the event that recomputes it."""
        sales = self.sales.get(state.sku, {})
        return compute(state.locations(), self.rules.rules_for(state.sku), sales, state.day)

    def available_to_sell(self, state: SkuState) -> dict[str, int]:
        allocations = self.computation(state).allocations
        return {channel_id: a.available_to_sell for channel_id, a in allocations.items()}

    def recomputed(self) -> Iterable[SkuState]:
        """The SKUs whose ATS the events folded since the last call may have changed."""
        if self.everything_touched:
            touched: Iterable[SkuState] = list(self.skus.values())
        else:
            touched = [s for s in self.skus.values() if s.sku in self.touched]
        self.touched.clear()
        self.everything_touched = False
        return touched


def sales_rows(fold: AvailabilityFold) -> list[tuple[str, str, date, int]]:
    """Every (sku, channel, day, units) row, as the view stores them."""
    return [
        (sku, channel_id, day, units)
        for sku, by_day in fold.sales.items()
        for (channel_id, day), units in by_day.items()
    ]


def levels_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """Stored (location, on_hand, committed, reserved, unavailable) rows as a SKU's levels."""
    return {row["location"]: [row[state] for state in STATES] for row in rows}


def explaining(allocation: Allocation, held: int) -> Allocation:
    """`allocation`, recomputed from the inputs a stored number `held` was computed from, as
    its explanation. They differ only when the configured rules changed since (a new
    configuration applies to a SKU from its next event): a last step then says so."""
    if allocation.available_to_sell == held:
        return allocation
    why = "held as computed under the configured rules of then, until the SKU's next change"
    return replace(
        allocation,
        available_to_sell=held,
        steps=(*allocation.steps, Step("held", held, why)),
    )


@dataclass(frozen=True, slots=True)
class ChannelAvailability:
    """A channel's ATS of a SKU as the projection holds it: what the channel was sent, or is
    about to be, explained from the very inputs it was computed from, and how its push went."""

    channel_id: str
    available_to_sell: int
    version: int  # of the SKU's ledger the number reflects
    allocation: Allocation  # the steps behind `available_to_sell`
    pending: bool  # not pushed yet: the channel is about to be sent it
    pushed_version: int | None  # the SKU's ledger version the last push carried
    acknowledged_quantity: int | None  # what the channel said it shows after that push
    acknowledged_at: datetime | None
