"""What every channel's gateway offers the pushers: set quantities on the channel, read them back.

A gateway speaks one channel's documented API over HTTP (httpx, synchronous: pushers run in
Dramatiq's worker threads). It does not pace its pushes: the shared rate limiter in front of it
does, and a gateway reports what the channel said about its limits by raising `Throttled`. A
gateway is built behind its channel's `Gate` (shared by every worker), and takes a turn of it
before each call the caller did not take one for; a channel that limits each operation apart
(Amazon) asks the gate for turns at its operations' documented rates.

A channel may take a push for processing later (an Amazon feed): its results are SUBMITTED with
a `ticket`, and `settle(ticket, skus)` answers for them once the channel has finished.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from domain.errors import InvsyncError


@dataclass(frozen=True)
class Push:
    """Make the channel show `quantity` of `sku`.

    `version` is the SKU's ledger version the quantity was computed at (idempotency keys are
    derived from it); `acknowledged` is the quantity the channel last confirmed, None for a
    first push (Shopify's `changeFromQuantity` compare-and-set). `urgent` is the pusher's
    verdict that the SKU is at risk or among the hot sellers (`push/policy.py`): a gateway with
    few quick calls (Walmart's single PUTs) spends them on these first, in the order given."""

    sku: str
    quantity: int
    version: int
    acknowledged: int | None = None
    urgent: bool = False


class PushStatus(StrEnum):
    APPLIED = "applied"  # the channel shows (or has accepted to show) the quantity
    STALE = "stale"  # the channel's quantity was not `acknowledged`: it moved under us
    UNKNOWN_SKU = "unknown_sku"  # the channel lists no such SKU
    REJECTED = "rejected"  # the channel refused this item (detail says why); not retried
    SUBMITTED = "submitted"  # taken for processing later: `settle(ticket, ...)` answers


@dataclass(frozen=True)
class PushResult:
    sku: str
    status: PushStatus
    channel_quantity: int | None = None  # what the channel shows now, when it said
    detail: str = ""
    ticket: str = ""  # of a SUBMITTED push: what to settle it by


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


# The operation of a call counted against the channel's own rate, the one pushes take turns of.
CHANNEL_CALL = "call"
NO_RATES: Mapping[str, float] = MappingProxyType({})  # a channel that limits calls as a whole
NO_BURSTS: Mapping[str, int] = MappingProxyType({})  # every operation one call at a time


class Turns(Protocol):
    """A channel's rate limits by operation (`CHANNEL_CALL`: its own), shared by every worker."""

    def take(self, operation: str, wait: float) -> bool:
        """True once `operation` may be called, waiting at most `wait` seconds for it."""
        ...


class Unlimited:
    """No limits: for a gateway used on its own (tests, the benchmark baseline)."""

    def take(self, operation: str, wait: float) -> bool:
        return True


class Tally(Protocol):
    """Counts under names, each kept `ttl` seconds from its first count, shared by every worker:
    what a channel allows so many times in a period (eBay's revisions of a listing a day)."""

    def counts(self, names: Sequence[str]) -> list[int]:
        """The count under each name (0: none, or expired)."""
        ...

    def add(self, names: Sequence[str], ttl: float) -> None:
        """Count one more under each name."""
        ...


class LocalTally:
    """A `Tally` in this object alone: for a gateway used on its own (tests, the benchmark)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # name -> count, expiry (monotonic)
        self._lock = threading.Lock()

    def counts(self, names: Sequence[str]) -> list[int]:
        now = time.monotonic()
        with self._lock:
            kept = [self._counts.get(name, (0, 0.0)) for name in names]
        return [count if until > now else 0 for count, until in kept]

    def add(self, names: Sequence[str], ttl: float) -> None:
        now = time.monotonic()
        with self._lock:
            for name in names:
                count, until = self._counts.get(name, (0, 0.0))
                self._counts[name] = (count + 1, until) if until > now else (1, now + ttl)


class Gate(Protocol):
    """Where a gateway takes its turns, given when it is built: its channel's limits, shared by
    every worker (`infrastructure/push/gate.py`)."""

    def turns(self, rates: Mapping[str, float], bursts: Mapping[str, int] = NO_BURSTS) -> Turns:
        """Turns of the channel's own rate (`CHANNEL_CALL`) and of the operations it limits
        apart, at these `rates` (calls a second), each up to its `bursts` at once after a rest
        (one where none is named)."""
        ...

    def tally(self, name: str) -> Tally:
        """The channel's counts under `name` (its own, apart from every other channel's)."""
        ...


class Ungated:
    """No gate: every turn is given at once, and counts are kept in the gateway's process."""

    def turns(self, rates: Mapping[str, float], bursts: Mapping[str, int] = NO_BURSTS) -> Turns:
        return Unlimited()

    def tally(self, name: str) -> Tally:
        return LocalTally()


UNGATED = Ungated()


class ChannelGateway(Protocol):
    """One channel account's inventory API."""

    channel_id: str
    max_batch: int  # the most pushes one `push` call may carry

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set the quantities, in as few API calls as the channel allows; one result per push,
        but none for a push the channel failed on its side (it stays pending, and goes again).
        Raises `Throttled`, `ChannelUnavailable` or `ChannelAuthFailed`."""
        ...

    def turn_taken(self, calls: int = 1) -> None:
        """The caller took the channel's turns for the gateway's next `calls` calls, which go
        on them back to back (0: none, so turns left unused lapse)."""
        ...

    def settle(self, ticket: str, skus: Sequence[str]) -> list[PushResult] | None:
        """The results of the SUBMITTED pushes of `skus` (in the order pushed) under `ticket`;
        None while the channel is still processing them."""
        ...

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The quantities the channel shows now (None: the channel lists no such SKU)."""
        ...

    def close(self) -> None: ...


class AnswersAtOnce:
    """For a gateway whose channel answers every push in the call and limits calls as a whole:
    no per-operation rates, nothing to settle. The pusher takes the channel's turns for the next
    calls (and says so with `turn_taken`); every other call (a lookup, a re-read, a second batch)
    takes one of its own through `take_turn`, so no call goes unmetered."""

    channel_id: str
    turns: Turns  # of the channel's own rate: `gate.turns(NO_RATES)`, when it is built
    turn_wait: float = 5.0  # seconds a call waits for its turn before the channel counts as busy
    _prepaid = 0  # the calls the caller took turns for

    def settle(self, ticket: str, skus: Sequence[str]) -> list[PushResult] | None:
        raise ValueError(f"{self.channel_id} answers every push at once: nothing to settle")

    def turn_taken(self, calls: int = 1) -> None:
        self._prepaid = calls

    def take_turn(self) -> None:
        """Before each call: wait for the channel's turn, unless the caller took it."""
        if self._prepaid > 0:
            self._prepaid -= 1
        elif not self.turns.take(CHANNEL_CALL, self.turn_wait):
            raise Throttled(f"no turn to call {self.channel_id} in {self.turn_wait} s", 1.0)
