"""`/api/v1/projections`: where each projection stands, and rebuilds from the whole ledger
(`POST /api/v1/projections/{name}/rebuild` answers 202 at once; the rebuild runs on its own and
`GET` on the same path follows it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infrastructure.projections import AvailabilityRunner
from infrastructure.projections.availability import NAME
from infrastructure.projections.jobs import (
    RebuildJob,
    RebuildJobs,
    RebuildRunning,
    UnknownProjection,
)
from interfaces.http.problems import problem


@dataclass(frozen=True)
class Projections:
    """The running projection and the rebuilds the API may start."""

    runner: AvailabilityRunner
    jobs: RebuildJobs

    def positions(self) -> dict[str, Any]:
        ledger = self.runner.app.recorder.max_notification_id() or 0
        folded = self.runner.view.max_tracking_id(self.runner.app.name) or 0
        return {NAME: {"position": folded, "ledger_position": ledger, "lag": ledger - folded}}

    def wait_for_ledger(self, timeout: float) -> bool:
        """Wait until the projection has folded everything recorded so far (read your writes)."""
        return self.runner.wait(self.runner.app.recorder.max_notification_id() or 0, timeout)


def projection_routes(projections: Projections | None) -> list[Route]:
    """The routes; `projections` (None only to list the routes) serves them."""

    def listing(request: Request) -> Response:
        return JSONResponse({"projections": cast(Projections, projections).positions()})

    def start(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            job = cast(Projections, projections).jobs.start(name)
        except UnknownProjection as error:
            return problem(404, "Unknown projection", str(error))
        except RebuildRunning as error:
            return problem(409, "Rebuild running", str(error))
        follow = f"/api/v1/projections/{name}/rebuild"
        return JSONResponse(job_document(job), status_code=202, headers={"Location": follow})

    def follow(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            job = cast(Projections, projections).jobs.last(name)
        except UnknownProjection as error:
            return problem(404, "Unknown projection", str(error))
        if job is None:
            return problem(404, "No rebuild", f"{name} has not been rebuilt since the start")
        return JSONResponse(job_document(job))

    return [
        Route("/api/v1/projections", listing, methods=["GET"]),
        Route("/api/v1/projections/{name}/rebuild", start, methods=["POST"]),
        Route("/api/v1/projections/{name}/rebuild", follow, methods=["GET"]),
    ]


def job_document(job: RebuildJob) -> dict[str, Any]:
    report = job.report
    return {
        "projection": job.projection,
        "state": "running" if job.running else ("failed" if job.error else "done"),
        "started_at": job.started_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "progress": {"position": job.done, "of": job.aim},
        "error": job.error,
        "report": None
        if report is None
        else {
            "events": report.events,
            "position": report.position,
            "seconds": round(report.seconds, 3),
            "rows": {t: {"live": live, "rebuilt": new} for t, (live, new) in report.rows.items()},
            "differences": [
                {"sku": d.sku, "channel_id": d.channel_id, "live": d.live, "rebuilt": d.rebuilt}
                for d in report.differences
            ],
        },
    }
