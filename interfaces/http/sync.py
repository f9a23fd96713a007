"""`GET /api/v1/channels/{id}/sync`: how far a channel is behind the ledger, whether it may be
called (its breaker, a pause it asked for), how fast it followed over the last hour (accepted
pushes only), and what it refused.

The answer carries the fields the published document (`ChannelSync`) lists: what the status
knows beyond them (refusals, SKUs held back) is served once the document lists it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from interfaces.http.problems import problem
from interfaces.http.schemas import ChannelSync

Status = Callable[[str], dict[str, Any] | None]


def sync_routes(status: Status | None) -> list[Route]:
    """The route; `status` (None only to list the routes) answers it."""

    async def sync(request: Request) -> Response:
        channel_id = request.path_params["channel_id"]
        found = await run_in_threadpool(status, channel_id) if status is not None else None
        if found is None:
            return problem(404, "Unknown channel", f"no channel {channel_id!r} is pushed to")
        return JSONResponse({k: v for k, v in found.items() if k in ChannelSync.model_fields})

    return [Route("/api/v1/channels/{channel_id}/sync", sync, methods=["GET"])]
