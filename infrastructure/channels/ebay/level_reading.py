"""Reading an eBay seller's levels in bulk through the Inventory API: named SKUs 25 a call
(`bulk_get_inventory_item`), the whole catalogue by paging `GET /inventory_item`, 200 a page.
The quantity read is the item's `shipToLocationAvailability.quantity`, the one pushes set
with each offer's. A listing shows the least of it and its offers' `availableQuantity`, but
offers are read one SKU a call (`GET /offer?sku=`, no bulk read): reading them would multiply
the calls by up to 200, so an offer edited by hand alone goes unseen (a README limit)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from infrastructure.channels.base import LevelReading
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.gateway import BULK_LIMIT, INVENTORY, EbayGateway, item_quantity
from infrastructure.channels.levels import read_named, readings


def read_levels(
    channel: EbayConfig, gateway: EbayGateway, skus: Sequence[str] | None
) -> Iterator[LevelReading]:
    """What eBay keeps of `skus` (ours), or of every inventory item when None.

    Raises what the gateway's reads raise (`Throttled`, `ChannelUnavailable`,
    `ChannelAuthFailed`, `ChannelError` for a refused or unreadable page)."""
    if skus is not None:
        return read_named(channel, gateway.read, skus, BULK_LIMIT)
    return _catalogue(channel, gateway)


def _catalogue(channel: EbayConfig, gateway: EbayGateway) -> Iterator[LevelReading]:
    for items in gateway.pages(f"{INVENTORY}/inventory_item", {}, "inventoryItems"):
        shown = [(str(i["sku"]), item_quantity(i)) for i in items if i.get("sku")]
        yield from readings(channel, shown, datetime.now(UTC))
