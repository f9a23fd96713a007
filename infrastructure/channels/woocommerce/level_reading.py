"""Reading a WooCommerce store's levels in bulk through its REST API, 100 items a call (the
largest `per_page` WordPress allows): named SKUs by the products `sku` filter as pushes look them
up; the whole catalogue by paging `GET /products`, then `GET /products/<id>/variations` of each
variable product, whose stock its variations keep, one page a call (`read_page`: its cursor
names the list and page to read next and the variable products still to read). Only stock
WooCommerce manages is read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from infrastructure.channels.base import LevelPage, LevelReading
from infrastructure.channels.levels import paged, read_named, readings
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.channels.woocommerce.gateway import (
    PAGE_LIMIT,
    WooCommerceGateway,
    managed_stock,
)


class _Cursor(BaseModel):
    """Where a catalogue read is: `page` of the products (`parent` None) or of a variable
    product's variations, and the variable products found whose variations are still to read."""

    parent: int | None = None
    page: int = 1
    variable: list[int] = []


def read_levels(
    channel: WooCommerceConfig, gateway: WooCommerceGateway, skus: Sequence[str] | None
) -> Iterator[LevelReading]:
    """What the store shows of `skus` (ours), or of every product and variation when None.

    Raises what the gateway's reads raise (`Throttled`, `ChannelUnavailable`,
    `ChannelAuthFailed`, `ChannelError` for a refused or unreadable list)."""
    if skus is not None:
        return read_named(channel, gateway.read, skus, PAGE_LIMIT)
    return paged(lambda cursor: read_page(channel, gateway, cursor))


def read_page(
    channel: WooCommerceConfig, gateway: WooCommerceGateway, cursor: str | None
) -> LevelPage:
    """One page of the catalogue, from `cursor` (None: the first products page); one call.

    Raises what the gateway's `page` raises, and `ValueError` for a cursor it did not make."""
    at = _Cursor.model_validate_json(cursor) if cursor else _Cursor()
    path = "/products" if at.parent is None else f"/products/{at.parent}/variations"
    found, pages = gateway.page(path, {}, at.page)
    items = [item for item in found if isinstance(item, dict)]
    shown = list(readings(channel, _shown(items), datetime.now(UTC)))
    variable = at.variable + [int(p["id"]) for p in items if p.get("type") == "variable"]
    return LevelPage(shown, _next(at, pages, variable))


def _next(at: _Cursor, pages: int, variable: list[int]) -> str | None:
    if at.page < pages:
        after = _Cursor(parent=at.parent, page=at.page + 1, variable=variable)
    elif variable:
        after = _Cursor(parent=variable[0], page=1, variable=variable[1:])
    else:
        return None
    return after.model_dump_json()


def _shown(items: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [(item["sku"], managed_stock(item)) for item in items if item.get("sku")]
