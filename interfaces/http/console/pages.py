"""The console's pages, in the order of its navigation (add a page here: see the package's
docstring), and the routes that serve them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from infrastructure.console_sessions import ConsoleSessions
from interfaces.http.api import Api
from interfaces.http.console import discrepancies, intake, oversells, overview, rules, runs, skus
from interfaces.http.console.auth import HOME, auth_routes
from interfaces.http.console.base import Console, Page, templates

PAGES: tuple[Page, ...] = (
    overview.PAGE,
    skus.PAGE,
    discrepancies.PAGE,
    intake.PAGE,
    oversells.PAGE,
    runs.PAGE,
    rules.PAGE,
)


def console_routes(api: Api, sessions: ConsoleSessions) -> list[BaseRoute]:
    """`/` (to the console), the login and logout, every page's routes and the static files."""
    console = Console(api, sessions, templates(), PAGES)
    routes: list[BaseRoute] = [Route("/", _home, methods=["GET"]), *auth_routes(console)]
    for page in PAGES:
        routes += page.routes(console)
    static = StaticFiles(packages=[("interfaces.http.console", "static")])
    routes.append(Mount("/console/static", static, name="console-static"))
    return routes


async def _home(request: Request) -> Response:
    return RedirectResponse(HOME, status_code=307)
