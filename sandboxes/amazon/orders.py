"""The Amazon sandbox's merchant-fulfilled orders: shoppers buying, cancelling and shipping, the
ORDER_CHANGE notification each change publishes (CHANNELS.md §3.1), and the Orders API's
`getOrders` and `getOrderItems` (ordersV0) over them.

`getOrders` as the Orders model describes it: `MarketplaceIds` always, `CreatedAfter` or
`LastUpdatedAfter` (a `...Before` at least two minutes before now), filtered by
`FulfillmentChannels` and `OrderStatuses`, pages of `MaxResultsPerPage` (1 to 100, default 100)
followed by `NextToken` (which replaces the other criteria). Simplified: orders come oldest change
first, each holds one item (so `getOrderItems` answers one page), and a `NextToken` lives as long
as the sandbox.

A change made with `notify=False` publishes nothing: the notification lost on the way, which only
the Orders API then shows.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandboxes.amazon.feeds import sp_error
from sandboxes.amazon.listings import amazon_time

if TYPE_CHECKING:
    from sandboxes.amazon.seller import AmazonSandbox

ORDERS = "/orders/v0/orders"
PAGE_SIZE = 100  # MaxResultsPerPage's default and most
SETTLED = timedelta(minutes=2)  # how long before now a `...Before` date must be


class OutOfStock(ValueError):
    """Raised when a shopper asks for more than the seller's merchant-fulfilled stock."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Order:
    id: str
    sku: str
    quantity: int
    item_id: str
    status: str = "Unshipped"
    purchased: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)

    def change(self, status: str) -> None:
        self.status, self.updated = status, max(_now(), self.updated)

    def shipped(self) -> int:
        return self.quantity if self.status == "Shipped" else 0

    def document(self, marketplace_id: str) -> dict[str, Any]:
        """The order as `getOrders` shows it (ordersV0 `Order`)."""
        return {
            "AmazonOrderId": self.id,
            "PurchaseDate": amazon_time(self.purchased),
            "LastUpdateDate": amazon_time(self.updated),
            "OrderStatus": self.status,
            "FulfillmentChannel": "MFN",
            "SalesChannel": "Amazon.com",
            "NumberOfItemsShipped": self.shipped(),
            "NumberOfItemsUnshipped": self.quantity - self.shipped(),
            "MarketplaceId": marketplace_id,
            "OrderType": "StandardOrder",
            "IsBusinessOrder": False,
            "IsPrime": False,
        }

    def item(self) -> dict[str, Any]:
        """Its one item as `getOrderItems` shows it (ordersV0 `OrderItem`)."""
        return {
            "ASIN": "B0" + hashlib.sha1(self.sku.encode()).hexdigest()[:8].upper(),
            "SellerSKU": self.sku,
            "OrderItemId": self.item_id,
            "QuantityOrdered": self.quantity,
            "QuantityShipped": self.shipped(),
        }


class Topic(Protocol):
    @property
    def topic_arn(self) -> str: ...


class Seller(Protocol):
    """What a notification names of the seller (the sandbox's `AmazonSandbox`)."""

    @property
    def seller_id(self) -> str: ...

    @property
    def marketplace_id(self) -> str: ...

    @property
    def credentials(self) -> tuple[str, str, str]: ...

    @property
    def topic(self) -> Topic: ...


def order_change(order: Order, seller: Seller) -> dict[str, Any]:
    """The ORDER_CHANGE notification of `order` as it is now (CHANNELS.md §3.1)."""
    now = amazon_time(_now())
    item = {
        "OrderItemId": order.item_id,
        "SellerSKU": order.sku,
        "SupplySourceId": None,
        "Quantity": order.quantity,
        "QuantityShipped": order.shipped(),
        "IsBuyerRequestedCancel": False,
    }
    change = {
        "NotificationLevel": "OrderLevel",
        "SellerId": seller.seller_id,
        "AmazonOrderId": order.id,
        "OrderChangeType": "OrderStatusChange",
        "OrderChangeTrigger": {
            "TimeOfOrderChange": amazon_time(order.updated),
            "ChangeReason": "OrderStatusChange",
        },
        "Summary": {
            "MarketplaceId": seller.marketplace_id,
            "OrderStatus": order.status,
            "FulfillmentType": "MFN",
            "OrderItems": [item],
        },
    }
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": now,
        "Payload": {"OrderChangeNotification": change},
        "NotificationMetadata": {
            "ApplicationId": seller.credentials[0],
            "SubscriptionId": str(uuid.uuid5(uuid.NAMESPACE_URL, seller.topic.topic_arn)),
            "PublishTime": now,
            "NotificationId": str(uuid.uuid4()),
        },
    }


class Refused(ValueError):
    """Raised when a `getOrders` request breaks a rule the Orders model states in words."""


class OrdersDesk:
    """One `AmazonSandbox`'s orders: its shoppers, and the Orders API routes over them."""

    def __init__(self, seller: AmazonSandbox, notify: Callable[[Order, int], None]) -> None:
        self.seller, self._notify = seller, notify
        self._orders: dict[str, Order] = {}
        self._numbers = itertools.count(1)
        self._pages: dict[str, list[str]] = {}  # NextToken -> the ids of the orders left

    # Shoppers -----------------------------------------------------------------------------

    def buy(self, sku: str, quantity: int = 1, *, duplicates: int = 0, notify: bool = True) -> str:
        """A merchant-fulfilled order: stock goes down, ORDER_CHANGE (Unshipped) is published
        (`duplicates` more times too; never when not `notify`); the AmazonOrderId.

        Raises:
            OutOfStock: the seller lists no such SKU or holds fewer than `quantity`.
        """
        with self.seller.lock:
            held = self.seller.stock(sku)
            if held is None or held < quantity:
                raise OutOfStock(f"{sku!r}: {held} available, {quantity} wanted")
            self.seller.set_stock(sku, held - quantity)
            number = next(self._numbers)
            order_id = f"903-{number:07d}-{secrets.randbelow(10**7):07d}"
            order = self._orders[order_id] = Order(order_id, sku, quantity, f"{number:014d}")
        if notify:
            self._notify(order, duplicates)
        return order.id

    def cancel(self, order_id: str, *, notify: bool = True) -> None:
        """The order is cancelled: its units are back in stock, ORDER_CHANGE (Canceled)."""
        with self.seller.lock:
            order = self._orders[order_id]
            if order.status == "Canceled":
                return
            order.change("Canceled")
            self.seller.set_stock(order.sku, (self.seller.stock(order.sku) or 0) + order.quantity)
        if notify:
            self._notify(order, 0)

    def ship(self, order_id: str, *, notify: bool = True) -> None:
        with self.seller.lock:
            order = self._orders[order_id]
            order.change("Shipped")
        if notify:
            self._notify(order, 0)

    # Orders API ---------------------------------------------------------------------------

    async def get_orders(self, request: Request) -> Response:
        query = request.query_params
        marketplace = self.seller.marketplace_id
        if marketplace not in query.get("MarketplaceIds", "").split(","):
            return sp_error(400, "InvalidInput", f"MarketplaceIds must name {marketplace}")
        try:
            ids = self._next(query["NextToken"]) if "NextToken" in query else self._found(query)
            size = _page_size(query.get("MaxResultsPerPage"))
        except Refused as error:
            return sp_error(400, "InvalidInput", str(error))
        payload: dict[str, Any] = {"Orders": self._documents(ids[:size])}
        if len(ids) > size:
            token = secrets.token_urlsafe(24)
            self._pages[token] = ids[size:]
            payload["NextToken"] = token
        return JSONResponse({"payload": payload})

    async def get_order_items(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        with self.seller.lock:
            order = self._orders.get(order_id)
            item = None if order is None else order.item()
        if item is None:
            return sp_error(404, "NotFound", f"Order {order_id} not found")
        return JSONResponse({"payload": {"AmazonOrderId": order_id, "OrderItems": [item]}})

    def _found(self, query: Any) -> list[str]:
        """The ids of the orders the criteria select, oldest change first.

        Raises:
            Refused: neither `CreatedAfter` nor `LastUpdatedAfter`, a date that is not ISO 8601,
                or a `...Before` earlier than its `...After` or within two minutes of now.
        """
        created = _window(query, "CreatedAfter", "CreatedBefore")
        updated = _window(query, "LastUpdatedAfter", "LastUpdatedBefore")
        if created is None and updated is None:
            raise Refused("Either CreatedAfter or LastUpdatedAfter must be given")
        channels = _listed(query, "FulfillmentChannels")
        statuses = _listed(query, "OrderStatuses")
        with self.seller.lock:
            orders = sorted(self._orders.values(), key=lambda order: order.updated)
            return [
                order.id
                for order in orders
                if _within(order.purchased, created)
                and _within(order.updated, updated)
                and (channels is None or "MFN" in channels)
                and (statuses is None or order.status in statuses)
            ]

    def _next(self, token: str) -> list[str]:
        ids = self._pages.pop(token, None)
        if ids is None:
            raise Refused("Invalid NextToken")
        return ids

    def _documents(self, ids: list[str]) -> list[dict[str, Any]]:
        with self.seller.lock:
            return [self._orders[i].document(self.seller.marketplace_id) for i in ids]


Window = tuple[datetime, datetime | None]


def _window(query: Any, after: str, before: str) -> Window | None:
    if after not in query:
        if before in query:
            raise Refused(f"{before} needs {after}")
        return None
    start = _date(query[after], after)
    end = _date(query[before], before) if before in query else None
    if end is not None and (end < start or end > _now() - SETTLED):
        raise Refused(f"{before} must be after {after} and at least 2 minutes before now")
    return start, end


def _within(moment: datetime, window: Window | None) -> bool:
    if window is None:
        return True
    start, end = window
    return start <= moment and (end is None or moment <= end)


def _date(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Refused(f"{name} {text!r} is not an ISO 8601 date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _listed(query: Any, name: str) -> set[str] | None:
    return set(query[name].split(",")) if name in query else None


def _page_size(text: str | None) -> int:
    if text is None:
        return PAGE_SIZE
    if not text.isdigit() or not 1 <= int(text) <= PAGE_SIZE:
        raise Refused(f"MaxResultsPerPage must be 1 to {PAGE_SIZE}")
    return int(text)
