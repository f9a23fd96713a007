"""Reservations: holds on stock for pending orders, each a row with an expiry, applied to the
ledger as Reserved / ReservationReleased events so availability counts them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from application.errors import ApplicationError, UnknownSku
from application.ledger import Ledger, OutcomeStatus
from domain.stock import ChangeKind, StockChange


class UnknownReservationId(ApplicationError):
    """Raised when no open reservation has the given id."""


@dataclass(frozen=True)
class Reservation:
    id: str
    sku: str
    location: str
    quantity: int
    expires_at: datetime | None
    created_at: datetime
    released_at: datetime | None = None
    release_reason: str | None = None


class ReservationStore(Protocol):
    def add(self, reservation: Reservation) -> Reservation:
        """Store it unless its id exists; return the stored one either way."""
        ...

    def get(self, reservation_id: str) -> Reservation | None: ...

    def open(self, sku: str | None, limit: int) -> list[Reservation]: ...

    def expired(self, now: datetime, limit: int) -> list[Reservation]: ...

    def mark_released(self, reservation_id: str, reason: str) -> None: ...


class Reservations:
    def __init__(self, ledger: Ledger, store: ReservationStore) -> None:
        self._ledger = ledger
        self._store = store

    def hold(
        self,
        reservation_id: str,
        *,
        sku: str,
        location: str,
        quantity: int,
        expires_at: datetime | None,
        source: str,
    ) -> Reservation:
        """Hold `quantity` units; the same id again returns the first hold. Raises
        `UnknownSku`, or a `DomainError` for a bad quantity or a reused id."""
        if not self._ledger.known_skus([sku]):
            raise UnknownSku(f"no stock has been recorded for SKU {sku!r}")
        now = datetime.now(UTC)
        change = StockChange(
            kind=ChangeKind.RESERVATION,
            sku=sku,
            location=location,
            quantity=quantity,
            business_key=f"reservation:{reservation_id}",
            source=source,
            occurred_at=now,
            reservation_id=reservation_id,
            reason="hold",
        )
        outcome = self._ledger.record(change)
        if outcome.status is OutcomeStatus.REJECTED:
            assert outcome.error is not None
            raise outcome.error
        return self._store.add(
            Reservation(reservation_id, sku, location, quantity, expires_at, now)
        )

    def release(self, reservation_id: str, reason: str = "released", source: str = "api") -> None:
        """End a hold (its remaining units become available). Raises `UnknownReservationId`."""
        held = self._store.get(reservation_id)
        if held is None or held.released_at is not None:
            raise UnknownReservationId(f"no open reservation {reservation_id!r}")
        item = self._ledger.get_item(held.sku)
        remaining = item.reservation(reservation_id)
        if remaining:
            self._ledger.record(
                StockChange(
                    kind=ChangeKind.RESERVATION_RELEASE,
                    sku=held.sku,
                    location=held.location,
                    quantity=remaining,
                    business_key=f"reservation:{reservation_id}:release",
                    source=source,
                    occurred_at=datetime.now(UTC),
                    reservation_id=reservation_id,
                    reason=reason,
                )
            )
        self._store.mark_released(reservation_id, reason)

    def open(self, sku: str | None = None, limit: int = 100) -> list[Reservation]:
        return self._store.open(sku, limit)

    def expire(self, now: datetime | None = None, limit: int = 500) -> Sequence[Reservation]:
        """Release every hold past its expiry; safe to run again or concurrently."""
        due = self._store.expired(now or datetime.now(UTC), limit)
        for reservation in due:
            self.release(reservation.id, reason="expired", source="invsync")
        return due
