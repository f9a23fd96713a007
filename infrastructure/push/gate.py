"""What decides whether a channel may be called now, shared by every worker through one limits
backend (`limits.py`: Redis, or memory for one process): its rate limit, a pause the channel
asked for (429, Retry-After), a circuit breaker that stops calling a channel that keeps failing,
and the lock that lets one worker at a time drain a channel (so no two push the same rows).
Channels that limit each operation apart get a limiter per operation too (`OperationTurns`)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

from infrastructure.channels.gateway import CHANNEL_CALL, NO_BURSTS, Tally
from infrastructure.push.limits import (
    GatePolicy,
    Limiter,
    LimitsBackend,
    call_interval,
    operation_interval,
)

__all__ = ["ChannelGate", "GatePolicy", "OperationTurns"]


class OperationTurns:
    """`Turns`: a limiter per operation the channel limits apart, at these `rates` (calls a
    second) and `bursts` (calls at once after a rest; one where none is named), and `channel`'s
    own for `CHANNEL_CALL`; each `yields` to pushes if asked."""

    def __init__(
        self,
        limits: LimitsBackend,
        key: str,
        rates: Mapping[str, float],
        channel: Limiter,
        *,
        bursts: Mapping[str, int] = NO_BURSTS,
        yields: bool = False,
    ) -> None:
        self._limiters = {
            operation: limits.limiter(
                f"{key}:op:{operation}",
                operation_interval(rate),
                yields=yields,
                burst=bursts.get(operation, 1),
            )
            for operation, rate in rates.items()
        }
        self._limiters[CHANNEL_CALL] = channel

    def take(self, operation: str, wait: float) -> bool:
        limiter = self._limiters.get(operation)
        return limiter is None or limiter.take(wait)


class ChannelGate:
    """One channel's limits, under `namespace:push:channel_id` in `limits`. A gate that
    `yields` (reconciliation's reads) takes turns of the same rate as the channel's pushes, but
    only while no push is waiting for one: pushes keep priority (`limits.turn`)."""

    def __init__(
        self,
        limits: LimitsBackend,
        channel_id: str,
        policy: GatePolicy,
        namespace: str = "invsync",
        *,
        yields: bool = False,
    ) -> None:
        self.channel_id, self.policy, self._yields = channel_id, policy, yields
        self._limits, self._key = limits, f"{namespace}:push:{channel_id}"
        # A push's calls go on turns booked together: the limiter's burst is that many.
        interval = call_interval(policy.rate, policy.calls_per_push)
        self._calls = limits.limiter(
            f"{self._key}:rate", interval, yields=yields, burst=policy.calls_per_push
        )
        self._breaker = limits.breaker(self._key, policy)
        self._lock = limits.lock(f"{self._key}:drain", policy.hold)

    def draining(self) -> AbstractContextManager[bool]:
        """True inside while this worker is the one draining the channel."""
        return self._lock.draining()

    def busy(self) -> bool:
        """True while some worker is draining the channel."""
        return self._lock.busy()

    def take_call(self, timeout: float, calls: int = 1) -> bool:
        """Wait (at most `timeout` seconds) for the rate limit to admit `calls` calls (at most
        the policy's `calls_per_push`) back to back."""
        return self._calls.take(timeout, calls)

    def try_call(self, calls: int = 1) -> float:
        """Take the rate limit's turn for `calls` calls back to back if it has come: 0 when
        taken, else the seconds until it comes (nothing booked; reconciliation's reads hold off
        for it meanwhile, `limits.turn`)."""
        return self._calls.try_take(calls)

    def turns(
        self, rates: Mapping[str, float], bursts: Mapping[str, int] = NO_BURSTS
    ) -> OperationTurns:
        """Limiters for the operations the channel limits apart, at these rates (calls/s) and
        bursts (calls at once after a rest)."""
        return OperationTurns(
            self._limits, self._key, rates, self._calls, bursts=bursts, yields=self._yields
        )

    def tally(self, name: str) -> Tally:
        """The channel's counts under `name`, shared by every worker."""
        return self._limits.tally(f"{self._key}:tally:{name}")

    def closed_for(self) -> float:
        """Seconds before the channel may be called again (paused or breaker open); 0: now."""
        return self._breaker.closed_for()

    def pause(self, seconds: float) -> None:
        """The channel asked us to wait (HTTP 429, Retry-After)."""
        self._breaker.pause(seconds)

    def succeeded(self) -> None:
        self._breaker.succeeded()

    def failed(self) -> bool:
        """Count a failed call; open the breaker after `failures` in a row. True if it opened."""
        return self._breaker.failed()

    def state(self) -> dict[str, object]:
        return {
            "breaker": "open" if self._breaker.is_open() else "closed",
            "closed_for_seconds": self.closed_for(),
            "failures_in_a_row": self._breaker.failures(),
        }
