"""Body slots: how many webhook bodies, not yet known to be signed, are read at once, in all and
per client address.

The bound in all keeps anyone's unfinished bodies to at most that many times
`max_webhook_bytes`; the bound per address keeps one client (or one slow network) from taking
every slot, so genuine deliveries from elsewhere are still read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
from collections import Counter, deque

PER_CLIENT_SHARE = 4  # one address may hold at most a quarter of the slots


class BodySlots:
    """At most `total` slots taken at once, and at most `total // PER_CLIENT_SHARE` (at least 1)
    by one client address. Lives in one event loop; nothing here awaits between a check and a
    take, so no lock is needed.

    A released slot is handed over at once to the longest waiting request that may hold it (of
    the same address first), instead of waiters polling for it: a poll's sleep held every
    webhook beyond an address's share back by tens of milliseconds.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.per_client = max(1, total // PER_CLIENT_SHARE)
        self._taken: Counter[str] = Counter()
        self._held = 0
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def held(self, client: str) -> int:
        """Slots `client` holds now."""
        return self._taken[client]

    async def take(self, client: str, wait: float) -> bool:
        """Whether a slot was taken for `client` within `wait` seconds."""
        if self._free_for(client):
            self._hold(client)
            return True
        if wait <= 0:
            return False
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(client, deque()).append(handed)
        try:
            # asyncio.wait leaves `handed` as it is: a slot handed over just as the wait ends is
            # still this request's.
            await asyncio.wait({handed}, timeout=wait)
        except BaseException:  # cancelled: a slot handed over meanwhile goes back
            self._give_up(client, handed)
            raise
        if handed.done():
            return True
        self._give_up(client, handed)
        return False

    def release(self, client: str) -> None:
        """Give back a slot `client` took."""
        self._taken[client] -= 1
        self._held -= 1
        if self._taken[client] <= 0:
            del self._taken[client]
        self._hand_over(client)

    def _hold(self, client: str) -> None:
        self._taken[client] += 1
        self._held += 1

    def _give_up(self, client: str, handed: asyncio.Future[None]) -> None:
        if handed.done():
            self.release(client)
            return
        handed.cancel()
        queue = self._waiting.get(client)
        if queue is not None:
            queue.remove(handed)
            if not queue:
                del self._waiting[client]

    def _hand_over(self, freed: str) -> None:
        """Hand free slots to waiters: `freed`'s first (they waited for its share), then any
        address's that is under its share, longest waiting first within an address."""
        emptied = []
        for client in itertools.chain((freed,), self._waiting):
            queue = self._waiting.get(client)
            while queue and self._free_for(client):
                self._hold(client)
                queue.popleft().set_result(None)
            if queue is not None and not queue:
                emptied.append(client)
            if self._held >= self.total:
                break
        for client in emptied:
            self._waiting.pop(client, None)

    def _free_for(self, client: str) -> bool:
        return self._held < self.total and self._taken[client] < self.per_client


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
