"""`GET /api/v1/history`: recorded changes across SKUs, for audits, as JSON or CSV."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.ledger_queries import LedgerQueries
from application.receipts import AuditFilter
from interfaces.http.params import BadQuery, kinds, limit_of, time_of
from interfaces.presenters import receipt_document


def history_endpoint(queries: LedgerQueries) -> Callable[[Request], Response]:
    def audit(request: Request) -> Response:
        params = request.query_params
        limit = limit_of(params.get("limit"))
        found = queries.audit(
            AuditFilter(
                since=time_of(params.get("since"), "since"),
                until=time_of(params.get("until"), "until"),
                kinds=frozenset(kinds(params.getlist("kind"))),
                sku=params.get("sku"),
                source=params.get("channel") or params.get("source"),
                location=params.get("location"),
                reference=params.get("reference"),
                order=_order(params.get("order")),
                cursor=_audit_cursor(params.get("cursor")),
            ),
            limit=limit,
        )
        following = (
            _encode_cursor(found[-1].recorded_at, found[-1].business_key)
            if len(found) == limit
            else None
        )
        if params.get("format") == "csv":
            rows = [{**receipt_document(r), "reason": r.reason} for r in found]
            return Response(_csv(rows), media_type="text/csv")
        return JSONResponse(
            {"changes": [receipt_document(r) for r in found], "next_cursor": following}
        )

    return audit


def _order(value: str | None) -> str | None:
    """An order's reference, e.g. `shopify://shop-us/orders/450789469`; a trailing slash is
    ignored."""
    if value is None:
        return None
    if not value.rstrip("/"):
        raise BadQuery("order must be an order's reference, e.g. shopify://<channel>/orders/<id>")
    return value


def _encode_cursor(recorded_at: datetime, business_key: str) -> str:
    raw = f"{recorded_at.isoformat()}|{business_key}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _audit_cursor(value: str | None) -> tuple[datetime, str] | None:
    if value is None:
        return None
    try:
        stamp, _, key = base64.urlsafe_b64decode(value.encode()).decode().partition("|")
        if "\x00" in key:  # no business key holds one, and the database would refuse it
            raise ValueError(key)
        return datetime.fromisoformat(stamp), key
    except ValueError:
        raise BadQuery("cursor is not one this API gave out") from None


_CSV_COLUMNS = (
    "recorded_at",
    "occurred_at",
    "sku",
    "kind",
    "location",
    "source",
    "reference",
    "reason",
    "business_key",
    "shortfall",
)


# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection).
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({name: _cell(value) for name, value in row.items()} for row in rows)
    return out.getvalue()


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula, prefixed with `'` so it shows as text
    (numbers are left alone: a negative shortfall is a number, not a formula)."""
    if isinstance(value, str) and value.startswith(_FORMULA_LEADS):
        return "'" + value
    return value
