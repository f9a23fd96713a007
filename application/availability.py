"""Available-to-sell as a fold over the ledger's events: the one computation behind the live
projection (which loads the state of a batch's SKUs, folds the batch, and writes the rows back)
and the rebuild (which folds the whole history in memory and writes every row once).

Both paths must agree row for row, so everything that decides a number lives here:
- levels per (SKU, location), folded from each event's own `deltas()`;
- units sold per (SKU, channel, day), the channel being the sale's `source`;
- the rules in force: the configured ones, changed by `ChannelRules` events;
- a SKU's ATS is computed when one of its events is folded, or for every SKU when rules change,
  with the sales velocity of the `VELOCITY_DAYS` days before that event's day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from domain.allocation import ChannelRule, allocate
from domain.inventory import InventoryItem
from domain.rules import ChannelRules, channel_rules_id, rule_from
from domain.stock import Levels
from domain.velocity import VELOCITY_WINDOW

# Trailing window of the sales velocity, in whole days: the view keeps units sold per day.
VELOCITY_DAYS = VELOCITY_WINDOW.days

STATES = ("on_hand", "committed", "reserved", "unavailable")

_INDEX = {state: n for n, state in enumerate(STATES)}
RULES_KIND = "rules"  # what changed a quantity when the rules did, not a stock event

RulesEvent = ChannelRules.Changed | ChannelRules.SkuOverridden


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
        rules = []
        for default in self.defaults:
            recorded = self.recorded.get(default.channel_id)
            rule = rule_from(default.channel_id, recorded) if recorded else default
            override = self.overrides.get((default.channel_id, sku))
            rules.append(rule_from(default.channel_id, override, rule) if override else rule)
        return rules


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
            by_day = self.sales[state.sku]
            key = (event.source, day)
            by_day[key] = by_day.get(key, 0) + sold
            self.sales_changed.add((state.sku, event.source, day))
        self.touched.add(state.sku)

    def _fold_rules(self, event: RulesEvent) -> None:
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

    def velocities(self, sku: str, day: date) -> dict[str, float]:
        """Units sold per day per channel over the `VELOCITY_DAYS` days up to `day`."""
        start = day - timedelta(days=VELOCITY_DAYS)
        totals: dict[str, int] = defaultdict(int)
        for (channel_id, sold_on), units in self.sales.get(sku, {}).items():
            if start < sold_on <= day:
                totals[channel_id] += units
        return {c: max(0, units) / VELOCITY_DAYS for c, units in totals.items()}

    def available_to_sell(self, state: SkuState) -> dict[str, int]:
        velocities = self.velocities(state.sku, state.day) if state.day else {}
        allocations = allocate(state.locations(), self.rules.rules_for(state.sku), velocities)
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
