"""The merchant's allocation rules of one channel, as an aggregate: every change is an event
that says who changed what, when and why, and takes effect on the next computation."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.allocation import ChannelRule


def channel_rules_id(channel_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"invsync:/channels/{channel_id}/rules")


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

    @staticmethod
    def create_id(channel_id: str) -> UUID:
        return channel_rules_id(channel_id)

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.rules: dict[str, Any] = {}

    def change(self, rule: ChannelRule, changed_by: str, reason: str) -> None:
        """Record `rule` (already checked by constructing it) as the channel's rules now."""
        fields = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in asdict(rule).items()
            if name != "channel_id"
        }
        self.trigger_event(self.Changed, rules=fields, changed_by=changed_by, reason=reason)

    def rule(self) -> ChannelRule:
        fields = dict(self.rules)
        if fields.get("locations") is not None:
            fields["locations"] = tuple(fields["locations"])
        return ChannelRule(channel_id=self.channel_id, **fields)
