"""The Shopify sandbox's control routes (`/_sandbox/...`): what a merchant, a shopper or a test
does to the shop from outside the process (the demo, the benchmarks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.shopify.stock import OutOfStock

if TYPE_CHECKING:
    from sandboxes.shopify.store import ShopifySandbox


class ShopControl:
    """The shop's control routes."""

    def __init__(self, shop: ShopifySandbox) -> None:
        self.shop = shop

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/stock", self._set_stock_route, methods=["POST"]),
            Route("/_sandbox/stock/{sku}", self._stock_route, methods=["GET"]),
            Route("/_sandbox/buy", self._buy_route, methods=["POST"]),
            Route("/_sandbox/orders/{id:int}/cancel", self._cancel_route, methods=["POST"]),
            Route("/_sandbox/webhooks/lose", self._lose_route, methods=["POST"]),
            Route("/_sandbox/faults", self._faults_route, methods=["POST"]),
            Route("/_sandbox/calls", self._calls_route, methods=["GET"]),
        ]

    async def _set_stock_route(self, request: Request) -> Response:
        body = await request.json()
        item_id = self.shop.set_stock(str(body["sku"]), int(body["available"]))
        return JSONResponse({"sku": body["sku"], "inventory_item_id": item_id})

    async def _stock_route(self, request: Request) -> Response:
        sku = request.path_params["sku"]
        return JSONResponse({"sku": sku, "available": self.shop.stock(sku)})

    async def _buy_route(self, request: Request) -> Response:
        body = await request.json()
        try:
            order_id = self.shop.buy(str(body["sku"]), int(body.get("quantity", 1)))
        except OutOfStock as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        return JSONResponse({"order_id": order_id})

    async def _cancel_route(self, request: Request) -> Response:
        try:
            self.shop.cancel(request.path_params["id"])
        except KeyError:
            return JSONResponse({"error": "unknown order"}, status_code=404)
        return Response(status_code=204)

    async def _lose_route(self, request: Request) -> Response:
        """Body `{"count": 1}`: the next messages are lost on the way."""
        self.shop.webhooks.lose(int((await request.json()).get("count", 1)))
        return Response(status_code=204)

    async def _faults_route(self, request: Request) -> Response:
        body = await request.json()
        for name in ("outage", "error_rate", "delay"):
            if name in body:
                setattr(self.shop.faults, name, type(getattr(self.shop.faults, name))(body[name]))
        return JSONResponse(vars(self.shop.faults))

    async def _calls_route(self, request: Request) -> Response:
        return JSONResponse({"calls": self.shop.calls.count(), "fields": dict(self.shop.fields)})
