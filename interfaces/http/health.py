"""`/healthz` (the process answers), `/readyz` (what it depends on answers) and `/metrics`."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.errors import InvsyncError
from infrastructure.config import ApiToken
from infrastructure.settings import HttpLimits
from interfaces.http.api import Probe
from interfaces.http.problems import problem


def health_routes(probes: Mapping[str, Probe]) -> list[Route]:
    """`/healthz`, and `/readyz` running each named probe."""

    def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def readyz(request: Request) -> Response:
        found = {name: _failure(probe) for name, probe in probes.items()}
        failures = [why for why in found.values() if why is not None]
        checks = {name: "ok" if why is None else why for name, why in found.items()}
        if failures:
            return problem(503, "Not ready", "; ".join(failures), checks=checks)
        return JSONResponse({"status": "ready", "checks": checks})

    return [Route("/healthz", healthz), Route("/readyz", readyz)]


def _failure(probe: Probe) -> str | None:
    """Why the probe's dependency is not ready, or None when it is."""
    try:
        probe()
    except InvsyncError as error:
        return str(error)
    return None


def metrics_route(tokens: Sequence[ApiToken], limits: HttpLimits) -> Route:
    """`/metrics`; with tokens configured and `limits.metrics_scope` set, only for a token
    holding that scope (or admin)."""

    def metrics(request: Request) -> Response:
        if limits.metrics_scope and tokens:
            refusal = _metrics_refusal(request, tokens, limits.metrics_scope)
            if refusal is not None:
                return refusal
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics)


def _metrics_refusal(request: Request, tokens: Sequence[ApiToken], scope: str) -> Response | None:
    """None when the request carries a token with `scope` (or admin), else the refusal."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    digest = hashlib.sha256(value.strip().encode()).hexdigest()
    found = None
    for token in tokens:  # every one, in constant time, as the API's own check does
        if hmac.compare_digest(digest, token.sha256):
            found = token
    if scheme.lower() != "bearer" or not value or found is None:
        response = problem(401, "Unauthorized", "/metrics needs Authorization: Bearer <token>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="invsync"'
        return response
    if scope not in found.scopes and "admin" not in found.scopes:
        return problem(403, "Forbidden", f"token {found.name!r} lacks the {scope!r} scope")
    return None
