"""Small builders shared by the tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from domain.stock import ChangeKind, StockChange


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
