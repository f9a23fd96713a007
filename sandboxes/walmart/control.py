"""The Walmart sandbox's control routes (`/_sandbox/...`): what a seller, a shopper or a test
does from outside the process (the demo, the benchmarks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.walmart.orders import OutOfStock

if TYPE_CHECKING:
    from sandboxes.walmart.seller import WalmartSandbox


class ControlApi:
    def __init__(self, seller: WalmartSandbox) -> None:
        self.seller = seller

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/stock", self._stock, methods=["GET"]),
            Route("/_sandbox/stock/{sku:path}", self._set_stock, methods=["PUT"]),
            Route("/_sandbox/buy", self._buy, methods=["POST"]),
            Route("/_sandbox/orders/{purchase_order_id}/{action}", self._order, methods=["POST"]),
            Route("/_sandbox/webhooks/lose", self._lose, methods=["POST"]),
            Route("/_sandbox/faults", self._faults, methods=["GET", "PUT"]),
            Route("/_sandbox/calls", self._calls, methods=["GET"]),
        ]

    async def _stock(self, request: Request) -> Response:
        return JSONResponse(self.seller.listed())

    async def _set_stock(self, request: Request) -> Response:
        """A hand edit in Seller Center (or a new item): no event."""
        sku, body = request.path_params["sku"], await request.json()
        self.seller.set_stock(sku, int(body["quantity"]), str(body.get("shipNode", "")))
        return JSONResponse({"sku": sku, "quantity": int(body["quantity"])})

    async def _buy(self, request: Request) -> Response:
        body = await request.json()
        try:
            order_id = self.seller.orders.buy(
                str(body["sku"]), int(body.get("quantity", 1)), notify=body.get("notify", True)
            )
        except OutOfStock as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        return JSONResponse({"purchaseOrderId": order_id}, status_code=201)

    async def _order(self, request: Request) -> Response:
        """`cancel` (Walmart's auto-cancel), `fraud`, `intent` (the customer asks) or `ship`;
        body `{"notify": false}` loses the event."""
        order_id, action = request.path_params["purchase_order_id"], request.path_params["action"]
        notify = (await request.json() if await request.body() else {}).get("notify", True)
        orders = self.seller.orders
        actions = {
            "cancel": lambda: orders.cancel(order_id, notify=notify),
            "fraud": lambda: orders.cancel(order_id, "FRAUD_CANCEL", notify=notify),
            "intent": lambda: orders.ask_to_cancel(order_id, notify=notify),
            "ship": lambda: orders.ship(order_id),
        }
        if action not in actions:
            return JSONResponse({"error": f"no action {action!r}"}, status_code=404)
        try:
            actions[action]()
        except KeyError:
            return JSONResponse({"error": "no such order"}, status_code=404)
        return JSONResponse({"purchaseOrderId": order_id, "done": action})

    async def _lose(self, request: Request) -> Response:
        self.seller.webhooks.lose(int((await request.json()).get("count", 1)))
        return Response(status_code=204)

    async def _faults(self, request: Request) -> Response:
        faults = self.seller.faults
        if request.method == "PUT":
            for name, value in (await request.json()).items():
                setattr(faults, name, type(getattr(faults, name))(value))
        return JSONResponse(
            {"outage": faults.outage, "error_rate": faults.error_rate, "delay": faults.delay}
        )

    async def _calls(self, request: Request) -> Response:
        counts: dict[str, int] = {}
        for _, operation, _status in list(self.seller.log.calls):
            counts[operation] = counts.get(operation, 0) + 1
        return JSONResponse(counts)
