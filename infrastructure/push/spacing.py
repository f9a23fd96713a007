"""A rate limit that spaces calls at least `interval` apart, shared by every worker through
Redis, with Redis's clock: the cell rate algorithm (GCRA) with a burst of one.

Why not Dramatiq's limiters: its bucket limiter admits one call per bucket anywhere in it, so two
calls can go back to back across a bucket's edge, and a sliding second overlaps one bucket more
than 1000/bucket; to keep every one-second window within a channel's limit it has to run at 80 %
of it. Strict spacing keeps any window of n intervals to n calls, so the limit can be used
nearly whole, and evenly: at a channel's limit, an event waits half an interval on average."""

from __future__ import annotations

import time
from typing import cast

import redis

# KEYS[1]: the theoretical arrival time (ms) of the next call. ARGV[1]: the interval (ms).
# Returns 0 when the call may go now (and books the next slot), else the ms to wait.
_TAKE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local next_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if ms < next_at then
  return next_at - ms
end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], ms + interval, 'PX', interval)
return 0
"""


class Spacing:
    """At most one call per `interval` seconds under `key`, across every worker."""

    def __init__(self, client: redis.Redis, key: str, interval: float) -> None:
        self.key, self.interval = key, interval
        self._take = client.register_script(_TAKE)
        self._interval_ms = max(1, round(interval * 1000))

    def take(self, wait: float) -> bool:
        """True once a call may go, waiting at most `wait` seconds for its turn."""
        deadline = time.monotonic() + wait
        while True:
            ms = cast(int, self._take(keys=[self.key], args=[self._interval_ms]))
            if ms == 0:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, ms / 1000))
