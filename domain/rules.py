"""The merchant's allocation rules of one channel, as an aggregate: every change is an event
that says who changed what, when and why, and takes effect on the next computation.

A channel's rules may be overridden for single SKUs (a bestseller kept off a marketplace, a
bulky item with a bigger buffer): an override holds only the keys it changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.allocation import ChannelRule, InvalidRule
from domain.errors import InvalidChange
from domain.stock import check_text

RULE_KEYS = frozenset(f.name for f in fields(ChannelRule)) - {"channel_id"}
# A channel is fed by a handful of locations; a list of thousands is a mistake, and every rule
# change stores it whole.
MAX_LOCATIONS = 100


def _checked(name: str, value: str) -> None:
    try:
        check_text(name, value)
    except InvalidChange as error:
        raise InvalidRule(str(error)) from None


def check_locations(locations: Sequence[str] | None) -> None:
    """Raises `InvalidRule` unless `locations` (None: all) fits what the ledger stores."""
    if locations is None:
        return
    if len(locations) > MAX_LOCATIONS:
        raise InvalidRule(
            f"locations lists {len(locations)}; at most {MAX_LOCATIONS} locations are allowed"
        )
    for location in locations:
        _checked("location", location)


def check_change(reason: str, sku: str | None = None) -> None:
    """Raises `InvalidRule` unless the `reason` of a change (and the `sku` it overrides) fit
    the ledger's limits (`domain.stock.LIMITS`)."""
    _checked("reason", reason)
    if sku is not None:
        _checked("sku", sku)


def channel_rules_id(channel_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"invsync:/channels/{channel_id}/rules")


def rule_fields(rule: ChannelRule) -> dict[str, Any]:
    """The rule's keys as stored in events (lists, not tuples), without the channel id."""
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in asdict(rule).items()
        if name != "channel_id"
    }


def rule_from(
    channel_id: str, stored: dict[str, Any], base: ChannelRule | None = None
) -> ChannelRule:
    """The rule of `channel_id` with the keys of `stored` set over `base` (default: defaults).

    Raises `InvalidRule` for an unknown key or a value the rule cannot take."""
    unknown = set(stored) - RULE_KEYS
    if unknown:
        raise InvalidRule(f"unknown rule keys: {', '.join(sorted(unknown))}")
    values = dict(stored)
    check_locations(values.get("locations"))
    if values.get("locations") is not None:
        values["locations"] = tuple(values["locations"])
    return replace(base or ChannelRule(channel_id), channel_id=channel_id, **values)


def rule_in_force(
    default: ChannelRule, recorded: dict[str, Any] | None, override: dict[str, Any] | None
) -> ChannelRule:
    """The one look-up of a channel's rule for a SKU, wherever the rules were read from (the
    `ChannelRules` aggregate, the projection's rule book): the keys the channel last recorded
    (none recorded: the configured `default`), with the SKU's `override` over them."""
    rule = rule_from(default.channel_id, recorded) if recorded else default
    return rule_from(default.channel_id, override, rule) if override else rule


class ChannelRules(Aggregate):
    class Created(Aggregate.Created):
        channel_id: str

    class Changed(Aggregate.Event):
        """`rules` holds every key of the rule as set; `changed_by` and `reason` say who and why."""

        rules: dict[str, Any]
        changed_by: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.rules = dict(self.rules)

    class SkuOverridden(Aggregate.Event):
        """The keys in `rules` replace the channel's own for `sku`; `{}` removes the override."""

        sku: str
        rules: dict[str, Any]
        changed_by: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            if self.rules:
                aggregate.overrides[self.sku] = dict(self.rules)
            else:
                aggregate.overrides.pop(self.sku, None)

    @staticmethod
    def create_id(channel_id: str) -> UUID:
        return channel_rules_id(channel_id)

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.rules: dict[str, Any] = {}
        self.overrides: dict[str, dict[str, Any]] = {}

    def change(self, rule: ChannelRule, changed_by: str, reason: str) -> None:
        """Record `rule` (already checked by constructing it) as the channel's rules now.
        Raises `InvalidRule` for locations or a reason beyond the ledger's limits."""
        check_locations(rule.locations)
        check_change(reason)
        self.trigger_event(
            self.Changed, rules=rule_fields(rule), changed_by=changed_by, reason=reason
        )

    def override(self, sku: str, keys: dict[str, Any], changed_by: str, reason: str) -> None:
        """Set (or with no keys, remove) the override of `sku`. Raises `InvalidRule`."""
        check_change(reason, sku)
        rule_from(self.channel_id, keys)  # refuse what could never apply, before recording it
        stored = {k: list(v) if isinstance(v, tuple) else v for k, v in keys.items()}
        self.trigger_event(
            self.SkuOverridden, sku=sku, rules=stored, changed_by=changed_by, reason=reason
        )

    def rule(self, defaults: ChannelRule | None = None) -> ChannelRule:
        """The channel's rule: as last changed, else `defaults` (the configured rule)."""
        return rule_in_force(defaults or ChannelRule(self.channel_id), self.rules, None)

    def rule_for(self, sku: str, defaults: ChannelRule | None = None) -> ChannelRule:
        """The rule that applies to `sku`: the channel's, with the SKU's override over it."""
        default = defaults or ChannelRule(self.channel_id)
        return rule_in_force(default, self.rules, self.overrides.get(sku))
