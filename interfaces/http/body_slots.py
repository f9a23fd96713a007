"""Body slots: how many webhook bodies, not yet known to be signed, are read at once, in all and
per client address.

The bound in all keeps anyone's unfinished bodies to at most that many times
`max_webhook_bytes`; the bound per address keeps one client (or one slow network) from taking
every slot, so genuine deliveries from elsewhere are still read.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter

PER_CLIENT_SHARE = 4  # one address may hold at most a quarter of the slots


class BodySlots:
    """At most `total` slots taken at once, and at most `total // PER_CLIENT_SHARE` (at least 1)
    by one client address. Lives in one event loop; nothing here awaits between a check and a
    take, so no lock is needed."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.per_client = max(1, total // PER_CLIENT_SHARE)
        self._taken: Counter[str] = Counter()

    def held(self, client: str) -> int:
        """Slots `client` holds now."""
        return self._taken[client]

    async def take(self, client: str, wait: float) -> bool:
        """Whether a slot was taken for `client` within `wait` seconds. Polled rather than
        awaited under a timeout, which could cancel an acquisition that had just succeeded and
        lose the slot for good."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not self._free_for(client):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        self._taken[client] += 1
        return True

    def release(self, client: str) -> None:
        """Give back a slot `client` took."""
        self._taken[client] -= 1
        if self._taken[client] <= 0:
            del self._taken[client]

    def _free_for(self, client: str) -> bool:
        return self._taken.total() < self.total and self._taken[client] < self.per_client


def client_of(host: str) -> str:
    """Whom slots are counted against for a peer `host`: the address itself for IPv4 (an
    IPv4-mapped IPv6 address is that IPv4 address), its /64 for IPv6 (one subscriber's usual
    allocation: anyone holding one has billions of addresses)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an address (a Unix socket, a test client): counted as given
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
