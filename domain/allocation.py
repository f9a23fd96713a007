"""Available-to-sell per channel: a pure function of the stock and the merchant's rules, that
explains itself step by step.

For each channel, in order:
1. pool: the `available` units of the locations that feed the channel (negatives count as 0);
2. share: the channel's percentage of the pool (100 = shared pool). Velocity-weighted channels
   split the sum of their percentages: each gets its floor, and the rest in proportion to its
   trailing sales, so together they never exceed what they would have had;
3. safety buffer: subtracted;
4. cap: at most `max_quantity`;
5. fixed: `fixed_quantity` replaces the result when set (still never above the pool);
6. stop-at: at or below `stop_at` units, the channel sells nothing;
7. rounding: down to whole units, never below zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.errors import DomainError
from domain.stock import Levels


class InvalidRule(DomainError):
    """Raised when an allocation rule holds a value that cannot be applied."""


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """How much of the stock one channel may sell. Defaults: the whole pool of every location."""

    channel_id: str
    locations: tuple[str, ...] | None = None  # None: every location
    share_percent: float = 100.0
    safety_buffer: int = 0
    max_quantity: int | None = None
    fixed_quantity: int | None = None
    stop_at: int = 0
    velocity_weighted: bool = False
    min_share_percent: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.share_percent <= 100:
            raise InvalidRule(f"share_percent must be 0-100, got {self.share_percent}")
        if not 0 <= self.min_share_percent <= 100:
            raise InvalidRule(f"min_share_percent must be 0-100, got {self.min_share_percent}")
        for name in ("safety_buffer", "stop_at", "max_quantity", "fixed_quantity"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise InvalidRule(f"{name} must be a whole number of units >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class Step:
    """One step of an explanation: the quantity after it, and the rule that produced it."""

    name: str
    quantity: float
    rule: str


@dataclass(frozen=True, slots=True)
class Allocation:
    channel_id: str
    available_to_sell: int
    steps: tuple[Step, ...]


def allocate(
    locations: Mapping[str, Levels],
    rules: Sequence[ChannelRule],
    velocities: Mapping[str, float] | None = None,
) -> dict[str, Allocation]:
    """The quantity each channel may sell now, with the steps that produced it."""
    shares = _shares(rules, velocities or {})
    return {rule.channel_id: _allocate(locations, rule, shares[rule.channel_id]) for rule in rules}


def _shares(
    rules: Sequence[ChannelRule], velocities: Mapping[str, float]
) -> dict[str, tuple[float, str]]:
    shares = {r.channel_id: (r.share_percent, f"share_percent {r.share_percent:g}") for r in rules}
    weighted = [r for r in rules if r.velocity_weighted]
    total = sum(max(0.0, velocities.get(r.channel_id, 0.0)) for r in weighted)
    if not weighted or total <= 0:
        return shares  # no sales to weigh by yet: the static shares stand
    budget = sum(r.share_percent for r in weighted)  # what the weighted channels split
    floors = sum(r.min_share_percent for r in weighted)
    if floors > budget:
        raise InvalidRule(f"the floors ({floors:g}%) exceed the weighted shares ({budget:g}%)")
    for rule in weighted:
        velocity = max(0.0, velocities.get(rule.channel_id, 0.0))
        percent = rule.min_share_percent + (budget - floors) * velocity / total
        shares[rule.channel_id] = (
            percent,
            f"floor {rule.min_share_percent:g}% + velocity {velocity:g} of {total:g}"
            f" of {budget - floors:g}%",
        )
    return shares


def _allocate(
    locations: Mapping[str, Levels], rule: ChannelRule, share: tuple[float, str]
) -> Allocation:
    feeding = sorted(locations) if rule.locations is None else list(rule.locations)
    pool = sum(max(0, locations[name].available) for name in feeding if name in locations)
    steps = [Step("pool", pool, f"available at {', '.join(feeding) or 'no location'}")]
    percent, why = share
    quantity: float = pool * percent / 100
    steps.append(Step("share", quantity, f"{percent:g}% ({why})"))
    if rule.safety_buffer:
        quantity -= rule.safety_buffer
        steps.append(Step("safety_buffer", quantity, f"minus {rule.safety_buffer}"))
    if rule.max_quantity is not None and quantity > rule.max_quantity:
        quantity = rule.max_quantity
        steps.append(Step("cap", quantity, f"max_quantity {rule.max_quantity}"))
    if rule.fixed_quantity is not None:
        quantity = min(rule.fixed_quantity, pool)
        steps.append(
            Step("fixed", quantity, f"fixed_quantity {rule.fixed_quantity}, at most the pool")
        )
    if quantity <= rule.stop_at:
        quantity = 0
        steps.append(Step("stop_at", 0, f"at or below {rule.stop_at} the channel sells nothing"))
    result = max(0, math.floor(quantity + 1e-9))  # shares are floats: 28.000000001 is 28
    steps.append(Step("rounding", result, "down to whole units, never below zero"))
    return Allocation(rule.channel_id, result, tuple(steps))
