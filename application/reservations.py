"""Reservations: holds on stock for pending orders, each a row with an expiry, applied to the
ledger as Reserved / ReservationReleased events so availability counts them.

A hold is two writes, the row and the ledger, and a process may die between them. The row goes
first, unconfirmed, so no ledger hold can exist without a row to release it; the row is
confirmed once the ledger has the hold. The expiry sweep settles rows left unconfirmed past
`PENDING_GRACE`: confirmed where the ledger holds the stock, removed where it never did."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from application.errors import ApplicationError, UnknownSku
from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.outcomes import OutcomeStatus
from domain.errors import DuplicateReservation
from domain.stock import ChangeKind, StockChange

# A hold takes milliseconds between its row and its ledger event: a row unconfirmed for this
# long belongs to a process that died in between.
PENDING_GRACE = timedelta(seconds=60)


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
    confirmed: bool = True  # False between the row and the ledger's hold


class ReservationStore(Protocol):
    def add(self, reservation: Reservation) -> tuple[Reservation, bool]:
        """Store it, unconfirmed, unless its id exists; return the stored one either way, and
        whether it was stored now."""
        ...

    def confirm(self, reservation_id: str) -> Reservation:
        """Mark it held by the ledger; return it."""
        ...

    def discard(self, reservation_id: str) -> None:
        """Delete it if it is still unconfirmed (the ledger never held it)."""
        ...

    def unconfirmed(self, created_before: datetime, limit: int) -> list[Reservation]: ...

    def get(self, reservation_id: str) -> Reservation | None: ...

    def open(self, sku: str | None, limit: int) -> list[Reservation]: ...

    def expired(self, now: datetime, limit: int) -> list[Reservation]: ...

    def mark_released(self, reservation_id: str, reason: str) -> None: ...


class Reservations:
    def __init__(self, ledger: Ledger, store: ReservationStore) -> None:
        self._ledger = ledger
        self._queries = LedgerQueries(ledger)
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
        `UnknownSku`, or a `DomainError` for a bad quantity or an id holding another SKU."""
        if not self._queries.known_skus([sku]):
            raise UnknownSku(f"no stock has been recorded for SKU {sku!r}")
        now = datetime.now(UTC)
        # Built first: a change the domain refuses never leaves a row behind.
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
        row, created = self._store.add(
            Reservation(reservation_id, sku, location, quantity, expires_at, now, confirmed=False)
        )
        if (row.sku, row.location) != (sku, location):
            raise DuplicateReservation(
                f"reservation {reservation_id!r} holds SKU {row.sku!r} at {row.location!r}"
            )
        if not created:  # a retry: the first request's hold, whatever this one asks
            change = replace(change, quantity=row.quantity, occurred_at=row.created_at)
        outcome = self._ledger.record(change)
        if outcome.status is OutcomeStatus.REJECTED:
            if created:
                self._store.discard(reservation_id)
            assert outcome.error is not None
            raise outcome.error
        return row if row.confirmed else self._store.confirm(reservation_id)

    def release(self, reservation_id: str, reason: str = "released", source: str = "api") -> None:
        """End a hold (its remaining units become available). Raises `UnknownReservationId`."""
        held = self._store.get(reservation_id)
        if held is None or held.released_at is not None:
            raise UnknownReservationId(f"no open reservation {reservation_id!r}")
        item = self._queries.get_item(held.sku)
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
        """Release every hold past its expiry, and settle holds a dead process left half-made;
        safe to run again or concurrently."""
        now = now or datetime.now(UTC)
        self.settle(now - PENDING_GRACE, limit)
        due = self._store.expired(now, limit)
        for reservation in due:
            self.release(reservation.id, reason="expired", source="invsync")
        return due

    def settle(self, created_before: datetime, limit: int = 500) -> list[str]:
        """Confirm the unconfirmed rows made before `created_before` whose hold the ledger
        has, remove those it never had; returns the ids removed."""
        removed = []
        for row in self._store.unconfirmed(created_before, limit):
            if self._queries.get_item(row.sku).reservation(row.id):
                self._store.confirm(row.id)
            else:
                self._store.discard(row.id)
                removed.append(row.id)
        return removed
