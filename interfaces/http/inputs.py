"""Values the API takes, refused at the door when the database could not store them, or could
store them but never read them back: a NUL character (PostgreSQL text holds none), identifiers
beyond the ledger's `LIMITS` (one would overflow an index entry and stop everybody's work
behind it), names no path could name ("." and "..", a reservation id with a "/"), units beyond
an integer column, times outside the years PostgreSQL and Python share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import unquote

from pydantic import AfterValidator, Field, WithJsonSchema
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.stock import LIMITS, MAX_UNITS
from interfaces.http.problems import problem

NO_NUL = r"^[^\x00]*$"
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)


def _plausible(moment: datetime) -> datetime:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST <= aware <= datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("a time when it happened must lie between 1970 and a day from now")
    return moment


def _nameable(what: str, *, slash: bool) -> AfterValidator:
    """Refuses a name that could never be read back through a path like /api/v1/skus/{sku}:
    clients resolve "." and ".." (even percent-encoded), and, unless the path takes it
    percent-encoded (`slash`, as SKU paths do), "/" splits the path."""

    def check(value: str) -> str:
        if value in (".", ".."):
            raise ValueError(f"{what} cannot be {value!r}: clients resolve it in paths")
        if not slash and "/" in value:
            raise ValueError(f"{what} cannot be {value[:40]!r}: it is named in paths, so no '/'")
        return value

    return AfterValidator(check)


def _bounded(name: str, *, shortest: int = 0, longest: int | None = None) -> Any:
    """A text field holding no NUL, at most `LIMITS[name]` (or `longest`) characters long."""
    return Field(min_length=shortest, max_length=longest or LIMITS[name], pattern=NO_NUL)


def _name_schema(name: str, *, slash: bool) -> WithJsonSchema:
    if slash:
        return WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "maxLength": LIMITS[name],
                "pattern": NO_NUL,
                "not": {"enum": [".", ".."]},
                "description": "neither '.' nor '..'; a '/' is percent-encoded (%2F) in paths",
            }
        )
    return WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": LIMITS[name],
            "pattern": r"^[^\x00/]*$",
            "description": "no '/', and neither '.' nor '..': it is named in paths",
        }
    )


Text = Annotated[str, Field(pattern=NO_NUL)]
Sku = Annotated[
    str,
    _bounded("sku", shortest=1),
    _nameable("a SKU", slash=True),
    _name_schema("sku", slash=True),
]
ReservationId = Annotated[
    str,
    _bounded("reservation_id", shortest=1),
    _nameable("a reservation id", slash=False),
    _name_schema("reservation_id", slash=False),
]
# A SKU the ledger knows already (perhaps from a channel, under a name no path could hold).
KnownSku = Annotated[str, _bounded("sku", shortest=1)]
Location = Annotated[str, _bounded("location", shortest=1)]
Reason = Annotated[str, _bounded("reason")]
Reference = Annotated[str, _bounded("reference")]
# The ledger's limit less the "api:" that keeps API keys apart from channels' keys.
BusinessKey = Annotated[str, _bounded("business_key", shortest=1, longest=500)]

Units = Annotated[int, Field(ge=-MAX_UNITS, le=MAX_UNITS)]
PastTime = Annotated[datetime, AfterValidator(_plausible)]


class RefuseNul:
    """ASGI middleware: a request whose path or query string holds a NUL gets a 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or "\x00" in unquote(scope["query_string"].decode("latin-1"))
        ):
            response = problem(400, "Bad request", "the path or query holds a NUL character")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
