"""`POST /api/v1/channels/{id}/reconcile` (admin) starts a run of the channel now, its orders
then its levels unless the body says otherwise, and answers 202; `GET` on the same path shows
the latest runs with their progress and counts."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infrastructure.reconcile.runs import Run
from infrastructure.reconcile.service import NotReconciled, Reconciliation
from interfaces.http.inputs import KnownSku
from interfaces.http.problems import invalid_fields, problem

PATH = "/api/v1/channels/{channel_id}/reconcile"
MAX_SKUS = 10_000  # a larger list is a catalogue run: name none


class ReconcileIn(BaseModel):
    """What a run reads: `skus` (none: every SKU the channel lists) and `what`."""

    model_config = ConfigDict(extra="forbid")

    skus: list[KnownSku] | None = Field(default=None, min_length=1, max_length=MAX_SKUS)
    what: Literal["orders", "levels", "both"] = "both"


def reconcile_routes(reconciliation: Reconciliation | None) -> list[Route]:
    """The routes; `reconciliation` (None only to list the routes) serves them."""

    async def start(request: Request) -> Response:
        try:
            wanted = ReconcileIn.model_validate_json(await request.body() or b"{}")
        except ValidationError as error:
            return problem(422, "Invalid reconciliation", invalid_fields(error))
        channel_id = request.path_params["channel_id"]
        by = getattr(request.state, "token", None) or "api"
        try:
            run = await run_in_threadpool(_started, reconciliation, channel_id, wanted, by)
        except NotReconciled as error:
            return problem(404, "Channel not reconciled", str(error))
        location = PATH.format(channel_id=channel_id)
        return JSONResponse(run_document(run), status_code=202, headers={"Location": location})

    async def latest(request: Request) -> Response:
        channel_id = request.path_params["channel_id"]
        assert reconciliation is not None
        if not reconciliation.reconciles(channel_id):
            return problem(404, "Channel not reconciled", f"channel {channel_id!r} is not")
        found = await run_in_threadpool(reconciliation.latest, channel_id)
        return JSONResponse(
            {"channel_id": channel_id, "runs": [run_document(run) for run in found]}
        )

    return [Route(PATH, start, methods=["POST"]), Route(PATH, latest, methods=["GET"])]


def _started(
    reconciliation: Reconciliation | None, channel_id: str, wanted: ReconcileIn, by: str
) -> Run:
    assert reconciliation is not None
    run_id = reconciliation.request_check(channel_id, wanted.skus, what=wanted.what, by=by)
    run = reconciliation.run(run_id)
    assert run is not None
    return run


def run_document(run: Run) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": run.id,
        "channel_id": run.channel_id,
        "what": run.what,
        "scope": run.scope,
        "skus": run.skus,
        "state": run.state,
        "progress": {"step": run.step, "steps": run.steps},
        "counts": asdict(run.counts),
        "requested_at": iso(run.requested_at),
        "requested_by": run.requested_by,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "error": run.error,
    }
