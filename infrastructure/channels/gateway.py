"""What every channel's gateway offers the pushers: set quantities on the channel, read them back.

A gateway speaks one channel's documented API over HTTP (httpx, synchronous: pushers run in
Dramatiq's worker threads). It does not pace itself: the shared Redis rate limiter in front of
it does, and a gateway reports what the channel said about its limits by raising `Throttled`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from domain.errors import InvsyncError


@dataclass(frozen=True)
class Push:
    """Make the channel show `quantity` of `sku`.

    `version` is the SKU's ledger version the quantity was computed at (idempotency keys are
    derived from it); `acknowledged` is the quantity the channel last confirmed, None for a
    first push (Shopify's `changeFromQuantity` compare-and-set)."""

    sku: str
    quantity: int
    version: int
    acknowledged: int | None = None


class PushStatus(StrEnum):
    APPLIED = "applied"  # the channel shows (or has accepted to show) the quantity
    STALE = "stale"  # the channel's quantity was not `acknowledged`: it moved under us
    UNKNOWN_SKU = "unknown_sku"  # the channel lists no such SKU
    REJECTED = "rejected"  # the channel refused this item (detail says why); not retried


@dataclass(frozen=True)
class PushResult:
    sku: str
    status: PushStatus
    channel_quantity: int | None = None  # what the channel shows now, when it said
    detail: str = ""


class ChannelError(InvsyncError):
    """Raised when a channel's API did not do what was asked (base of the errors below)."""


class Throttled(ChannelError):
    """Raised when the channel refuses for its rate limit; `retry_after` seconds to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChannelUnavailable(ChannelError):
    """Raised when the channel cannot be reached, times out, or answers 5xx: try again later."""


class ChannelAuthFailed(ChannelError):
    """Raised when the channel refuses our credentials (401/403): an operator must act."""


class ChannelGateway(Protocol):
    """One channel account's inventory API."""

    channel_id: str
    max_batch: int  # the most pushes one `push` call may carry

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set the quantities, in as few API calls as the channel allows; one result per push.
        Raises `Throttled`, `ChannelUnavailable` or `ChannelAuthFailed`."""
        ...

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The quantities the channel shows now (None: the channel lists no such SKU)."""
        ...

    def close(self) -> None: ...
