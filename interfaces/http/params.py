"""Query parameters, parsed into values or refused with a clear 400."""

from __future__ import annotations

from datetime import datetime

from domain.stock import ChangeKind

# Positions and limits fit PostgreSQL's bigint; longer figures are not ours, and past 4,300 digits
# Python would not even parse them.
MAX_DIGITS = 18


class BadQuery(ValueError):
    """Raised when a query parameter cannot be parsed."""


def time_of(value: str | None, name: str, *, required: bool = False) -> datetime | None:
    if value is None:
        if required:
            raise BadQuery(f"{name} is required (an ISO 8601 time with a zone)")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        raise BadQuery(f"{name}={value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise BadQuery(f"{name}={value!r} needs a time zone, e.g. 2026-11-28T12:00:00Z")
    return parsed


def number(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise BadQuery(f"{name}={value[:40]!r} is not a whole number")
    if len(value) > MAX_DIGITS:
        raise BadQuery(f"{name} has {len(value)} digits; at most {MAX_DIGITS} are allowed")
    return int(value)


def limit_of(value: str | None) -> int:
    limit = number(value, "limit")
    if limit is None:
        return 50
    if not 1 <= limit <= 1000:
        raise BadQuery(f"limit must be between 1 and 1000, got {limit}")
    return limit


def flag(value: str | None, name: str) -> bool:
    if value in (None, "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise BadQuery(f"{name} must be true or false, got {value!r}")


def newest_first(order: str) -> bool:
    if order not in ("newest", "oldest"):
        raise BadQuery(f"order must be newest or oldest, got {order!r}")
    return order == "newest"


def kinds(values: list[str]) -> list[ChangeKind]:
    try:
        return [ChangeKind(value) for value in values]
    except ValueError:
        allowed = ", ".join(ChangeKind)
        raise BadQuery(f"kind must be one of: {allowed}") from None
