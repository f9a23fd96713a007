"""SKUs whose names hold a "/" ("TEE/RED/L"), named in paths as the client percent-encodes them
(`/api/v1/skus/TEE%2FRED%2FL`).

Servers decode %2F into `scope["path"]`, where it can no longer be told from a separator; the
undecoded `scope["raw_path"]` still can. `RawSegments` rebuilds the path of a SKU route from the
raw one, segment by segment, keeping a decoded "/" (and "%") percent-encoded, and the `segment`
convertor decodes the one segment it matches. So `/api/v1/skus/x%2Fhistory` is the SKU
"x/history" and `/api/v1/skus/x/history` the history of "x": never ambiguous.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_to_bytes

from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

# The paths whose parameters may hold an encoded "/": a SKU's and a SKU's rule override.
_SKU_PATHS = re.compile(rb"^/api/v1/(skus/|channels/[^/]+/rules/skus/)[^/]")


class SegmentConvertor(Convertor[str]):
    """One path segment as `RawSegments` left it, decoded: it may hold a "/"."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value)

    def to_string(self, value: str) -> str:
        return _encoded(value)


register_url_convertor("segment", SegmentConvertor())


def _encoded(segment: str) -> str:
    return segment.replace("%", "%25").replace("/", "%2F")


class RawSegments:
    """ASGI middleware: the path of a SKU route is rebuilt from the raw path, each segment
    decoded and then re-encoded in its "%" and "/" only (for `{name:segment}` to decode)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if isinstance(raw, bytes) and _SKU_PATHS.match(raw):
            segments = raw.split(b"?", 1)[0].split(b"/")
            path = "/".join(
                _encoded(unquote_to_bytes(s).decode(errors="replace")) for s in segments
            )
            scope = {**scope, "path": path}
        await self.app(scope, receive, send)


SKU_PARAM = "{sku:segment}"  # a SKU in a route's path, "/" percent-encoded
CHANNEL_PARAM = "{channel_id:segment}"  # a channel id in a path RawSegments rebuilds
