"""A Shopify shop's orders as the sandbox keeps them (one line each: what a shopper's `buy`
makes), listed by the GraphQL `orders` connection as Shopify documents it: a search `query` of
`updated_at:` comparisons joined by AND, `sortKey` ID, CREATED_AT or UPDATED_AT, pages by opaque
cursor (shopify.dev/api/usage/pagination-graphql, /api/usage/search-syntax). Each change of an
order moves its `updatedAt` on by a second at least (Shopify's resolution is the second), so
compressed tests never see two states of an order at one time."""

from __future__ import annotations

import base64
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import GraphQLError

from sandboxes.shopify.stock import Item, gid

Json = dict[str, Any]

_COMPARISON = re.compile(r"updated_at:(>=|<=|>|<)'?([^'\s]+)'?", re.IGNORECASE)
_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Order:
    """One order of one line; `cancelled_at` once cancelled (its units restocked)."""

    id: int
    line_id: int
    item: Item
    quantity: int
    created: datetime
    updated: datetime
    cancelled: datetime | None = None
    cancel_reason: str | None = None

    def touch(self) -> None:
        self.updated = max(
            datetime.now(UTC).replace(microsecond=0), self.updated + timedelta(seconds=1)
        )

    def node(self) -> Json:
        """The order as GraphQL shows it."""
        line = {
            "id": gid("LineItem", self.line_id),
            "sku": self.item.sku,
            "quantity": self.quantity,
            "currentQuantity": 0 if self.cancelled else self.quantity,
        }
        return {
            "id": gid("Order", self.id),
            "createdAt": _stamp(self.created),
            "updatedAt": _stamp(self.updated),
            "cancelledAt": _stamp(self.cancelled) if self.cancelled else None,
            "cancelReason": self.cancel_reason.upper() if self.cancel_reason else None,
            "retailLocation": None,
            "lineItems": {"nodes": [line], "pageInfo": {"hasNextPage": False}},
            "fulfillments": [],
            "refunds": [],
        }

    def rest(self) -> Json:
        """The order as its webhooks carry it (a trimmed REST Order, CHANNELS.md §1.1)."""
        return {
            "id": self.id,
            "admin_graphql_api_id": gid("Order", self.id),
            "name": f"#{self.id % 100_000}",
            "created_at": _stamp(self.created),
            "updated_at": _stamp(self.updated),
            "cancelled_at": _stamp(self.cancelled) if self.cancelled else None,
            "cancel_reason": self.cancel_reason,
            "financial_status": "voided" if self.cancelled else "paid",
            "fulfillment_status": None,
            "location_id": None,
            "line_items": [
                {
                    "id": self.line_id,
                    "variant_id": self.item.variant_id,
                    "product_id": self.item.product_id,
                    "sku": self.item.sku,
                    "quantity": self.quantity,
                    "current_quantity": 0 if self.cancelled else self.quantity,
                    "fulfillable_quantity": 0 if self.cancelled else self.quantity,
                    "fulfillment_service": "manual",
                }
            ],
            "refunds": [],
        }


_SORT_KEYS: dict[str, Callable[[Order], tuple[Any, ...]]] = {
    "ID": lambda order: (order.id,),
    "CREATED_AT": lambda order: (_stamp(order.created), order.id),
    "UPDATED_AT": lambda order: (_stamp(order.updated), order.id),
}


def listed(
    orders: list[Order],
    *,
    first: int | None,
    after: str | None,
    query: str | None,
    sortKey: str = "ID",  # noqa: N803 (GraphQL's argument name)
    reverse: bool = False,
    max_page: int = 250,
) -> Json:
    """One page of the `orders` connection."""
    if first is None or not 0 < first <= max_page:
        raise GraphQLError(f"first must be between 1 and {max_page}")
    key = _SORT_KEYS[sortKey]
    found = sorted((o for o in orders if _matches(o, query)), key=key, reverse=reverse)
    if after:
        last = tuple(json.loads(base64.b64decode(after)))
        newer = operator.lt if reverse else operator.gt
        found = [o for o in found if newer(list(key(o)), list(last))]
    page = found[:first]
    end = base64.b64encode(json.dumps(key(page[-1])).encode()).decode() if page else None
    return {
        "nodes": [o.node() for o in page],
        "pageInfo": {"hasNextPage": len(found) > first, "endCursor": end},
    }


def _matches(order: Order, query: str | None) -> bool:
    for comparison, value in _COMPARISON.findall(query or ""):
        moment = datetime.fromisoformat(value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if not _OPERATORS[comparison](order.updated, moment):
            return False
    return True
