"""Intake: what a channel delivery is once it is verified and stored, what translating it yields,
and the ports translation needs. Channels report deltas; only the ledger holds quantities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from domain.stock import StockChange


class DeliveryState(StrEnum):
    PENDING = "pending"  # stored, not yet applied
    PROCESSED = "processed"  # its changes are in the ledger (or it had none)
    PARKED = "parked"  # valid, but we could not translate it: waits for review


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
    observations: Sequence[Observation] = ()
    parked: str | None = None
    # Order states to remember (order id → state) once the changes are in the ledger, for
    # channels that report states rather than deltas.
    remember: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def park(cls, reason: str) -> Translation:
        return cls(parked=reason)


class OrderMemory(Protocol):
    """The last state seen of each channel order, for channels that report states, not deltas."""

    def recall(self, channel_id: str, order_id: str) -> Mapping[str, Any] | None: ...
