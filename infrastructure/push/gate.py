"""What decides whether a channel may be called now, shared by every worker through Redis:
its rate limit (`Spacing`), a pause the channel asked for (429, Retry-After),
a circuit breaker that stops calling a channel that keeps failing, and the mutex that lets one
worker at a time drain a channel (so no two push the same rows). Channels that limit each
operation apart get a limiter per operation too (`OperationTurns`)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import redis
from dramatiq.rate_limits import ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from infrastructure.channels.gateway import CHANNEL_CALL
from infrastructure.push.spacing import Spacing


@dataclass(frozen=True)
class GatePolicy:
    """Per channel: `rate` (>= 2) calls per second at most in any one-second window; the
    breaker opens after `failures` failed calls in a row, for `cooldown` seconds, doubling up
    to `max_cooldown` while the channel stays down."""

    rate: float = 2.0
    failures: int = 3
    cooldown: float = 1.0
    max_cooldown: float = 60.0
    # The longest one drain may hold the channel: past it, the lock of a worker that died
    # mid-drain frees itself. Longer than any drain can take (its turn and its slowest calls),
    # or a second worker would drain beside a slow first one.
    hold: float = 60.0


class OperationTurns:
    """A limiter per operation at 80 % of its documented rate, shared through Redis (the channel
    counts tokens by its own clock, which is not ours to the millisecond), and `CHANNEL_CALL`
    for the channel's own rate."""

    def __init__(
        self, client: redis.Redis, key: str, rates: Mapping[str, float], channel: Spacing
    ) -> None:
        self._limiters = {
            operation: Spacing(client, f"{key}:op:{operation}", 1 / (0.8 * rate))
            for operation, rate in rates.items()
        }
        self._limiters[CHANNEL_CALL] = channel

    def take(self, operation: str, wait: float) -> bool:
        limiter = self._limiters.get(operation)
        return limiter is None or limiter.take(wait)


class ChannelGate:
    def __init__(
        self, client: redis.Redis, channel_id: str, policy: GatePolicy, namespace: str = "invsync"
    ) -> None:
        self.channel_id, self.policy = channel_id, policy
        self._redis = client
        self._key = f"{namespace}:push:{channel_id}"
        # Spaced for rate - 1 calls a second (80 % of the rate at least): a window of one second
        # then holds rate - 1 calls as admitted, and the channel, counting calls as they arrive
        # a few ms apart from when they were admitted, sees the rate at most.
        interval = math.ceil(1000 / max(policy.rate - 1, policy.rate * 0.8)) / 1000
        self._limiter = Spacing(client, f"{self._key}:rate", interval)
        self._mutex = ConcurrentRateLimiter(  # type: ignore[no-untyped-call]
            RedisBackend(client=client),
            f"{self._key}:drain",
            limit=1,
            ttl=int(policy.hold * 1000),
        )

    @contextmanager
    def draining(self) -> Iterator[bool]:
        """True inside while this worker is the one draining the channel."""
        with self._mutex.acquire(raise_on_failure=False) as acquired:
            yield bool(acquired)

    def busy(self) -> bool:
        """True while some worker is draining the channel."""
        return int(cast(bytes, self._redis.get(f"{self._key}:drain") or 0)) > 0

    def take_call(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) for the rate limit to admit one call."""
        return self._limiter.take(timeout)

    def turns(self, rates: Mapping[str, float]) -> OperationTurns:
        """Limiters for the operations the channel limits apart, at these rates (calls/s)."""
        return OperationTurns(self._redis, self._key, rates, self._limiter)

    def closed_for(self) -> float:
        """Seconds before the channel may be called again (paused or breaker open); 0: now."""
        left = [cast(int, self._redis.pttl(f"{self._key}:{name}")) for name in ("pause", "open")]
        return max((ms for ms in left if ms > 0), default=0) / 1000

    def pause(self, seconds: float) -> None:
        """The channel asked us to wait (HTTP 429, Retry-After)."""
        self._redis.set(f"{self._key}:pause", "1", px=max(1, int(seconds * 1000)))

    def succeeded(self) -> None:
        self._redis.delete(f"{self._key}:failures", f"{self._key}:trips")

    def failed(self) -> bool:
        """Count a failed call; open the breaker after `failures` in a row. True if it opened."""
        failures = cast(int, self._redis.incr(f"{self._key}:failures"))
        if failures < self.policy.failures:
            return False
        trips = cast(int, self._redis.incr(f"{self._key}:trips"))
        cooldown = min(self.policy.max_cooldown, self.policy.cooldown * 2 ** (trips - 1))
        self._redis.set(f"{self._key}:open", "1", px=int(cooldown * 1000))
        self._redis.set(f"{self._key}:failures", self.policy.failures - 1)  # one more reopens
        return True

    def state(self) -> dict[str, object]:
        return {
            "breaker": "open" if self._redis.exists(f"{self._key}:open") else "closed",
            "closed_for_seconds": self.closed_for(),
            "failures_in_a_row": int(cast(bytes, self._redis.get(f"{self._key}:failures") or 0)),
        }
