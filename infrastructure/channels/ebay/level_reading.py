"""Reading an eBay seller's levels in bulk through the Inventory API: named SKUs 25 a call
(`bulk_get_inventory_item`), the whole catalogue by paging `GET /inventory_item`, 200 a page,
one page a call (`read_page`: its cursor is the next page's offset).
The quantity read is the item's `shipToLocationAvailability.quantity`, the one pushes set
with each offer's. A listing shows the least of it and its offers' `availableQuantity`, but
offers are read one SKU a call (`GET /offer?sku=`, no bulk read): reading them would multiply
the calls by up to 200, so an offer edited by hand alone goes unseen (a README limit)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from infrastructure.channels.base import LevelPage, LevelReading
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.gateway import BULK_LIMIT, INVENTORY, EbayGateway, item_quantity
from infrastructure.channels.levels import paged, read_named, readings


def read_levels(
    channel: EbayConfig, gateway: EbayGateway, skus: Sequence[str] | None
) -> Iterator[LevelReading]:
    """What eBay keeps of `skus` (ours), or of every inventory item when None.

    Raises what the gateway's reads raise (`Throttled`, `ChannelUnavailable`,
    `ChannelAuthFailed`, `ChannelError` for a refused or unreadable page)."""
    if skus is not None:
        return read_named(channel, gateway.read, skus, BULK_LIMIT)
    return paged(lambda cursor: read_page(channel, gateway, cursor))


def read_page(channel: EbayConfig, gateway: EbayGateway, cursor: str | None) -> LevelPage:
    """One page of the inventory items, 200 from the offset `cursor` names (None: the first);
    one call.

    Raises what the gateway's `page` raises, and `ValueError` for a cursor it did not make."""
    offset = _offset(cursor)
    items, after = gateway.page(f"{INVENTORY}/inventory_item", {}, "inventoryItems", offset)
    shown = [(str(i["sku"]), item_quantity(i)) for i in items if i.get("sku")]
    found = list(readings(channel, shown, datetime.now(UTC)))
    return LevelPage(found, None if after is None else str(after))


def _offset(cursor: str | None) -> int:
    """Raises `ValueError` for a cursor that is not an offset `read_page` made."""
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()):
        raise ValueError(f"not an eBay inventory offset: {cursor!r}")
    return int(cursor)
