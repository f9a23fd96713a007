"""Reading what Walmart shows (CHANNELS.md §5): named SKUs one call each
(`GET /v3/inventory?sku=`, as pushes read them); the whole catalogue by pages of 50 (the most
Walmart documents) of `GET /v3/inventories`, followed by `meta.nextCursor`. Each SKU's quantity
is its `inputQty` at the channel's ship node (its first node when the channel names none): the
quantity pushes set, which Walmart's own sales lower."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from infrastructure.channels.base import LevelReading
from infrastructure.channels.gateway import ChannelError
from infrastructure.channels.levels import read_named, readings
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
    if skus is not None:
        return read_named(channel, gateway.read, skus, 1)
    return _catalogue(channel, gateway)


def _catalogue(channel: WalmartConfig, gateway: WalmartGateway) -> Iterator[LevelReading]:
    params: dict[str, str] = {"limit": str(PAGE)}
    while True:
        answer = gateway.get(INVENTORIES, params) or {}
        read_at = datetime.now(UTC)
        items = (answer.get("elements") or {}).get("inventories")
        if not isinstance(items, list):
            raise ChannelError(f"Walmart answered {INVENTORIES} without inventories")
        shown = [(item["sku"], _input(item, channel.ship_node)) for item in items if _named(item)]
        yield from readings(channel, shown, read_at)
        cursor = (answer.get("meta") or {}).get("nextCursor")
        if not isinstance(cursor, str) or not cursor or not items:
            return
        params = {"limit": str(PAGE), "nextCursor": cursor}


def _named(item: object) -> bool:
    return isinstance(item, dict) and isinstance(item.get("sku"), str) and bool(item["sku"])


def _input(item: dict[str, Any], ship_node: str) -> int | None:
    nodes = [n for n in item.get("nodes") or [] if isinstance(n, dict)]
    node = next((n for n in nodes if not ship_node or n.get("shipNode") == ship_node), None)
    amount = ((node or {}).get("inputQty") or {}).get("amount")
    return amount if isinstance(amount, int) and not isinstance(amount, bool) else None
