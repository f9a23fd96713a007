"""Operator endpoints for intake: parked deliveries and dead letters, to review, retry or
discard."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.intake import DeliveryState
from infrastructure.channels.base import Lane
from interfaces.http.api import Intake
from interfaces.http.problems import problem


def operations_routes(intake: Intake) -> list[Route]:
    def deliveries(request: Request) -> Response:
        state = request.query_params.get("state", "parked")
        if state not in set(DeliveryState):
            allowed = ", ".join(DeliveryState)
            return problem(400, "Bad query parameter", f"state must be one of: {allowed}")
        return JSONResponse({"deliveries": intake.inbox.deliveries(DeliveryState(state))})

    async def retry_delivery(request: Request) -> Response:
        delivery_id = row_id(request.path_params["delivery_id"])
        if not await run_in_threadpool(release_delivery, intake, delivery_id):
            return problem(404, "No such parked delivery", f"delivery {delivery_id} is not parked")
        return JSONResponse({"status": "pending", "id": delivery_id}, status_code=202)

    async def delivery(request: Request) -> Response:
        delivery_id = row_id(request.path_params["delivery_id"])
        row = await run_in_threadpool(intake.inbox.delivery, delivery_id) if delivery_id else None
        if row is None:
            return problem(404, "No such delivery", f"no delivery {delivery_id} in the inbox")
        return JSONResponse(row)

    async def discard_delivery(request: Request) -> Response:
        delivery_id = row_id(request.path_params["delivery_id"])
        by = getattr(request.state, "token", None) or "api"
        if not delivery_id or not await run_in_threadpool(intake.inbox.discard, delivery_id, by):
            detail = f"delivery {delivery_id} is neither parked nor waiting"
            return problem(404, "No such parked delivery", detail)
        return JSONResponse({"status": "discarded", "id": delivery_id})

    def dead_letters(request: Request) -> Response:
        state = request.query_params.get("state", "dead")
        if state not in ("dead", "retried", "discarded"):
            return problem(400, "Bad query parameter", "state must be dead, retried or discarded")
        return JSONResponse({"dead_letters": intake.dead_letters.list(state)})

    async def retry_dead_letter(request: Request) -> Response:
        dead_id = row_id(request.path_params["dead_id"])
        if not dead_id or not await run_in_threadpool(intake.dead_letters.retry, dead_id):
            return problem(404, "No such dead letter", f"no dead letter {dead_id} awaits review")
        return JSONResponse({"status": "retried", "id": dead_id}, status_code=202)

    async def discard_dead_letter(request: Request) -> Response:
        dead_id = row_id(request.path_params["dead_id"])
        if not dead_id or not await run_in_threadpool(intake.dead_letters.discard, dead_id):
            return problem(404, "No such dead letter", f"no dead letter {dead_id} awaits review")
        return JSONResponse({"status": "discarded", "id": dead_id})

    return [
        Route("/api/v1/deliveries", deliveries),
        Route("/api/v1/deliveries/{delivery_id}", delivery, methods=["GET"]),
        Route("/api/v1/deliveries/{delivery_id}", discard_delivery, methods=["DELETE"]),
        Route("/api/v1/deliveries/{delivery_id}/retry", retry_delivery, methods=["POST"]),
        Route("/api/v1/dead-letters", dead_letters),
        Route("/api/v1/dead-letters/{dead_id}/retry", retry_dead_letter, methods=["POST"]),
        Route("/api/v1/dead-letters/{dead_id}", discard_dead_letter, methods=["DELETE"]),
    ]


def release_delivery(intake: Intake, delivery_id: int) -> bool:
    """Put a parked delivery back to pending and send it; False if it is not parked."""
    row = intake.inbox.release(delivery_id) if delivery_id else None
    if row is not None:
        intake.queues.send(Lane(row["lane"]), [row["id"]])
    return row is not None


def row_id(value: str) -> int:
    """A table row's id from a path, 0 (no row has it) for anything but digits."""
    return int(value) if value.isascii() and value.isdigit() else 0
