"""Reservations as rows in PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import class_row

from application.reservations import Reservation
from infrastructure.postgres import open_pool

_COLUMNS = (
    "id, sku, location, quantity, expires_at, created_at, released_at, release_reason, confirmed"
)


class PostgresReservations:
    def __init__(
        self, database_url: str, *, max_size: int = 4, statement_timeout_ms: int | None = None
    ) -> None:
        self._pool = open_pool(database_url, max_size, statement_timeout_ms)

    def close(self) -> None:
        self._pool.close()

    def add(self, reservation: Reservation) -> tuple[Reservation, bool]:
        with self._pool.connection() as conn:
            inserted = conn.execute(
                f"INSERT INTO reservations ({_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, NULL, NULL, false) "
                "ON CONFLICT (id) DO NOTHING",
                [
                    reservation.id,
                    reservation.sku,
                    reservation.location,
                    reservation.quantity,
                    reservation.expires_at,
                    reservation.created_at,
                ],
            ).rowcount
        stored = self.get(reservation.id)
        assert stored is not None
        return stored, inserted == 1

    def confirm(self, reservation_id: str) -> Reservation:
        with self._pool.connection() as conn:
            conn.execute("UPDATE reservations SET confirmed = true WHERE id = %s", [reservation_id])
        stored = self.get(reservation_id)
        assert stored is not None
        return stored

    def discard(self, reservation_id: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM reservations WHERE id = %s AND NOT confirmed", [reservation_id]
            )

    def unconfirmed(self, created_before: datetime, limit: int) -> list[Reservation]:
        return self._query(
            f"SELECT {_COLUMNS} FROM reservations WHERE NOT confirmed AND released_at IS NULL "
            "AND created_at < %s ORDER BY created_at LIMIT %s",
            [created_before, limit],
        )

    def get(self, reservation_id: str) -> Reservation | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM reservations WHERE id = %s", [reservation_id])
        return rows[0] if rows else None

    def open(self, sku: str | None, limit: int) -> list[Reservation]:
        return self._query(
            f"SELECT {_COLUMNS} FROM reservations WHERE released_at IS NULL AND confirmed "
            "AND (%s::text IS NULL OR sku = %s) ORDER BY created_at LIMIT %s",
            [sku, sku, limit],
        )

    def expired(self, now: datetime, limit: int) -> list[Reservation]:
        return self._query(
            f"SELECT {_COLUMNS} FROM reservations WHERE released_at IS NULL "
            "AND expires_at <= %s ORDER BY expires_at LIMIT %s",
            [now, limit],
        )

    def mark_released(self, reservation_id: str, reason: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE reservations SET released_at = now(), release_reason = %s "
                "WHERE id = %s AND released_at IS NULL",
                [reason, reservation_id],
            )

    def _query(self, query: str, params: list[object]) -> list[Reservation]:
        with (
            self._pool.connection() as conn,
            conn.cursor(row_factory=class_row(Reservation)) as curs,
        ):
            curs.execute(query, params)
            return curs.fetchall()
