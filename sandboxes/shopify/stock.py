"""A Shopify shop's stock as the sandbox keeps it: inventory items at its one location, the
changes they went through, and Shopify's global ids."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime


class OutOfStock(Exception):
    """Raised when a simulated shopper asks for more than the sandbox shows."""


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: str, kind: str) -> int | None:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", value)
    return int(match.group(1)) if match else None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Item:
    """A variant's inventory item at the sandbox's one location."""

    id: int
    variant_id: int
    product_id: int
    sku: str
    available: int
    updated_at: str = field(default_factory=now)


@dataclass(frozen=True)
class Change:
    """A SKU's stock went from `before` to `after`: by the API, a shopper or the merchant."""

    sku: str
    before: int
    after: int
    cause: str
