"""Answers about the past: a SKU's stock and each channel's available-to-sell at a moment, and
oversells with what surrounded them. `TimeTravel` (`application.time_travel`) reads the events;
this module holds what the answers are made of, and folds the channels' rule changes up to any
moment.

What a channel could sell at a moment is what the availability projection held then (and sent
it): the one computation (`application.availability.compute`) on the stock recorded by then,
the rules in force, and the sales velocity of the window up to the day of the projection's last
computation of the SKU (the day its last event occurred, or a later rule change was recorded),
not of the moment asked about."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import takewhile
from typing import NamedTuple, cast

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate

from application.availability import compute
from application.receipts import Receipt
from domain.allocation import Allocation, ChannelRule
from domain.inventory import InventoryItem
from domain.rules import ChannelRules
from domain.velocity import daily_sales, window_start


class Availability(NamedTuple):
    """A SKU's stock and what each channel was allowed to sell, as the ledger knew them then."""

    item: InventoryItem
    allocations: dict[str, Allocation]


@dataclass(frozen=True, slots=True)
class OversellInContext:
    """An oversold sale, the ledger events around it, and the channels' ATS either side of it."""

    receipt: Receipt
    events_before: list[InventoryItem.StockEvent]  # oldest first, up to the sale
    events_after: list[InventoryItem.StockEvent]  # oldest first, from the sale on
    before: Availability  # just before the sale was recorded
    after: Availability  # with the sale recorded


class RulesHistory:
    """Every recorded change of the configured channels' rules, read once, to tell which rules
    were in force for a SKU at any moment: the configured defaults until a channel's first
    change, with the SKU's override over them."""

    def __init__(
        self,
        defaults: Sequence[ChannelRule],
        changes: Mapping[str, Sequence[Aggregate.Event]],
    ) -> None:
        self.defaults = list(defaults)
        self._changes = changes

    def at(self, at: datetime, sku: str) -> list[ChannelRule]:
        return [self._rule_at(default, at, sku) for default in self.defaults]

    def changed_at(self, at: datetime, sku: str) -> datetime | None:
        """When the rules that apply to `sku` last changed by `at` (a channel's own, or the
        SKU's override); None if they never had."""
        changes = [
            event.timestamp
            for default in self.defaults
            for event in self._changes[default.channel_id]
            if event.timestamp <= at
            and (
                isinstance(event, ChannelRules.Changed)
                or (isinstance(event, ChannelRules.SkuOverridden) and event.sku == sku)
            )
        ]
        return max(changes, default=None)

    def _rule_at(self, default: ChannelRule, at: datetime, sku: str) -> ChannelRule:
        # The aggregate at the version in force at `at`, folded from the events in hand, as
        # `repository.get(id, version=…)` would fold them after reading them again. Versions
        # in order, up to the first one after `at`, so the fold never skips a version.
        in_force = takewhile(lambda e: e.timestamp <= at, self._changes[default.channel_id])
        rules = cast(ChannelRules | None, project_aggregate(None, in_force))
        return default if rules is None else rules.rule_for(sku, default)


def weighs_velocity(rules: Iterable[ChannelRule]) -> bool:
    """Whether any of `rules` splits its share by sales velocity (else velocity needs no read)."""
    return any(rule.velocity_weighted for rule in rules)


def velocity_day(last: Aggregate.Event, rules_changed_at: datetime | None) -> date | None:
    """The day the projection last computed a SKU's ATS on, whose velocity window it used:
    that of its `last` event (the day it occurred at its source), unless a rule change that
    applies to it was recorded after that (the day it was recorded). None while the SKU has
    no stock event."""
    if rules_changed_at is not None and rules_changed_at > last.timestamp:
        return rules_changed_at.date()
    if isinstance(last, InventoryItem.StockEvent):
        return last.occurred_at.date()
    return None


def window_opens(day: date) -> datetime:
    """A time before which no sale of the velocity window ending on `day` was recorded: the
    window's first midnight, less a day for sources whose dates run ahead of UTC."""
    return datetime.combine(window_start(day), time(), UTC) - timedelta(days=1)


def availability_of(
    item: InventoryItem,
    rules: Sequence[ChannelRule],
    events: Iterable[InventoryItem.StockEvent],
    day: date | None,
) -> Availability:
    """The ATS each channel had with `item`, velocity measured over the window up to `day`
    (see `velocity_day`) from the sales among `events` that `item` had already recorded
    (`events` need hold only those that occurred in that window)."""
    sales = {}
    if day is not None and weighs_velocity(rules):
        sales = daily_sales(e for e in events if e.originator_version <= item.version)
    return Availability(item, compute(item.locations, rules, sales, day).allocations)
