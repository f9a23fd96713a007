"""`Idempotency-Key` on API POSTs: the same key and body replay the first answer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

DDL = """CREATE TABLE IF NOT EXISTS api_idempotency (
    key text PRIMARY KEY,
    request_hash text NOT NULL,
    status integer NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())"""


@dataclass(frozen=True)
class Remembered:
    same_request: bool
    status: int
    body: Any


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


class IdempotencyStore:
    def __init__(self, database_url: str) -> None:
        self._pool = ConnectionPool(database_url, min_size=1, max_size=4, open=True, timeout=5)

    def close(self) -> None:
        self._pool.close()

    def recall(self, key: str, request: str) -> Remembered | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT request_hash, status, body FROM api_idempotency WHERE key = %s", [key]
            ).fetchone()
        if row is None:
            return None
        return Remembered(row[0] == request, row[1], row[2])

    def remember(self, key: str, request: str, status: int, body: Any) -> None:
        # A concurrent first use of the key may have won: its answer stands.
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO api_idempotency (key, request_hash, status, body) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                [key, request, status, Jsonb(body)],
            )


def create_idempotency_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(DDL)
