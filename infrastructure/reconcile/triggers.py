"""What starts a level check between the schedules: an observation that is not the echo of our
own push, for its SKU. Both triggers of issue 13 file one: a webhook reporting stock
(`inventory_levels/update`, `product.updated`) that differs from what the channel last
acknowledged, and a compare-and-set Shopify refused (`CHANGE_FROM_QUANTITY_STALE`), where the
pusher files what the channel showed. Each tick asks for one run per channel over the SKUs
observed since the last tick (`request_check` joins a run asked for and not started yet, so
several processes ticking ask for little more than one).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from psycopg import Connection

from infrastructure import observations

RequestCheck = Callable[[str, Sequence[str]], int]
BATCH = 1000  # observations read per tick at most: a backlog is worked over a few ticks


class Triggers:
    """Level checks of the SKUs `channels` (those that reconcile) were seen to show unasked.

    The first tick starts from the newest observation: what was observed before the process
    started was for the schedules (or the process before) to check."""

    def __init__(self, request_check: RequestCheck, channels: Collection[str]) -> None:
        self._request_check, self._channels = request_check, set(channels)
        self._after: int | None = None

    def tick(self, conn: Connection[Any]) -> dict[str, list[str]]:
        """Ask for the checks due; returns the SKUs asked for, by channel."""
        if self._after is None:
            self._after = observations.last_id(conn)
            return {}
        found = observations.unexplained_after(conn, self._after, BATCH)
        if found:
            self._after = found[-1][0]
        wanted: dict[str, list[str]] = {}
        for _, channel_id, sku in found:
            if channel_id in self._channels and sku not in wanted.setdefault(channel_id, []):
                wanted[channel_id].append(sku)
        for channel_id, skus in wanted.items():
            self._request_check(channel_id, skus)
        return wanted
