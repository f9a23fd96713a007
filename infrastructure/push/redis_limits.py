"""The limits (`limits.py`) in Redis, shared by every worker process, by Redis's clock.

The rate is the cell rate algorithm (GCRA), with the limiter's burst, in one Lua script. Why not
Dramatiq's limiters for it: its bucket limiter admits one call per bucket anywhere in it, so two
calls can go back to back across a bucket's edge, and a sliding second overlaps one bucket more
than 1000/bucket; to keep every one-second window within a channel's limit it has to run at 80 %
of it. Strict spacing keeps any window of n intervals to n calls, so the limit can be used
nearly whole, and evenly: at a channel's limit, an event waits half an interval on average."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import redis
from dramatiq.rate_limits import ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from infrastructure.push.limits import GatePolicy, cooldown, wait_for_turn

# `limits.turn` in Redis. KEYS[1]: the theoretical arrival time (ms) of the next call; KEYS[2]:
# until when calls that yield hold off. ARGV[1]: the interval (ms); ARGV[2]: '1' if the call
# yields; ARGV[3]: how far ahead of their turn the calls may go (ms: burst - calls intervals);
# ARGV[4]: what they book (ms: calls intervals). Returns 0 when the calls may go now (and books
# their slots), else the ms to wait.
_TAKE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local next_at = tonumber(redis.call('GET', KEYS[1]) or '0')
local held_until = tonumber(redis.call('GET', KEYS[2]) or '0')
local interval = tonumber(ARGV[1])
local yields = ARGV[2] == '1'
local earliest = next_at - tonumber(ARGV[3])
if yields and ms < held_until then
  return held_until - ms
end
if ms < earliest then
  if not yields and held_until < earliest + interval then
    redis.call('SET', KEYS[2], earliest + interval, 'PX', earliest + interval - ms)
  end
  return earliest - ms
end
local booked = math.max(ms, next_at) + tonumber(ARGV[4])
redis.call('SET', KEYS[1], booked, 'PX', booked - ms)
if not yields then
  redis.call('DEL', KEYS[2])
end
return 0
"""


class RedisLimits:
    """`LimitsBackend` in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def limiter(
        self, key: str, interval: float, *, yields: bool = False, burst: int = 1
    ) -> RedisLimiter:
        return RedisLimiter(self.client, key, interval, yields=yields, burst=burst)

    def breaker(self, key: str, policy: GatePolicy) -> RedisBreaker:
        return RedisBreaker(self.client, key, policy)

    def lock(self, key: str, hold: float) -> RedisDrainLock:
        return RedisDrainLock(self.client, key, hold)

    def tally(self, key: str) -> RedisTally:
        return RedisTally(self.client, key)


class RedisTally:
    """Counts under `key:<name>`, each expiring `ttl` seconds after its first count."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._redis, self._key = client, key

    def counts(self, names: Sequence[str]) -> list[int]:
        if not names:
            return []
        found = cast(list[bytes | None], self._redis.mget([f"{self._key}:{n}" for n in names]))
        return [int(value or 0) for value in found]

    def add(self, names: Sequence[str], ttl: float) -> None:
        # A first count creates the key with its expiry, and INCR keeps it: `EXPIRE ... NX` would
        # say the same, but needs Redis 7 and the embedded Redis is 6.2.
        with self._redis.pipeline() as pipe:
            for name in names:
                pipe.set(f"{self._key}:{name}", 0, ex=max(1, int(ttl)), nx=True)
                pipe.incr(f"{self._key}:{name}")
            pipe.execute()


class RedisLimiter:
    """At most one call per `interval` seconds under `key`, and `burst` at once after a rest,
    across every worker; one that `yields` waits while a call that does not is waiting
    (`limits.turn`)."""

    def __init__(
        self, client: redis.Redis, key: str, interval: float, *, yields: bool, burst: int = 1
    ) -> None:
        self.key, self.interval = key, interval
        self._take = client.register_script(_TAKE)
        self._ms, self._yields, self._burst = max(1, round(interval * 1000)), yields, burst

    def take(self, wait: float, calls: int = 1) -> bool:
        return wait_for_turn(lambda: self.try_take(calls), wait)

    def try_take(self, calls: int = 1) -> float:
        keys = [self.key, f"{self.key}:held"]
        ms, ahead = self._ms, (self._burst - calls) * self._ms
        args = [ms, int(self._yields), ahead, calls * ms]
        return cast(int, self._take(keys=keys, args=args)) / 1000


class RedisBreaker:
    """Pauses and the breaker of the channel under `key`: keys that expire when they end
    (`:pause`, `:open`), and counters (`:failures`, `:trips`) a success deletes."""

    def __init__(self, client: redis.Redis, key: str, policy: GatePolicy) -> None:
        self._redis, self._key, self._policy = client, key, policy

    def closed_for(self) -> float:
        # One round trip for both keys: a drain asks before every call and every look at the
        # outbox, and under load each trip to Redis waits for the machine's cores.
        with self._redis.pipeline(transaction=False) as pipe:
            for name in ("pause", "open"):
                pipe.pttl(f"{self._key}:{name}")
            left = cast(list[int], pipe.execute())
        return max((ms for ms in left if ms > 0), default=0) / 1000

    def pause(self, seconds: float) -> None:
        self._redis.set(f"{self._key}:pause", "1", px=max(1, int(seconds * 1000)))

    def succeeded(self) -> None:
        self._redis.delete(f"{self._key}:failures", f"{self._key}:trips")

    def failed(self) -> bool:
        failures = cast(int, self._redis.incr(f"{self._key}:failures"))
        if failures < self._policy.failures:
            return False
        trips = cast(int, self._redis.incr(f"{self._key}:trips"))
        open_for = cooldown(self._policy, trips)
        self._redis.set(f"{self._key}:open", "1", px=int(open_for * 1000))
        self._redis.set(f"{self._key}:failures", self._policy.failures - 1)  # one more reopens
        return True

    def is_open(self) -> bool:
        return bool(self._redis.exists(f"{self._key}:open"))

    def failures(self) -> int:
        return int(cast(bytes, self._redis.get(f"{self._key}:failures") or 0))


class RedisDrainLock:
    """Dramatiq's concurrent limiter with a limit of one under `key`."""

    def __init__(self, client: redis.Redis, key: str, hold: float) -> None:
        self._redis, self._key = client, key
        self._mutex = ConcurrentRateLimiter(  # type: ignore[no-untyped-call]
            RedisBackend(client=client), key, limit=1, ttl=int(hold * 1000)
        )

    @contextmanager
    def draining(self) -> Iterator[bool]:
        with self._mutex.acquire(raise_on_failure=False) as acquired:
            yield bool(acquired)

    def busy(self) -> bool:
        return int(cast(bytes, self._redis.get(self._key) or 0)) > 0
