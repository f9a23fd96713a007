"""Intake: what a channel delivery is once it is verified and stored, what translating it yields,
and the ports translation needs. Channels report deltas; only the ledger holds quantities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.errors import InvsyncError
from domain.orders import OrderUpdate
from domain.stock import StockChange


class DeliveryDeferred(InvsyncError):
    """Raised when a delivery cannot be applied now for a reason that will pass (the channel it
    must read from is throttled or down): it stays pending and is tried again later."""


class DeliveryState(StrEnum):
    PENDING = "pending"  # stored, not yet applied
    PROCESSED = "processed"  # its changes are in the ledger (or it had none)
    PARKED = "parked"  # valid, but we could not translate it: waits for review
    # Names SKUs the ledger does not know yet: applied by itself once they are received or
    # counted (`waiting_for` lists them).
    WAITING = "waiting"
    DISCARDED = "discarded"  # an operator decided it will never apply (kept, then pruned)


@dataclass(frozen=True)
class Delivery:
    """One verified webhook delivery as stored in the inbox: the raw bytes, never re-encoded."""

    id: int
    channel_id: str
    delivery_key: str
    topic: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class Observation:
    """A channel's own report of its stock (e.g. Shopify `inventory_levels/update`): kept for
    reconciliation, never applied as our quantity."""

    channel_id: str
    sku: str
    location: str
    quantity: int
    observed_at: datetime
    reference: str = ""


@dataclass(frozen=True)
class Translation:
    """What a delivery means for the ledger. `parked` says why it could not be understood."""

    changes: Sequence[StockChange] = ()
    orders: Sequence[OrderUpdate] = ()  # what it teaches about channel orders
    observations: Sequence[Observation] = ()
    parked: str | None = None

    @classmethod
    def park(cls, reason: str) -> Translation:
        return cls(parked=reason)
