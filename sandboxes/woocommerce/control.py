"""The WooCommerce sandbox's control routes (`/_sandbox/...`): what a shop manager, a shopper
or a test does to the store from outside the process (the demo, the benchmarks)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.woocommerce.orders import OutOfStock
from sandboxes.woocommerce.rest import json_object

if TYPE_CHECKING:
    from sandboxes.woocommerce.store import WooCommerceSandbox


class ControlApi:
    """The store's control routes."""

    def __init__(self, store: WooCommerceSandbox) -> None:
        self.store = store

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/stock", self._control_stock, methods=["GET"]),
            Route("/_sandbox/stock/{sku}", self._control_set_stock, methods=["PUT"]),
            Route("/_sandbox/products", self._control_add_product, methods=["POST"]),
            Route("/_sandbox/buy", self._control_buy, methods=["POST"]),
            Route("/_sandbox/orders/{id:int}/refunds", self._control_refund, methods=["POST"]),
            Route("/_sandbox/orders/{id:int}/{action}", self._control_order, methods=["POST"]),
            Route("/_sandbox/settings", self._control_settings, methods=["PUT"]),
            Route("/_sandbox/faults", self._control_faults, methods=["PUT"]),
            Route("/_sandbox/throttle", self._control_throttle, methods=["PUT", "DELETE"]),
            Route("/_sandbox/calls", self._control_calls, methods=["GET"]),
            Route("/_sandbox/webhooks", self._control_webhooks, methods=["GET", "POST"]),
            Route("/_sandbox/webhooks/deliver", self._control_deliver, methods=["POST"]),
            Route("/_sandbox/webhooks/lose", self._control_lose, methods=["POST"]),
        ]

    async def _control_stock(self, request: Request) -> Response:
        with self.store.lock:
            return JSONResponse(
                {p.sku: p.stock_quantity for p in self.store.products.values() if p.sku}
            )

    async def _control_set_stock(self, request: Request) -> Response:
        body = await json_object(request)
        try:
            self.store.set_stock(request.path_params["sku"], int(body["quantity"]))
        except KeyError as error:
            return JSONResponse({"error": f"unknown {error}"}, 404)
        return JSONResponse(
            {"sku": request.path_params["sku"], "stock_quantity": int(body["quantity"])}
        )

    async def _control_add_product(self, request: Request) -> Response:
        body = await json_object(request)
        with self.store.lock:
            parent = (
                self.store.product_named(body["parent_sku"]).id if body.get("parent_sku") else None
            )
        stock, name = body.get("stock", 0), body.get("name", "")
        product_id = self.store.add_product(body["sku"], stock, name=name, parent=parent)
        return JSONResponse({"id": product_id}, 201)

    async def _control_buy(self, request: Request) -> Response:
        body = await json_object(request)
        try:
            order_id = self.store.buy(body["sku"], int(body.get("quantity", 1)))
        except OutOfStock as error:
            return JSONResponse({"error": str(error)}, 409)
        return JSONResponse({"order_id": order_id}, 201)

    async def _control_refund(self, request: Request) -> Response:
        """Body `{"lines": {"<line id>": units}, "restock": bool, "reason": str}`."""
        body = await json_object(request)
        try:
            lines = {int(line): int(units) for line, units in (body.get("lines") or {}).items()}
            refund_id = self.store.refund(
                request.path_params["id"],
                lines,
                restock=bool(body.get("restock", True)),
                reason=str(body.get("reason", "")),
            )
        except KeyError as error:
            return JSONResponse({"error": f"unknown {error}"}, 404)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, 409)
        return JSONResponse({"refund_id": refund_id}, 201)

    async def _control_order(self, request: Request) -> Response:
        """POST `/_sandbox/orders/<id>/<trash|restore|delete|cancelled|completed|…>`."""
        order_id, action = request.path_params["id"], request.path_params["action"]
        actions = {"trash": self.store.trash_order, "restore": self.store.restore_order}
        actions["delete"] = self.store.delete_order
        try:
            if action in actions:
                actions[action](order_id)
            else:
                self.store.set_order_status(order_id, action)
        except KeyError:
            return JSONResponse({"error": f"unknown order {order_id}"}, 404)
        return Response(status_code=204)

    async def _control_settings(self, request: Request) -> Response:
        body = await json_object(request)
        if "manage_stock" in body:
            self.store.set_stock_management(bool(body["manage_stock"]))
        return JSONResponse({"manage_stock": self.store.stock_management})

    async def _control_faults(self, request: Request) -> Response:
        body = await json_object(request)
        for name in ("outage", "error_rate", "delay"):
            if name in body:
                setattr(self.store.faults, name, body[name])
        return JSONResponse(vars(self.store.faults))

    async def _control_throttle(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.store.lift_throttle()
        else:
            body = await json_object(request)
            self.store.throttle(float(body.get("retry_after", 1)), body.get("calls"))
        return Response(status_code=204)

    async def _control_calls(self, request: Request) -> Response:
        operations = {op for _, op, _ in list(self.store.log.calls)}
        return JSONResponse({op: self.store.log.count(op) for op in sorted(operations)})

    async def _control_webhooks(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_object(request)
            self.store.webhooks.add(body["topic"], body["delivery_url"], body["secret"])
        with self.store.lock:
            return JSONResponse(
                [vars(w).copy() for w in self.store.webhooks.subscriptions.values()]
            )

    async def _control_lose(self, request: Request) -> Response:
        """Body `{"topic": "order.updated", "count": 1}`: lose its next deliveries."""
        body = await json_object(request)
        self.store.webhooks.lose(str(body["topic"]), int(body.get("count", 1)))
        return Response(status_code=204)

    async def _control_deliver(self, request: Request) -> Response:
        sent = await asyncio.to_thread(self.store.webhooks.deliver_pending)
        return JSONResponse(
            [{"topic": s.topic, "resource_id": s.resource_id, "status": s.status} for s in sent]
        )
