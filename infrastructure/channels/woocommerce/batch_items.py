"""What an item's answer in a WooCommerce batch means for its push: pure, no I/O.

`WC_REST_Controller::batch_items` answers a batch request 200 whatever each item's outcome: an
item that failed carries `{"id", "error": {"code", "message", "data": {"status"}}}` in place of
the product (`_products.md` "Batch update products"). Its `data.status` tells a refusal of the
write (4xx: a bad parameter, an id that is gone) from WooCommerce's own failure (5xx: a save
its database refused), which the same write may get past later. Counted as refused, such a push
would be answered and the store left showing its old quantity until the SKU changed again."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class NoResult(Enum):
    """Why a push written in a batch has no result yet."""

    EVICTED = "its cached id has gone: the SKU is looked up again"
    AGAIN = "WooCommerce failed the item on its side (`failed_on_its_side`): it goes again"


def failed_on_its_side(error: Mapping[str, Any]) -> bool:
    """Whether an item's `error` is WooCommerce's own failure (a 5xx `data.status`): the push
    goes again instead of being answered as refused."""
    data = error.get("data")
    status = data.get("status") if isinstance(data, dict) else None
    return isinstance(status, int) and not isinstance(status, bool) and status >= 500


def stock_ignored(quantity: int, item: dict[str, Any]) -> str:
    """Why a write answered success is refused: its answer does not show the quantity sent,
    managed."""
    return (
        "STOCK_NOT_MANAGED: WooCommerce answered success but shows stock_quantity "
        f"{item.get('stock_quantity')!r} "
        f"(manage_stock {item.get('manage_stock')!r}) where {quantity} was sent: stock "
        "management is off for this product or for the whole store; turn on WooCommerce > "
        "Settings > Products > Inventory > Enable stock management, and the product's Manage "
        "stock"
    )
