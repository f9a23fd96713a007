"""What decides whether a channel may be called, behind small interfaces with one backend for
many processes (Redis: `redis_limits.py`) and one for a single process and tests (memory:
`memory_limits.py`), as Dramatiq's rate limiters have backends. Every worker building its gate
from the same backend and keys shares the limits: the rate (`Limiter`), the channel's pauses and
circuit breaker (`Breaker`), and the lock that lets one worker at a time drain it (`DrainLock`).
The numbers (spacing, cooldowns) are pure functions here, so both backends keep them alike."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from infrastructure.channels.gateway import Tally


@dataclass(frozen=True)
class GatePolicy:
    """Per channel: `rate` (>= 2) calls per second at most in any one-second window; the
    breaker opens after `failures` failed calls in a row, for `cooldown` seconds, doubling up
    to `max_cooldown` while the channel stays down."""

    rate: float = 2.0
    # The calls one push makes back to back, on turns booked together (WooCommerce's
    # compare-and-set: a read, then its write); calls are spaced so a one-second window holds
    # the rate with them (`call_interval`).
    calls_per_push: int = 1
    failures: int = 3
    cooldown: float = 1.0
    max_cooldown: float = 60.0
    # The longest one drain may hold the channel: past it, the lock of a worker that died
    # mid-drain frees itself. Longer than any drain can take (its turn and its slowest calls),
    # or a second worker would drain beside a slow first one.
    hold: float = 60.0


class Limiter(Protocol):
    """At most one call per interval under one key, across every worker sharing the backend;
    after a rest, up to its burst at once (a token bucket holding that many)."""

    def take(self, wait: float, calls: int = 1) -> bool:
        """True once `calls` calls (at most the burst) may go back to back, waiting at most
        `wait` seconds for their turn; a turn not taken books nothing."""
        ...

    def try_take(self, calls: int = 1) -> float:
        """Take the turn of `calls` calls (at most the burst) if it has come, without waiting:
        0 when taken, else the seconds until it comes (booking nothing)."""
        ...


class Breaker(Protocol):
    """Whether a channel may be called: not while it asked us to wait, nor while the breaker
    is open after failures in a row."""

    def closed_for(self) -> float:
        """Seconds before the channel may be called again (paused or open); 0: now."""
        ...

    def pause(self, seconds: float) -> None:
        """The channel asked us to wait (HTTP 429, Retry-After)."""
        ...

    def succeeded(self) -> None:
        """A call went through: the failures in a row and the cooldown start again."""
        ...

    def failed(self) -> bool:
        """Count a failed call; True when it opened the breaker."""
        ...

    def is_open(self) -> bool: ...

    def failures(self) -> int:
        """The failed calls in a row."""
        ...


class DrainLock(Protocol):
    """One worker at a time drains a channel."""

    def draining(self) -> AbstractContextManager[bool]:
        """True inside while this worker holds the channel; it frees itself after `hold`."""
        ...

    def busy(self) -> bool:
        """True while some worker holds the channel."""
        ...


class LimitsBackend(Protocol):
    """Where a gate's limits live; the same key names the same limit in every gate built."""

    def limiter(
        self, key: str, interval: float, *, yields: bool = False, burst: int = 1
    ) -> Limiter:
        """The limiter under `key`, a call per `interval` and up to `burst` at once after a
        rest; one that `yields` takes a turn only while no call of a limiter that does not is
        waiting for one (`turn`)."""
        ...

    def breaker(self, key: str, policy: GatePolicy) -> Breaker: ...

    def lock(self, key: str, hold: float) -> DrainLock: ...

    def tally(self, key: str) -> Tally:
        """Counts whose names are under `key`, kept as long as each asks."""
        ...


def call_interval(rate: float, calls_per_push: int = 1) -> float:
    """How far apart (seconds) a channel's turns are spaced, so that the channel counts at most
    `rate` calls in any one second when each push makes `calls_per_push` calls back to back
    and a call may reach it a little later than it was let go.

    At worst a second holds one push's calls at once and then one call per interval. Spacing
    for `rate - calls_per_push` calls a second makes that `rate - 1`: one to spare, for a call
    that arrives late. For example, at rate 10 with 2 calls a push (WooCommerce's read, then
    its write), turns are spaced for 8 a second (0.125 s): any one second holds at most 2 at
    once and 7 after them, 9 calls, and no more than 10 even if a call arrives up to an
    interval late.

    At low rates one call spare is too large a share, so turns are spaced for 80 % of
    `rate - calls_per_push + 1` a second when that is more: at rate 4 with one call a push,
    3.2 a second (0.3125 s), so any one second holds at most 4, and still 4 if a call arrives
    up to 0.25 s late. Whole milliseconds, rounded up."""
    steady = rate - calls_per_push + 1  # a push's first call, then one a turn
    return math.ceil(1000 / max(steady - 1, steady * 0.8)) / 1000


def operation_interval(rate: float) -> float:
    """The spacing of an operation the channel limits apart, at 80 % of its documented `rate`
    (the channel counts tokens by its own clock, which is not ours to the millisecond)."""
    return 1 / (0.8 * rate)


@dataclass(frozen=True)
class Turn:
    """A limiter's answer to a call (`turn`): `wait` seconds until it may ask again (0: it
    goes now), the time of the next turn after it, and until when calls that yield hold off."""

    wait: float
    next_at: float
    held_until: float


def turn(
    now: float,
    next_at: float,
    held_until: float,
    interval: float,
    *,
    yields: bool,
    burst: int = 1,
    calls: int = 1,
) -> Turn:
    """Whether `calls` calls may go at `now` under a limiter whose next turn is at `next_at`
    (the theoretical arrival time of the cell rate algorithm), calls a turn per `interval` and
    up to `burst` at once after a rest: they may go up to `burst - calls` intervals ahead of
    their turn, as a token bucket holding `burst` tokens refilled one per interval lets them
    (SP-API's documented bursts; one push's read and write), and book one interval each.
    Pushes keep priority over reconciliation's reads within a channel's one budget: a call that
    does not yield (a push) and must wait holds the calls that do (reads) off until just after
    the turn it waits for, and frees them once it takes a turn; a call that yields goes only
    when no such hold is on, so a waiting push takes the next turn, not a read."""
    if yields and now < held_until:
        return Turn(held_until - now, next_at, held_until)
    earliest = next_at - (burst - calls) * interval
    if now < earliest:
        hold = held_until if yields else max(held_until, earliest + interval)
        return Turn(earliest - now, next_at, hold)
    booked = max(now, next_at) + calls * interval
    return Turn(0.0, booked, held_until if yields else 0.0)


def cooldown(policy: GatePolicy, trips: int) -> float:
    """How long the breaker stays open the `trips`-th time in a row it opens."""
    return min(policy.max_cooldown, policy.cooldown * 2.0 ** (trips - 1))


def wait_for_turn(try_take: Callable[[], float], wait: float) -> bool:
    """Ask `try_take` (0: taken, else the seconds until the next turn) until it grants a turn
    or `wait` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        due_in = try_take()
        if due_in == 0:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, due_in))
