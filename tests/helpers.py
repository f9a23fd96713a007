"""Small builders shared by the tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from domain.stock import ChangeKind, StockChange


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The body of `response`, after checking it is an RFC 9457 problem with that status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def random_sku(prefix: str = "sku") -> str:
    """Unique per call, so tests share one database without cleaning up after each other."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def change(kind: ChangeKind, sku: str, quantity: int, **fields: Any) -> StockChange:
    """A stock change at location `main` with a fresh business key unless given others."""
    defaults: dict[str, Any] = {
        "location": "main",
        "business_key": f"test:{uuid.uuid4()}",
        "source": "test",
        "occurred_at": datetime.now(UTC),
    }
    return StockChange(kind=kind, sku=sku, quantity=quantity, **{**defaults, **fields})


@contextmanager
def empty_database(server_url: str, prefix: str) -> Iterator[str]:
    """A database of its own on `server_url`, with no tables, dropped when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_database(server_url: str, prefix: str) -> Iterator[str]:
    """A database of its own on `server_url`, migrated, dropped when the block ends."""
    from interfaces.composition import migrate

    with empty_database(server_url, prefix) as url:
        migrate(url)
        yield url
