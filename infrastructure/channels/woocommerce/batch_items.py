"""What an item's answer in a WooCommerce batch means for its push: pure, no I/O.

`WC_REST_Controller::batch_items` answers a batch request 200 whatever each item's outcome: an
item that failed carries `{"id", "error": {"code", "message", "data": {"status"}}}` in place of
the product (`_products.md` "Batch update products"). Its `data.status` tells a refusal of the
write (4xx: a bad parameter, an id that is gone) from WooCommerce's own failure (5xx: a save
its database refused), which the same write may get past later. Counted as refused, such a push
would be answered and the store left showing its old quantity until the SKU changed again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def failed_on_its_side(error: Mapping[str, Any]) -> bool:
    """Whether an item's `error` is WooCommerce's own failure (a 5xx `data.status`): the push
    goes again instead of being answered as refused."""
    data = error.get("data")
    status = data.get("status") if isinstance(data, dict) else None
    return isinstance(status, int) and not isinstance(status, bool) and status >= 500
