"""The limits (`limits.py`) in this process's memory, by its monotonic clock: for one process
(every worker a thread of it) and for tests without Redis. The same key names the same limit in
every gate built from one `MemoryLimits`, as it does in Redis."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from infrastructure.channels.gateway import LocalTally
from infrastructure.push.limits import GatePolicy, cooldown, turn, wait_for_turn


@dataclass
class _Breaking:
    """One channel's pauses and breaker: until when (monotonic seconds), and the counts."""

    paused_until: float = 0.0
    open_until: float = 0.0
    failures: int = 0
    trips: int = 0


class MemoryLimits:
    """`LimitsBackend` in memory: the state of every limit by key, which the limiters,
    breakers and locks it builds read and write under its one `guard`."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.next_at: dict[str, float] = defaultdict(float)  # key → the next turn's time
        self.holds: dict[str, float] = defaultdict(float)  # key → until when reads hold off
        self.breaking: dict[str, _Breaking] = defaultdict(_Breaking)
        self.held_until: dict[str, float] = defaultdict(float)  # key → when a drain frees it
        self.tallies: dict[str, LocalTally] = {}

    def limiter(
        self, key: str, interval: float, *, yields: bool = False, burst: int = 1
    ) -> MemoryLimiter:
        return MemoryLimiter(self, key, interval, yields=yields, burst=burst)

    def breaker(self, key: str, policy: GatePolicy) -> MemoryBreaker:
        return MemoryBreaker(self, key, policy)

    def lock(self, key: str, hold: float) -> MemoryDrainLock:
        return MemoryDrainLock(self, key, hold)

    def tally(self, key: str) -> LocalTally:
        with self.guard:
            return self.tallies.setdefault(key, LocalTally())


class MemoryLimiter:
    def __init__(
        self, limits: MemoryLimits, key: str, interval: float, *, yields: bool, burst: int
    ) -> None:
        self._limits, self._key, self._interval, self._yields = limits, key, interval, yields
        self._burst = burst

    def take(self, wait: float, calls: int = 1) -> bool:
        return wait_for_turn(lambda: self.try_take(calls), wait)

    def try_take(self, calls: int = 1) -> float:
        limits, key = self._limits, self._key
        with limits.guard:
            now = time.monotonic()
            answer = turn(
                now,
                limits.next_at[key],
                limits.holds[key],
                self._interval,
                yields=self._yields,
                burst=self._burst,
                calls=calls,
            )
            limits.next_at[key], limits.holds[key] = answer.next_at, answer.held_until
            return answer.wait


class MemoryBreaker:
    def __init__(self, limits: MemoryLimits, key: str, policy: GatePolicy) -> None:
        self._limits, self._key, self._policy = limits, key, policy

    def closed_for(self) -> float:
        with self._limits.guard:
            state = self._limits.breaking[self._key]
            return max(0.0, max(state.paused_until, state.open_until) - time.monotonic())

    def pause(self, seconds: float) -> None:
        with self._limits.guard:
            self._limits.breaking[self._key].paused_until = time.monotonic() + seconds

    def succeeded(self) -> None:
        with self._limits.guard:
            state = self._limits.breaking[self._key]
            state.failures = state.trips = 0

    def failed(self) -> bool:
        with self._limits.guard:
            state = self._limits.breaking[self._key]
            state.failures += 1
            if state.failures < self._policy.failures:
                return False
            state.trips += 1
            state.open_until = time.monotonic() + cooldown(self._policy, state.trips)
            state.failures = self._policy.failures - 1  # one more reopens
            return True

    def is_open(self) -> bool:
        with self._limits.guard:
            return self._limits.breaking[self._key].open_until > time.monotonic()

    def failures(self) -> int:
        with self._limits.guard:
            return self._limits.breaking[self._key].failures


class MemoryDrainLock:
    def __init__(self, limits: MemoryLimits, key: str, hold: float) -> None:
        self._limits, self._key, self._hold = limits, key, hold

    @contextmanager
    def draining(self) -> Iterator[bool]:
        mine = self._acquire()
        try:
            yield mine
        finally:
            if mine:
                with self._limits.guard:
                    self._limits.held_until[self._key] = 0.0

    def busy(self) -> bool:
        with self._limits.guard:
            return self._limits.held_until[self._key] > time.monotonic()

    def _acquire(self) -> bool:
        with self._limits.guard:
            now = time.monotonic()
            if self._limits.held_until[self._key] > now:
                return False
            self._limits.held_until[self._key] = now + self._hold
            return True
