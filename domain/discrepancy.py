"""A discrepancy: a channel showed a SKU's quantity too far from what it should have shown for
invsync to correct it unasked (`domain.drift`), kept with its evidence until a person resolves it.

Events are stored forever under their module path and class name: rename nothing here; evolve an
event with `class_version` and an `upcast_v1_v2`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidChange
from domain.stock import check_text


class Resolution(StrEnum):
    """How a person settles a discrepancy."""

    ACCEPT_CHANNEL = "accept_channel"  # the channel was right: the ledger counts its quantity
    PUSH_LEDGER = "push_ledger"  # the ledger was right: the channel is set back
    # Closed by invsync: a later push set the channel over what it showed, before a review.
    SUPERSEDED = "superseded"


# What people may resolve a discrepancy by (`SUPERSEDED` is invsync's alone).
PERSON_ACTIONS = (Resolution.ACCEPT_CHANNEL, Resolution.PUSH_LEDGER)


class DiscrepancyResolved(DomainError):
    """Raised when a discrepancy that is already resolved is resolved again."""


class InvalidResolution(DomainError):
    """Raised when a resolution names no action invsync knows, or its reason or author is empty
    or too long."""


def overridden(
    observed: int,
    expected: int,
    read_at: datetime,
    acknowledged: int | None,
    acknowledged_at: datetime | None,
) -> bool:
    """Whether an open discrepancy of a channel that showed less (`observed` below `expected`,
    left for review) no longer describes the channel: it acknowledged another quantity after
    the reading, a push of the ledger's having set it over the hand edit. Accepting the old
    reading then would move the ledger by a difference the channel no longer shows. (A channel
    that showed more was set back at once when it was found, and waits for its review.)"""
    if observed >= expected or acknowledged_at is None or acknowledged_at <= read_at:
        return False
    return acknowledged != observed


class CountLocationUnclear(DomainError):
    """Raised when accepting a channel's quantity cannot name the one location of ours to count
    the difference at: the channel sells the sum of several, and its configuration maps none of
    them as where its stock lives, or maps one that does not feed it."""


def count_location(
    channel_id: str,
    feeding: Sequence[str] | None,
    held: Sequence[str],
    mapped: str | None,
) -> str:
    """Where accepting `channel_id`'s quantity records its count: the location of ours its
    configuration maps the channel's own stock location to (`mapped`: Shopify's `location_id`,
    Walmart's `ship_node`), else the one location that feeds the channel (its rule's `feeding`
    locations, None: every one) and holds the SKU (`held`), else the one it is fed from.

    A difference spread over several locations by a guess would move stock the channel never
    showed anywhere; so several candidates and no mapping is refused, as is a mapped location
    the channel's rule does not feed from (a count there would not move the channel).

    Raises:
        CountLocationUnclear: no one location can be named.
    """
    if mapped is not None:
        if feeding is not None and mapped not in feeding:
            raise CountLocationUnclear(
                f"{channel_id}'s stock location maps to {mapped!r}, which does not feed it "
                f"(rules.locations: {', '.join(feeding)}): fix the channel's locations or rules"
            )
        return mapped
    candidates = [name for name in held if feeding is None or name in feeding] or list(
        feeding or ()
    )
    if len(candidates) != 1:
        raise CountLocationUnclear(
            f"{channel_id} sells the sum of {', '.join(candidates) or 'no location'}, and its "
            "configuration maps none of them as where its stock lives: map its location in "
            "[channels.locations], or record a count at each location instead"
        )
    return candidates[0]


def discrepancy_id(channel_id: str, sku: str, read_at: datetime) -> UUID:
    """One discrepancy per reading: a run repeated after a crash finds the one it detected."""
    return uuid5(NAMESPACE_URL, f"invsync:/channels/{channel_id}/skus/{sku}@{read_at.isoformat()}")


class Discrepancy(Aggregate):
    """What a channel showed of a SKU against what it should have, and how it was settled."""

    @staticmethod
    def create_id(channel_id: str, sku: str, *, read_at: datetime, **_: Any) -> UUID:
        return discrepancy_id(channel_id, sku, read_at)

    @event("Detected")
    def __init__(
        self,
        channel_id: str,
        sku: str,
        *,
        observed: int,
        expected: int,
        read_at: datetime,
        evidence: dict[str, Any],
    ) -> None:
        self.channel_id, self.sku, self.read_at = channel_id, sku, read_at
        self.observed, self.expected = observed, expected
        self.evidence = evidence
        self.resolution: Resolution | None = None
        self.reason = ""
        self.resolved_by = ""

    @property
    def difference(self) -> int:
        """Units the channel showed beyond what it should (negative: fewer)."""
        return self.observed - self.expected

    @property
    def is_open(self) -> bool:
        return self.resolution is None

    def resolve(self, action: str, reason: str, by: str) -> None:
        """Settle it by `action` (a `Resolution` value), saying why and who.

        Raises `DiscrepancyResolved` once resolved, `InvalidResolution` for an unknown action
        or an empty or too long reason or author."""
        if not self.is_open:
            raise DiscrepancyResolved(f"discrepancy {self.id} was resolved already")
        self._resolved(_action(action), _text("reason", reason), _text("source", by))

    def supersede(self, acknowledged: int | None, at: datetime, by: str) -> None:
        """Close it as `overridden`: the channel acknowledged `acknowledged` at `at`.

        Raises `DiscrepancyResolved` once resolved."""
        if not self.is_open:
            raise DiscrepancyResolved(f"discrepancy {self.id} was resolved already")
        why = (
            f"superseded: {self.channel_id} acknowledged {acknowledged} at {at.isoformat()}, "
            f"after it showed {self.observed}; a push set it over the reading before a review"
        )
        self._resolved(Resolution.SUPERSEDED, why, by)

    @event("Resolved")
    def _resolved(self, action: Resolution, reason: str, by: str) -> None:
        self.resolution, self.reason, self.resolved_by = Resolution(action), reason, by


def _action(action: str) -> Resolution:
    if action not in PERSON_ACTIONS:
        known = " or ".join(f"{r.value!r}" for r in PERSON_ACTIONS)
        raise InvalidResolution(f"action must be {known}, not {action!r}")
    return Resolution(action)


def _text(name: str, value: str) -> str:
    # Who resolved it is held to the limits of a change's `source`: both name a person or system.
    if not value.strip():
        raise InvalidResolution(f"{name} must say something")
    try:
        check_text(name, value)
    except InvalidChange as error:
        raise InvalidResolution(str(error)) from None
    return value
