"""Bearer tokens with scopes for the internal API. Tokens are configured as SHA-256 digests, so
the file never holds a usable secret; `read` may GET, `write` may change stock, `admin` may
operate the intake (dead letters, parked deliveries) and start reconciliation runs."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from infrastructure.config import ApiToken
from interfaces.http.problems import problem

# Paths outside the API answer anyone: channels sign their webhooks, probes must be reachable.
_ADMIN_PREFIXES = ("/api/v1/dead-letters", "/api/v1/deliveries", "/api/v1/projections")
# Starting work the service does on its own schedule (a reconciliation run) is an operator's.
_ADMIN_ACTIONS = ("/reconcile",)
# The API's description holds no data, and clients and tools fetch it before they hold a token.
_PUBLIC_PATHS = frozenset({"/api/v1/openapi.json"})


def required_scope(method: str, path: str) -> str | None:
    if not path.startswith("/api/") or path in _PUBLIC_PATHS:
        return None
    if path.startswith(_ADMIN_PREFIXES):
        return "admin"
    if method not in ("GET", "HEAD") and path.endswith(_ADMIN_ACTIONS):
        return "admin"
    return "read" if method in ("GET", "HEAD") else "write"


class BearerAuth:
    """ASGI middleware; with no tokens configured it lets every request through (the embedded
    demo, which then listens on loopback only)."""

    def __init__(self, app: ASGIApp, tokens: Sequence[ApiToken]) -> None:
        self.app = app
        self.tokens = tuple(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens:
            await self.app(scope, receive, send)
            return
        needed = required_scope(scope["method"], scope["path"])
        if needed is None:
            await self.app(scope, receive, send)
            return
        token = self._token(dict(scope["headers"]).get(b"authorization", b""))
        if token is None:
            response = problem(401, "Unauthorized", "send Authorization: Bearer <token>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="invsync"'
        elif needed not in token.scopes and "admin" not in token.scopes:
            response = problem(403, "Forbidden", f"token {token.name!r} lacks the {needed!r} scope")
        else:
            state = scope.setdefault("state", {})
            state["token"] = token.name  # who did it, for the record
            # Which token exactly (names may repeat, e.g. while rotating): what a client's own
            # records, such as its Idempotency-Keys, belong to. The digest's start names it
            # without giving away anything usable.
            state["token_id"] = f"{token.name}:{token.sha256[:16]}"
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    def _token(self, header: bytes) -> ApiToken | None:
        scheme, _, value = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        digest = hashlib.sha256(value.strip().encode()).hexdigest()
        # Compare with every token, in constant time, so timing reveals nothing.
        found = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.sha256):
                found = token
        return found
