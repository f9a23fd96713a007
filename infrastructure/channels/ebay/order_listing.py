"""eBay's orders modified in a window, from the Fulfillment API: `GET /order?filter=
lastmodifieddate:[from..to]`, 200 a page by offset. eBay sends order events only as Platform
Notifications (SOAP), so this listing is how invsync learns eBay's orders at all: every minute by
default, with the reconciliation's overlap. Each order is stored as a delivery of topic `order`
with the order's JSON as its body (the translator reads it); an order modified while the listing
runs may move out of the window and shift the pages after it, so the overlap of the next listing
finds what a page skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from infrastructure.channels.base import PolledOrder
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.gateway import FULFILLMENT, EbayGateway
from infrastructure.channels.ebay.translator import ORDER, ebay_moment
from infrastructure.channels.gateway import ChannelError


def list_orders(
    channel: EbayConfig, gateway: EbayGateway, since: datetime, until: datetime
) -> Iterator[PolledOrder]:
    """The orders modified from `since` to `until`, as eBay pages them.

    Raises:
        ChannelError: eBay refused the listing or answered something unreadable
            (`Throttled`, `ChannelUnavailable`, `ChannelAuthFailed` as for its gateway).
    """
    window = {"filter": f"lastmodifieddate:[{ebay_time(since)}..{ebay_time(until)}]"}
    seen: set[tuple[str, datetime]] = set()
    for orders in gateway.pages(f"{FULFILLMENT}/order", window, "orders"):
        for polled in map(_polled, orders):
            if (polled.order_id, polled.modified_at) not in seen:
                seen.add((polled.order_id, polled.modified_at))
                yield polled


def _polled(order: dict[str, Any]) -> PolledOrder:
    order_id, modified = order.get("orderId"), order.get("lastModifiedDate")
    if not isinstance(order_id, str) or not isinstance(modified, str):
        raise ChannelError(
            f"eBay listed an order without orderId or lastModifiedDate: {order!r:.200}"
        )
    body = json.dumps(order, separators=(",", ":")).encode()
    return PolledOrder(order_id, ebay_moment(modified), ORDER, body)


def ebay_time(moment: datetime) -> str:
    """eBay's filter dates: ISO 8601 UTC to the millisecond, with `Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
