"""Values the API takes, refused at the door when the database could not store them, or could
store them but never read them back: a NUL character (PostgreSQL text holds none), units
beyond an integer column, times outside the years PostgreSQL and Python share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import unquote

from pydantic import AfterValidator, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from interfaces.http.problems import problem

NO_NUL = r"^[^\x00]*$"
MAX_UNITS = 10**9  # one change of more is a typo, and would not fit an integer column
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)


def _plausible(moment: datetime) -> datetime:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST <= aware <= datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("a time when it happened must lie between 1970 and a day from now")
    return moment


Text = Annotated[str, Field(pattern=NO_NUL)]
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
