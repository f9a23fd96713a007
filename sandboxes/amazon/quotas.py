"""SP-API's usage plans as the Amazon sandbox enforces them: a token bucket per operation, with
the rates and bursts Amazon's models declare."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rate:
    """An operation's token bucket: `rate` tokens a second, at most `burst` held."""

    rate: float
    burst: int


# The models' default usage plans (requests a second, burst), written here from Amazon's models
# and not taken from the gateway: a wrong rate there must meet Amazon's, not its own copy.
RATES = {
    "patchListingsItem": Rate(5.0, 5),
    "getListingsItem": Rate(5.0, 10),
    "searchListingsItems": Rate(5.0, 5),
    "createFeedDocument": Rate(0.5, 15),
    "createFeed": Rate(0.0083, 15),
    "getFeed": Rate(2.0, 15),
    "getFeedDocument": Rate(0.0222, 10),
    "getOrders": Rate(0.0167, 20),
    "getOrderItems": Rate(0.5, 30),
}


@dataclass
class Bucket:
    """One operation's bucket of tokens, refilled at its rate up to its burst."""

    rate: Rate
    tokens: float
    at: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate.burst, self.tokens + (now - self.at) * self.rate.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
