"""The eBay sandbox's control routes (`/_sandbox/...`): what a seller, a shopper or a test does
to the account from outside the process (the demo, the benchmarks)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from sandboxes.ebay.seller import EbaySandbox


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ControlApi:
    """The account's control routes."""

    def __init__(self, seller: EbaySandbox) -> None:
        self.seller = seller

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/stock", self._stock, methods=["GET"]),
            Route("/_sandbox/items", self._add_item, methods=["POST"]),
            Route("/_sandbox/buy", self._buy, methods=["POST"]),
            Route("/_sandbox/orders/{id}/{action}", self._order, methods=["POST"]),
            Route("/_sandbox/faults", self._faults, methods=["PUT"]),
            Route("/_sandbox/throttle", self._throttle, methods=["PUT", "DELETE"]),
            Route("/_sandbox/calls", self._calls, methods=["GET"]),
            Route("/_sandbox/tokens/expire", self._expire, methods=["POST"]),
            Route("/_sandbox/webhooks/lose", self._lose, methods=["POST"]),
            Route("/_sandbox/subscribe", self._subscribe, methods=["POST"]),
        ]

    async def _stock(self, request: Request) -> Response:
        with self.seller.lock:
            return JSONResponse({sku: item.shown() for sku, item in self.seller.items.items()})

    async def _add_item(self, request: Request) -> Response:
        body = await _json(request)
        listings = self.seller.add_item(str(body["sku"]), int(body.get("quantity", 0)))
        return JSONResponse({"listings": listings}, 201)

    async def _buy(self, request: Request) -> Response:
        from sandboxes.ebay.seller import OutOfStock

        body = await _json(request)
        try:
            order_id = self.seller.buy(str(body["sku"]), int(body.get("quantity", 1)))
        except OutOfStock as error:
            return JSONResponse({"error": str(error)}, 409)
        except KeyError as error:
            return JSONResponse({"error": f"unknown {error}"}, 404)
        return JSONResponse({"order_id": order_id}, 201)

    async def _order(self, request: Request) -> Response:
        """POST `/_sandbox/orders/<id>/<cancel|ship|refund>`."""
        actions = {"cancel": self.seller.cancel, "ship": self.seller.ship}
        actions["refund"] = self.seller.refund
        action = actions.get(request.path_params["action"])
        if action is None:
            return JSONResponse({"error": "no such action"}, 404)
        try:
            action(request.path_params["id"])
        except KeyError:
            return JSONResponse({"error": "unknown order"}, 404)
        return Response(status_code=204)

    async def _faults(self, request: Request) -> Response:
        body = await _json(request)
        for name in ("outage", "error_rate", "delay"):
            if name in body:
                setattr(self.seller.faults, name, body[name])
        return JSONResponse(vars(self.seller.faults))

    async def _throttle(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.seller.lift_throttle()
        else:
            self.seller.throttle((await _json(request)).get("calls"))
        return Response(status_code=204)

    async def _calls(self, request: Request) -> Response:
        operations = {op for _, op, _ in list(self.seller.log.calls)}
        return JSONResponse({op: self.seller.log.count(op) for op in sorted(operations)})

    async def _expire(self, request: Request) -> Response:
        self.seller.expire_tokens()
        return Response(status_code=204)

    async def _lose(self, request: Request) -> Response:
        self.seller.notifications.lose(int((await _json(request)).get("count", 1)))
        return Response(status_code=204)

    async def _subscribe(self, request: Request) -> Response:
        """Body `{"url", "verification_token", "endpoint"}`: validated as eBay does."""
        body = await _json(request)
        valid = await asyncio.to_thread(
            self.seller.subscribe, body["url"], body["verification_token"], body["endpoint"]
        )
        return JSONResponse({"validated": valid}, 200 if valid else 409)
