"""Reading a Shopify shop's levels in bulk: the `available` quantity of each inventory item at
our location, 250 items a call (the largest page Shopify allows). Named SKUs are looked up by
`sku:` search as pushes look them up; the whole catalogue is paged through `inventoryItems` by
its cursor (shopify.dev/api/usage/pagination-graphql), a page a call (`read_page`). A page
costs some 750 points of the shop's bucket: a THROTTLED page is asked again once the bucket can
pay for it, a few times, so a catalogue longer than the bucket is read at the shop's restore
rate (`bucket.py`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from infrastructure.channels.base import LevelPage, LevelReading
from infrastructure.channels.gateway import ChannelError
from infrastructure.channels.levels import paged, read_named, readings
from infrastructure.channels.shopify.bucket import paid
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.shopify.gateway import MAX_INPUT, ShopifyGateway, available_of

CATALOGUE = """
query InventoryLevels($first: Int!, $after: String, $location: ID!) {
  inventoryItems(first: $first, after: $after) {
    nodes {
      sku
      inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def read_levels(
    channel: ShopifyConfig, gateway: ShopifyGateway, skus: Sequence[str] | None
) -> Iterator[LevelReading]:
    """What the shop shows of `skus` (ours), or of every item it lists when None.

    Raises what `ShopifyGateway.graphql` raises (`Throttled`, `ChannelUnavailable`,
    `ChannelAuthFailed`, `ChannelError` for a refused query)."""
    if skus is not None:
        return read_named(channel, gateway.read, skus, MAX_INPUT)
    return paged(lambda cursor: read_page(channel, gateway, cursor))


def read_page(channel: ShopifyConfig, gateway: ShopifyGateway, cursor: str | None) -> LevelPage:
    """One page of the catalogue, after Shopify's `cursor` (None: the first page).

    Raises what `read_levels` raises, and `ChannelError` when Shopify says more items follow
    but gives no cursor to them."""
    variables = {"first": MAX_INPUT, "after": cursor, "location": gateway.location_id}
    page = paid(gateway, CATALOGUE, variables)
    read_at = datetime.now(UTC)
    items = ((page.get("data") or {}).get("inventoryItems")) or {}
    shown = list(readings(channel, _shown(items.get("nodes") or []), read_at))
    info = items.get("pageInfo") or {}
    if not info.get("hasNextPage"):
        return LevelPage(shown, None)
    after = info.get("endCursor")
    if not after:
        raise ChannelError("Shopify said more items follow but gave no cursor to them")
    return LevelPage(shown, str(after))


def _shown(nodes: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [
        (node["sku"], available_of(node.get("inventoryLevel"))) for node in nodes if node.get("sku")
    ]
