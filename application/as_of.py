"""Answers about the past: a SKU's stock and each channel's available-to-sell at a moment, and
oversells with what surrounded them. The `Ledger` reads the events; this module holds what the
answers are made of, and folds the channels' rule changes up to any moment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import takewhile
from typing import NamedTuple, cast

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate

from application.receipts import Receipt
from domain.allocation import Allocation, ChannelRule, allocate
from domain.inventory import InventoryItem
from domain.rules import ChannelRules
from domain.velocity import VELOCITY_WINDOW, units_sold_per_channel, velocities


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


def availability_of(
    item: InventoryItem,
    rules: Sequence[ChannelRule],
    events: Iterable[InventoryItem.StockEvent],
    at: datetime,
) -> Availability:
    """The ATS each channel had with `item` at `at`, velocity weighed by the sales among
    `events` (the SKU's events of the week before `at`) that `item` had already recorded."""
    sold: dict[str, float] = {}
    if weighs_velocity(rules):
        recorded = (e for e in events if e.originator_version <= item.version)
        sold = velocities(units_sold_per_channel(recorded, at - VELOCITY_WINDOW))
    return Availability(item, allocate(item.locations, rules, sold))
