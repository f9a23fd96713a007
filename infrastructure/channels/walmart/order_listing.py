"""Walmart's orders modified in a window, listed for reconciliation, and acknowledged for the
merchant who asks invsync to (CHANNELS.md §5).

`GET /v3/orders?lastModifiedStartDate=&lastModifiedEndDate=&limit=200` (the most a page holds),
then each next page by the query string Walmart gives as `meta.nextCursor`. Each order is stored
as it is listed, under our topic `LISTED_ORDER`: its lines' units per status say more than any
one event (a line part shipped, part cancelled), and the translator reads the same business keys
from it as from the events, so an order seen both ways counts once. An order is modified when a
line's status changes: its newest `statusDate` is its modification time. Walmart lists only the
last 180 days, at most 10,000 orders a query.

Acknowledgement (`acknowledge_orders`): Walmart wants each new order acknowledged within 4
hours. After each listing, the orders still waiting for it (`GET /v3/orders/released`, lines
in `Created`) are acknowledged one by one (`POST /v3/orders/{purchaseOrderId}/acknowledge`). It
is idempotent (an acknowledged order is no longer released), and a failure is logged and counted
(`invsync_orders_acknowledged_total{outcome="failed"}`; a 429 ends the round) and tried again
by the next poll, which
comes every `orders_every_seconds` (5 minutes by default): well within the 4 hours. A failure
never stops the listing, whose orders move stock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeGuard
from urllib.parse import quote

from infrastructure.channels.base import PolledOrder
from infrastructure.channels.gateway import ChannelError, Throttled
from infrastructure.channels.walmart.client import describe
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.walmart.gateway import WalmartGateway
from infrastructure.channels.walmart.translator import LISTED_ORDER
from infrastructure.metrics import ORDERS_ACKNOWLEDGED

log = logging.getLogger(__name__)

ORDERS = "/v3/orders"
RELEASED = "/v3/orders/released"
PAGE = 200  # the most orders one page holds


def list_orders(
    channel: WalmartConfig, gateway: WalmartGateway, since: datetime, until: datetime
) -> Iterator[PolledOrder]:
    """The orders last modified from `since` to `until`, in the order Walmart lists them; then,
    when the channel acknowledges orders, the released ones acknowledged.

    Raises:
        ChannelError: Walmart refused the listing or listed an order without its ids
            (`Throttled`, `ChannelUnavailable`, `ChannelAuthFailed` as the gateway's reads).
    """
    window = {
        "lastModifiedStartDate": _iso(since),
        "lastModifiedEndDate": _iso(until),
        "limit": str(PAGE),
    }
    for order in _pages(gateway, ORDERS, window):
        yield polled(order)
    if channel.acknowledge_orders:
        acknowledge_released(channel, gateway)


def polled(order: dict[str, Any]) -> PolledOrder:
    """A listed order as the delivery the translator reads."""
    order_id = order.get("purchaseOrderId")
    if not isinstance(order_id, str) or not order_id:
        raise ChannelError(f"Walmart listed an order without purchaseOrderId: {order!r:.200}")
    body = json.dumps(order, separators=(",", ":")).encode()
    return PolledOrder(order_id, _modified(order), LISTED_ORDER, body)


def acknowledge_released(channel: WalmartConfig, gateway: WalmartGateway) -> int:
    """Acknowledge every order Walmart has released and not seen acknowledged; the number done.
    A failure is logged and counted, and left to the next poll; a 429 ends the round."""
    done = 0
    try:
        for order in _pages(gateway, RELEASED, {"limit": str(PAGE)}):
            done += _acknowledge(channel, gateway, order)
    except Throttled as error:
        ORDERS_ACKNOWLEDGED.labels(channel.id, "failed").inc()
        log.warning("%s: acknowledging orders waits for the next poll: %s", channel.id, error)
    except ChannelError as error:
        ORDERS_ACKNOWLEDGED.labels(channel.id, "failed").inc()
        log.warning("%s: released orders not listed, so not acknowledged: %s", channel.id, error)
    return done


def _acknowledge(channel: WalmartConfig, gateway: WalmartGateway, order: dict[str, Any]) -> int:
    order_id = order.get("purchaseOrderId")
    if not isinstance(order_id, str) or not order_id:
        return 0
    try:
        response = gateway.post(f"{ORDERS}/{quote(order_id, safe='')}/acknowledge")
        done, why = response.status_code < 400, describe(response)
    except Throttled:
        raise
    except ChannelError as error:  # unreachable or refused: the next poll tries again
        done, why = False, str(error)
    ORDERS_ACKNOWLEDGED.labels(channel.id, "acknowledged" if done else "failed").inc()
    if not done:
        log.warning(
            "%s: order %s not acknowledged, tried again next poll: %s", channel.id, order_id, why
        )
    return int(done)


def _pages(gateway: WalmartGateway, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    answer = gateway.get(path, params)
    while answer is not None:
        listing = _object(answer.get("list"))
        orders = _object(listing.get("elements")).get("order")
        if not isinstance(orders, list):
            raise ChannelError(f"Walmart answered {path} without its orders: {answer!r:.200}")
        yield from (o for o in orders if isinstance(o, dict))
        cursor = _object(listing.get("meta")).get("nextCursor")
        if not isinstance(cursor, str) or not cursor or not orders:
            return
        # The cursor is the next page's query string, to be sent as Walmart wrote it.
        answer = gateway.get(path + (cursor if cursor.startswith("?") else f"?{cursor}"))


def _modified(order: dict[str, Any]) -> datetime:
    lines = _object(order.get("orderLines")).get("orderLine")
    stamps = [_object(line).get("statusDate") for line in lines or []]
    millis = [s for s in [*stamps, order.get("orderDate")] if _is_int(s)]
    return datetime.fromtimestamp(max(millis, default=0) / 1000, UTC)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
