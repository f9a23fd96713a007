"""Reading what Walmart shows (CHANNELS.md §5). Walmart documents two reads: one SKU a call
(`GET /v3/inventory?sku=`) and the whole catalogue, 50 SKUs a page (its largest) of
`GET /v3/inventories` followed by `meta.nextCursor`. The catalogue is read in pages, one a call
(`read_page`: its cursor is Walmart's `nextCursor`, kept as Walmart gave it); named SKUs
one a call while they are few (`PAGE` or fewer), else by pages while the pages left are fewer
than the SKUs left to find (the first page says how many there are), the rest one a call
(`page_on`). Each SKU's quantity is its `inputQty` at the channel's ship node (its first node
when the channel names none): the quantity pushes set, which Walmart's own sales lower."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infrastructure.channels.base import LevelPage, LevelReading
from infrastructure.channels.gateway import ChannelError
from infrastructure.channels.levels import paged, read_named, readings
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.walmart.gateway import WalmartGateway

INVENTORIES = "/v3/inventories"
PAGE = 50  # the most items one page of GET /v3/inventories holds


def read_levels(
    channel: WalmartConfig, gateway: WalmartGateway, skus: Sequence[str] | None
) -> Iterator[LevelReading]:
    """What Walmart shows of `skus` (ours), or of every SKU it lists when None.

    Raises what the gateway's reads raise (`Throttled`, `ChannelUnavailable`,
    `ChannelAuthFailed`, `ChannelError` for a refused or unreadable answer)."""
    if skus is None:
        return paged(lambda cursor: read_page(channel, gateway, cursor))
    if len(set(skus)) <= PAGE:
        return read_named(channel, gateway.read, skus, 1)
    return _named(channel, gateway, skus)


def page_on(pages_left: int, skus_left: int) -> bool:
    """Whether the rest of the catalogue costs fewer calls than reading the SKUs left one a
    call."""
    return 0 < pages_left < skus_left


def _named(
    channel: WalmartConfig, gateway: WalmartGateway, skus: Sequence[str]
) -> Iterator[LevelReading]:
    left = {channel.channel_sku(sku) for sku in skus}
    for read, (items, read_at, total) in enumerate(_pages(gateway), start=1):
        wanted = [item for item in items if item["sku"] in left]
        left -= {item["sku"] for item in wanted}
        yield from _shown(channel, iter([(wanted, read_at, total)]))
        pages_left = math.ceil(total / PAGE) - read
        if pages_left <= 0:
            return  # every page read: the SKUs not found are not listed
        if not page_on(pages_left, len(left)):
            break
    if left:
        yield from read_named(channel, gateway.read, [channel.our_sku(s) for s in left], 1)


def read_page(channel: WalmartConfig, gateway: WalmartGateway, cursor: str | None) -> LevelPage:
    """One page of the catalogue, 50 SKUs from Walmart's `nextCursor` (None: the first); one
    call.

    Raises what `read_levels` raises."""
    page = _page(gateway, cursor)
    return LevelPage(list(_shown(channel, iter([page.found]))), page.next)


@dataclass(frozen=True)
class _Page:
    """A page's items (those naming a SKU), when it was read and the catalogue's size
    (`found`), and Walmart's cursor of the next page (None: the last)."""

    found: tuple[list[dict[str, Any]], datetime, int]
    next: str | None


def _pages(gateway: WalmartGateway) -> Iterator[tuple[list[dict[str, Any]], datetime, int]]:
    """Each page's items (those naming a SKU), when it was read, and the catalogue's size."""
    cursor: str | None = None
    while True:
        page = _page(gateway, cursor)
        yield page.found
        if page.next is None:
            return
        cursor = page.next


def _page(gateway: WalmartGateway, cursor: str | None) -> _Page:
    params = {"limit": str(PAGE), **({"nextCursor": cursor} if cursor else {})}
    answer = gateway.get(INVENTORIES, params) or {}
    read_at = datetime.now(UTC)
    items = (answer.get("elements") or {}).get("inventories")
    if not isinstance(items, list):
        raise ChannelError(f"Walmart answered {INVENTORIES} without inventories")
    meta = answer.get("meta") or {}
    total = meta.get("totalCount")
    named = [i for i in items if _named_item(i)]
    after = meta.get("nextCursor")
    more = isinstance(after, str) and bool(after) and bool(items)
    return _Page((named, read_at, total if isinstance(total, int) else 0), after if more else None)


def _shown(
    channel: WalmartConfig, pages: Iterator[tuple[list[dict[str, Any]], datetime, int]]
) -> Iterator[LevelReading]:
    for items, read_at, _ in pages:
        shown = [(item["sku"], _input(item, channel.ship_node)) for item in items]
        yield from readings(channel, shown, read_at)


def _named_item(item: object) -> bool:
    return isinstance(item, dict) and isinstance(item.get("sku"), str) and bool(item["sku"])


def _input(item: dict[str, Any], ship_node: str) -> int | None:
    nodes = [n for n in item.get("nodes") or [] if isinstance(n, dict)]
    node = next((n for n in nodes if not ship_node or n.get("shipNode") == ship_node), None)
    amount = ((node or {}).get("inputQty") or {}).get("amount")
    return amount if isinstance(amount, int) and not isinstance(amount, bool) else None
