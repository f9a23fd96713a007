"""Reading a WooCommerce store's levels in bulk through its REST API, 100 items a call (the
largest `per_page` WordPress allows): named SKUs by the products `sku` filter as pushes look them
up; the whole catalogue by paging `GET /products`, and `GET /products/<id>/variations` for each
variable product, whose stock its variations keep. Only stock WooCommerce manages is read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from infrastructure.channels.base import LevelReading
from infrastructure.channels.levels import read_named, readings
from infrastructure.channels.woocommerce.config import WooCommerceConfig
from infrastructure.channels.woocommerce.gateway import (
    PAGE_LIMIT,
    WooCommerceGateway,
    managed_stock,
)


def read_levels(
    channel: WooCommerceConfig, gateway: WooCommerceGateway, skus: Sequence[str] | None
) -> Iterator[LevelReading]:
    """What the store shows of `skus` (ours), or of every product and variation when None.

    Raises what the gateway's reads raise (`Throttled`, `ChannelUnavailable`,
    `ChannelAuthFailed`, `ChannelError` for a refused or unreadable list)."""
    if skus is not None:
        return read_named(channel, gateway.read, skus, PAGE_LIMIT)
    return _catalogue(channel, gateway)


def _catalogue(channel: WooCommerceConfig, gateway: WooCommerceGateway) -> Iterator[LevelReading]:
    variable: list[int] = []
    for products, read_at in _stamped(gateway, "/products"):
        variable.extend(int(p["id"]) for p in products if p.get("type") == "variable")
        yield from readings(channel, _shown(products), read_at)
    for parent in variable:
        for variations, read_at in _stamped(gateway, f"/products/{parent}/variations"):
            yield from readings(channel, _shown(variations), read_at)


def _stamped(
    gateway: WooCommerceGateway, path: str
) -> Iterator[tuple[list[dict[str, Any]], datetime]]:
    for page in gateway.pages(path):
        yield [item for item in page if isinstance(item, dict)], datetime.now(UTC)


def _shown(items: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [(item["sku"], managed_stock(item)) for item in items if item.get("sku")]
