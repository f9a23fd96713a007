"""WooCommerce's orders modified since a moment, as their `order.updated` webhooks carry them.

`GET /orders?modified_after=&dates_are_gmt=true&orderby=modified&order=asc`, 100 a page, to
the newest: an order modified after `until` (by the store's clock, a little ahead of ours, or
while the listing runs) is listed now and again by the next poll, which stores it once. A REST
order is its webhook's body (WooCommerce builds the webhook from the REST API), so the
translator reads it unchanged. WooCommerce pages by offset, and an order modified while the
listing runs moves to the end and shifts the pages before it: so each next page is asked from
the last order's modification (keyset), WooCommerce's one-second resolution re-listing that
second's orders, which are passed over. Trashed orders are not listed (the `any` status leaves
them out): their `order.deleted` webhook says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from infrastructure.channels.base import PolledOrder
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.gateway import ChannelError
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway

TOPIC = "order.updated"
_SECOND = timedelta(seconds=1)


def list_orders(
    channel: ChannelConfig, gateway: WooCommerceGateway, since: datetime, until: datetime
) -> Iterator[PolledOrder]:
    """The orders modified after `since` (`until` too), oldest modification first.

    Raises:
        ChannelError: WooCommerce refused the listing or answered something unreadable
            (`Throttled`, `ChannelUnavailable`, `ChannelAuthFailed` as for its gateway).
    """
    seen: set[tuple[str, datetime]] = set()
    after, number = since, 1
    while True:
        orders, pages = gateway.page("/orders", _window(after), number)
        polled = [_polled(order) for order in orders]
        yield from (o for o in polled if (o.order_id, o.modified_at) not in seen)
        seen.update((o.order_id, o.modified_at) for o in polled)
        if number >= pages or not polled:
            return
        after, number = _next(after, number, polled[-1].modified_at)


def _next(after: datetime, number: int, last: datetime) -> tuple[datetime, int]:
    """From the last order's second on, or the next page when a whole page shares that second."""
    if last - _SECOND > after:
        return last - _SECOND, 1
    return after, number + 1


def _window(after: datetime) -> dict[str, str]:
    return {
        "modified_after": _gmt(after),
        "dates_are_gmt": "true",
        "orderby": "modified",
        "order": "asc",
    }


def _polled(order: Any) -> PolledOrder:
    if not isinstance(order, dict) or not isinstance(order.get("date_modified_gmt"), str):
        raise ChannelError(f"WooCommerce listed an order without date_modified_gmt: {order!r:.200}")
    modified = datetime.fromisoformat(order["date_modified_gmt"]).replace(tzinfo=UTC)
    body = json.dumps(order, separators=(",", ":")).encode()
    return PolledOrder(str(order["id"]), modified, TOPIC, body, {"x-wc-webhook-topic": TOPIC})


def _gmt(moment: datetime) -> str:
    """WooCommerce's dates: ISO 8601 to the second, UTC (with `dates_are_gmt`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
