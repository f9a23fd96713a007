"""`GET|POST /api/v1/reservations`, `DELETE /api/v1/reservations/{id}`: holds on stock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from application.errors import UnknownSku
from application.reservations import Reservation, Reservations, UnknownReservationId
from domain.errors import DomainError
from interfaces.http.inputs import KnownSku, Location, ReservationId, Units
from interfaces.http.problems import invalid_fields, problem

MAX_HOLD = timedelta(days=366)  # a hold of longer is a mistake


class ReservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ReservationId | None = None
    sku: KnownSku
    location: Location = "main"
    quantity: Units
    expires_at: datetime | None = None
    ttl_seconds: Annotated[int, Field(gt=0, le=int(MAX_HOLD.total_seconds()))] | None = None


def reservation_document(reservation: Reservation) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": reservation.id,
        "sku": reservation.sku,
        "location": reservation.location,
        "quantity": reservation.quantity,
        "expires_at": iso(reservation.expires_at),
        "created_at": iso(reservation.created_at),
        "released_at": iso(reservation.released_at),
        "release_reason": reservation.release_reason,
    }


class InvalidHold(Exception):
    """Raised when a hold's expiry has no time zone or is not within a year from now."""


def hold_expiry(
    expires_at: datetime | None, ttl_seconds: int | None, now: datetime
) -> datetime | None:
    """When a hold asked for at `now` expires (None: when released): `ttl_seconds` from now,
    else `expires_at`. Raises `InvalidHold` for a time without a zone or beyond a year."""
    expires = now + timedelta(seconds=ttl_seconds) if ttl_seconds is not None else expires_at
    if expires is None:
        return None
    if expires.tzinfo is None:
        raise InvalidHold("expires_at needs a time zone")
    if not now < expires <= now + MAX_HOLD:
        raise InvalidHold("a hold must expire within a year from now")
    return expires


def reservation_routes(reservations: Reservations) -> list[Route]:
    def listing(request: Request) -> Response:
        held = reservations.open(request.query_params.get("sku"))
        return JSONResponse({"reservations": [reservation_document(r) for r in held]})

    async def create(request: Request) -> Response:
        try:
            wanted = ReservationIn.model_validate_json(await request.body())
            expires = hold_expiry(wanted.expires_at, wanted.ttl_seconds, datetime.now(UTC))
        except ValidationError as error:
            return problem(422, "Invalid reservation", invalid_fields(error))
        except InvalidHold as error:
            return problem(422, "Invalid reservation", str(error))
        try:
            held = await run_in_threadpool(
                lambda: reservations.hold(
                    wanted.id or str(uuid.uuid4()),
                    sku=wanted.sku,
                    location=wanted.location,
                    quantity=wanted.quantity,
                    expires_at=expires,
                    source="api",
                )
            )
        except UnknownSku as error:
            return problem(404, "Unknown SKU", str(error))
        except DomainError as error:
            return problem(422, "Reservation refused", str(error))
        return JSONResponse(reservation_document(held), status_code=201)

    async def delete(request: Request) -> Response:
        reservation_id = request.path_params["reservation_id"]
        try:
            await run_in_threadpool(reservations.release, reservation_id)
        except UnknownReservationId as error:
            return problem(404, "No such reservation", str(error))
        return JSONResponse({"id": reservation_id, "status": "released"})

    return [
        Route("/api/v1/reservations", listing, methods=["GET"]),
        Route("/api/v1/reservations", create, methods=["POST"]),
        Route("/api/v1/reservations/{reservation_id}", delete, methods=["DELETE"]),
    ]
