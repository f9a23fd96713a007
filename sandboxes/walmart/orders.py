"""The Walmart sandbox's purchase orders: shoppers buy, Walmart auto-cancels, the customer asks
to cancel, the seller ships and acknowledges; each change is an `ORDER_UPDATES` event posted to
the subscription (or lost, `notify=False`), and the Orders API lists them (CHANNELS.md §5).

`GET /v3/orders` filters by `lastModifiedStartDate`/`lastModifiedEndDate` (a line's status
change modifies its order) and pages by `limit` (at most 200) and `nextCursor`, the next page's
query string; `GET /v3/orders/released` lists the orders with lines still `Created`;
`POST /v3/orders/{purchaseOrderId}/acknowledge` moves them to `Acknowledged`. Simplified: one
ship node, each order one line per SKU bought, events carry the lines they concern.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandboxes.webhooks import Message

if TYPE_CHECKING:
    from sandboxes.walmart.seller import WalmartSandbox

ORDERS = "/v3/orders"
MOST_A_PAGE = 200


class OutOfStock(Exception):
    """Raised when a shopper asks for more than the seller shows."""


@dataclass
class Line:
    number: str
    sku: str
    quantity: int
    statuses: dict[str, int]  # status -> units in it
    status_date: int  # epoch milliseconds

    def move(self, to: str, units: int | None = None, *, not_from: tuple[str, ...] = ()) -> int:
        """Move the units not in `not_from` (at most `units`) to status `to`; how many moved."""
        moved = 0
        for status in list(self.statuses):
            if status in (to, *not_from):
                continue
            take = (
                self.statuses[status]
                if units is None
                else min(self.statuses[status], units - moved)
            )
            self.statuses[status] -= take
            moved += take
            if not self.statuses[status]:
                del self.statuses[status]
        if moved:
            self.statuses[to] = self.statuses.get(to, 0) + moved
            self.status_date = _millis()
        return moved


@dataclass
class Order:
    purchase_order_id: str
    customer_order_id: str
    order_date: int
    lines: list[Line] = field(default_factory=list)

    @property
    def modified(self) -> int:
        return max((line.status_date for line in self.lines), default=self.order_date)

    def listed(self) -> dict[str, Any]:
        """As `GET /v3/orders` shows it."""
        return {
            "purchaseOrderId": self.purchase_order_id,
            "customerOrderId": self.customer_order_id,
            "orderDate": self.order_date,
            "orderLines": {"orderLine": [_listed_line(line) for line in self.lines]},
        }


class OrdersDesk:
    """The seller's purchase orders, under the sandbox's lock."""

    def __init__(self, seller: WalmartSandbox) -> None:
        self._seller = seller
        self._orders: dict[str, Order] = {}
        self._numbers = itertools.count(1)
        self.acknowledgements = 0  # acknowledge calls answered 200

    def order(self, purchase_order_id: str) -> Order:
        """Raises `KeyError` for no such order."""
        return self._orders[purchase_order_id]

    def buy(self, sku: str, quantity: int = 1, *, notify: bool = True, duplicates: int = 0) -> str:
        """A shopper's order of `quantity` of `sku`: the shown quantity falls; PO_CREATED.

        Raises:
            OutOfStock: the seller shows fewer.
        """
        with self._seller.lock:
            shown = self._seller.stock(sku)
            if shown is None or shown < quantity:
                raise OutOfStock(f"{sku}: {shown} shown, {quantity} asked")
            self._seller.set_stock(sku, shown - quantity)
            number = next(self._numbers)
            now = _millis()
            order = Order(f"{1_800_000_000_000 + number}", f"{500_000 + number}", now)
            order.lines.append(Line("1", sku, quantity, {"Created": quantity}, now))
            self._orders[order.purchase_order_id] = order
        self._event("PO_CREATED", order, order.lines, notify, duplicates)
        return order.purchase_order_id

    def cancel(
        self,
        purchase_order_id: str,
        sub_event: str = "PO_LINE_AUTOCANCELLED",
        *,
        notify: bool = True,
    ) -> None:
        """Walmart cancels every unshipped unit (its auto-cancel, or `FRAUD_CANCEL`); they show
        again. Raises `KeyError` for no such order."""
        with self._seller.lock:
            order = self._orders[purchase_order_id]
            for line in order.lines:
                back = line.move("Cancelled", not_from=("Shipped",))
                self._seller.set_stock(line.sku, (self._seller.stock(line.sku) or 0) + back)
        self._event(sub_event, order, order.lines, notify)

    def ask_to_cancel(self, purchase_order_id: str, *, notify: bool = True) -> None:
        """The customer asks to cancel: INTENT_TO_CANCEL, nothing changes yet."""
        with self._seller.lock:
            order = self._orders[purchase_order_id]
        self._event("INTENT_TO_CANCEL", order, order.lines, notify)

    def notify(
        self, purchase_order_id: str, sub_event: str = "PO_CREATED", *, duplicates: int = 0
    ) -> None:
        """Send an event about the order as it is now (one lost before, sent late)."""
        with self._seller.lock:
            order = self._orders[purchase_order_id]
        self._event(sub_event, order, order.lines, True, duplicates)

    def ship(self, purchase_order_id: str) -> None:
        """The seller ships every open unit (no event: Walmart sends none for it)."""
        with self._seller.lock:
            for line in self._orders[purchase_order_id].lines:
                line.move("Shipped", not_from=("Cancelled",))

    # Routes --------------------------------------------------------------------------------

    async def get_orders(self, request: Request) -> Response:
        return self._listing(request, lambda order: True)

    async def get_released(self, request: Request) -> Response:
        return self._listing(request, lambda o: any("Created" in line.statuses for line in o.lines))

    async def acknowledge(self, request: Request) -> Response:
        with self._seller.lock:
            order = self._orders.get(request.path_params["purchase_order_id"])
            if order is None:
                return walmart_error(404, "CONTENT_NOT_FOUND.GMP_ORDER_API", "no such order")
            for line in order.lines:
                line.move("Acknowledged", not_from=("Shipped", "Cancelled", "Acknowledged"))
            self.acknowledgements += 1
            return JSONResponse({"order": order.listed()})

    def _listing(self, request: Request, wanted: Any) -> Response:
        query = request.query_params
        try:
            limit = int(query.get("limit", "100"))
            start = _filter_time(query.get("lastModifiedStartDate"), 0)
            end = _filter_time(query.get("lastModifiedEndDate"), 2**62)
            offset = int(query.get("cursorMarker", "0"))
        except ValueError as error:
            return walmart_error(400, "INVALID_REQUEST_PARAM.GMP_ORDER_API", str(error))
        if not 1 <= limit <= MOST_A_PAGE:
            return walmart_error(400, "INVALID_REQUEST_PARAM.GMP_ORDER_API", "limit is 1 to 200")
        with self._seller.lock:
            found = sorted(
                (o for o in self._orders.values() if wanted(o) and start <= o.modified <= end),
                key=lambda o: (o.modified, o.purchase_order_id),
            )
            page = [o.listed() for o in found[offset : offset + limit]]
        meta: dict[str, Any] = {"totalCount": len(found), "limit": limit}
        if offset + limit < len(found):
            after = {k: v for k, v in query.items() if k != "cursorMarker"}
            meta["nextCursor"] = "?" + urlencode({**after, "cursorMarker": offset + limit})
        return JSONResponse({"list": {"meta": meta, "elements": {"order": page}}})

    def _event(
        self, sub_event: str, order: Order, lines: list[Line], notify: bool, duplicates: int = 0
    ) -> None:
        body = {
            "source": {
                "eventType": "ORDER_UPDATES",
                "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "eventId": str(uuid.uuid4()),
            },
            "payload": {
                "subEventType": sub_event,
                "order": {
                    "purchaseOrderId": order.purchase_order_id,
                    "customerOrderId": order.customer_order_id,
                    "orderDate": datetime.fromtimestamp(order.order_date / 1000, UTC).isoformat(),
                    "orderLines": [_event_line(line) for line in lines],
                },
            },
        }
        message = Message(sub_event, json.dumps(body).encode())
        if notify:
            self._seller.webhooks.send(message, duplicates=duplicates)


def walmart_error(status: int, code: str, description: str) -> JSONResponse:
    """Walmart's error shape."""
    return JSONResponse(
        {"errors": [{"code": code, "description": description, "severity": "ERROR"}]},
        status_code=status,
    )


def _listed_line(line: Line) -> dict[str, Any]:
    return {
        "lineNumber": line.number,
        "item": {"productName": line.sku.title(), "sku": line.sku},
        "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": str(line.quantity)},
        "statusDate": line.status_date,
        "orderLineStatuses": {
            "orderLineStatus": [
                {
                    "status": status,
                    "statusQuantity": {"unitOfMeasurement": "EACH", "amount": str(n)},
                }
                for status, n in line.statuses.items()
            ]
        },
    }


def _event_line(line: Line) -> dict[str, Any]:
    status = max(line.statuses, key=line.statuses.__getitem__)
    return {
        "lineNumber": line.number,
        "sku": line.sku,
        "productName": line.sku.title(),
        "quantity": {"unitOfMeasure": "EACH", "measurementValue": str(line.quantity)},
        "status": status.upper(),
        "statusDate": datetime.fromtimestamp(line.status_date / 1000, UTC).isoformat(),
    }


def _filter_time(value: str | None, default: int) -> int:
    """Walmart's filters are ISO 8601 times; the orders' epoch milliseconds."""
    return default if value is None else int(datetime.fromisoformat(value).timestamp() * 1000)


def _millis() -> int:
    return int(time.time() * 1000)
