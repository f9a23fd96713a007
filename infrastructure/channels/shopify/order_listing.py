"""Shopify's orders updated since a moment, as their `orders/updated` webhooks carry them.

GraphQL `orders(query: "updated_at:>='…'", sortKey: UPDATED_AT)`, paged by cursor
(shopify.dev/api/usage/pagination-graphql), each order turned into the fields of the REST order
the webhook carries and the translator reads: the ids as numbers (`legacyResourceId`, the number
ending a gid), line items with `current_quantity`, fulfilments and refunds with their lines, the
enums in the REST's lower case. An order of more lines (or fulfilments, refunds) than a page
here carries is shown with those it carries: what it shows is true, and its webhooks say the
rest. A page costs some 800 points of the shop's bucket, waited for when it is short (`bucket`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from infrastructure.channels.base import PolledOrder
from infrastructure.channels.gateway import ChannelError
from infrastructure.channels.shopify.bucket import paid
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.shopify.gateway import ShopifyGateway

TOPIC = "orders/updated"
ORDERS_PAGE = 5  # orders a call: the most whose nested lines stay within a query's 1,000 points

ORDERS = """
query OrdersUpdated($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes {
      id
      createdAt
      updatedAt
      cancelledAt
      cancelReason
      retailLocation { id }
      lineItems(first: 25) { nodes { id sku quantity currentQuantity } }
      fulfillments(first: 5) {
        id
        status
        location { id }
        fulfillmentLineItems(first: 25) { nodes { quantity lineItem { id sku } } }
      }
      refunds(first: 5) {
        id
        refundLineItems(first: 25) {
          nodes { id quantity restockType location { id } lineItem { id sku quantity } }
        }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

Json = dict[str, Any]


def list_orders(
    channel: ShopifyConfig, gateway: ShopifyGateway, since: datetime, until: datetime
) -> Iterator[PolledOrder]:
    """The orders updated at or after `since` (`until` too: the next poll stores them once),
    oldest update first.

    Raises what `ShopifyGateway.graphql` raises (`Throttled`, `ChannelUnavailable`,
    `ChannelAuthFailed`, `ChannelError` for a refused query)."""
    after: str | None = None
    search = f"updated_at:>='{since.astimezone(UTC).isoformat(timespec='seconds')}'"
    while True:
        variables = {"first": ORDERS_PAGE, "after": after, "query": search}
        orders = (paid(gateway, ORDERS, variables).get("data") or {}).get("orders") or {}
        yield from (_polled(node) for node in orders.get("nodes") or [])
        info = orders.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return
        after = info.get("endCursor")
        if not after:
            raise ChannelError("Shopify said more orders follow but gave no cursor to them")


def _polled(node: Json) -> PolledOrder:
    order = rest_order(node)
    body = json.dumps(order, separators=(",", ":")).encode()
    modified = datetime.fromisoformat(node["updatedAt"])
    headers = {"x-shopify-topic": TOPIC}
    return PolledOrder(str(order["id"]), modified, TOPIC, body, headers)


def rest_order(node: Json) -> Json:
    """A GraphQL `Order` as the REST order of its webhook shows it (the fields the translator
    reads)."""
    order_id = number(node["id"])
    return {
        "id": order_id,
        "admin_graphql_api_id": node["id"],
        "created_at": node.get("createdAt"),
        "updated_at": node["updatedAt"],
        "cancelled_at": node.get("cancelledAt"),
        "cancel_reason": _lower(node.get("cancelReason")),
        "location_id": _where(node.get("retailLocation")),
        "line_items": [_line(line) for line in _nodes(node.get("lineItems"))],
        "fulfillments": [_fulfillment(order_id, f) for f in node.get("fulfillments") or []],
        "refunds": [_refund(order_id, r) for r in node.get("refunds") or []],
    }


def _line(line: Json) -> Json:
    return {
        "id": number(line["id"]),
        "sku": line.get("sku"),
        "quantity": line["quantity"],
        "current_quantity": line.get("currentQuantity"),
    }


def _fulfillment(order_id: int, fulfillment: Json) -> Json:
    return {
        "id": number(fulfillment["id"]),
        "order_id": order_id,
        "status": _lower(fulfillment.get("status")),
        "location_id": _where(fulfillment.get("location")),
        "line_items": [_shipped(line) for line in _nodes(fulfillment.get("fulfillmentLineItems"))],
    }


def _shipped(line: Json) -> Json:
    ordered = line["lineItem"]
    return {"id": number(ordered["id"]), "sku": ordered.get("sku"), "quantity": line["quantity"]}


def _refund(order_id: int, refund: Json) -> Json:
    return {
        "id": number(refund["id"]),
        "order_id": order_id,
        "refund_line_items": [_refunded(r) for r in _nodes(refund.get("refundLineItems"))],
    }


def _refunded(item: Json) -> Json:
    line = item["lineItem"]
    return {
        "id": number(item.get("id") or line["id"]),
        "line_item_id": number(line["id"]),
        "quantity": item["quantity"],
        "restock_type": _lower(item.get("restockType")),
        "location_id": _where(item.get("location")),
        "line_item": {
            "id": number(line["id"]),
            "sku": line.get("sku"),
            "quantity": line["quantity"],
        },
    }


def number(gid: str) -> int:
    """The REST id of a global id (`gid://shopify/Order/123` → 123).

    Raises:
        ChannelError: it ends in no number.
    """
    tail = str(gid).rsplit("/", 1)[-1].split("?", 1)[0]
    if not tail.isdigit():
        raise ChannelError(f"Shopify listed {gid!r}, which names no REST id")
    return int(tail)


def _where(location: Json | None) -> int | None:
    return number(location["id"]) if location else None


def _nodes(connection: Json | None) -> list[Json]:
    return list((connection or {}).get("nodes") or [])


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None
