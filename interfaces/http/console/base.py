"""What every console page shares: the `Page` a module declares, and the `Console` its routes
are built with (admission, CSRF, rendering with the security headers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute
from starlette.templating import Jinja2Templates

from infrastructure.console_sessions import ConsoleSessions
from interfaces.http.api import Api
from interfaces.http.console import auth

Handler = Callable[[Request], Response]
Endpoint = Callable[[Request], Any]

# Nothing inline may run or style: a name a channel sent that slipped past escaping still
# could not execute, and no page may be framed (clickjacking an action's button).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show stock and payloads: not for shared caches
}


@dataclass(frozen=True)
class Page:
    """A page in the navigation: its `title`, the `path` the link opens, and `routes`, which
    builds its routes (the page's own and its actions') over the console."""

    title: str
    path: str
    routes: Callable[[Console], list[BaseRoute]]


def templates() -> Jinja2Templates:
    """The package's templates, autoescaped whatever their file name (HTML, SVG alike)."""
    env = Environment(loader=PackageLoader("interfaces.http.console"), autoescape=True)
    return Jinja2Templates(env=env)


@dataclass(frozen=True)
class Console:
    """The parts the pages call (`api`), the sessions, the templates and the navigation."""

    api: Api
    sessions: ConsoleSessions
    templates: Jinja2Templates
    nav: Sequence[Page]

    def view(self, handler: Handler, scope: str | None = "read") -> Endpoint:
        """`handler` as a GET page for sessions holding `scope` (None: any admitted one)."""
        return self._guarded(handler, scope, post=False)

    def action(self, handler: Handler, scope: str | None) -> Endpoint:
        """`handler` as a POST form's target, its CSRF field checked before it runs; the
        parsed form is `request.state.form`."""
        return self._guarded(handler, scope, post=True)

    def _guarded(self, handler: Handler, scope: str | None, *, post: bool) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            admitted = await auth.admit(self, request, scope)
            if isinstance(admitted, Response):
                return admitted
            if post:
                refusal = await auth.checked_form(self, request, admitted)
                if refusal is not None:
                    return refusal
            response = await run_in_threadpool(handler, request)
            return auth.with_cookie(request, response, admitted)

        return endpoint

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        """`template` with `context`, the navigation and the session's CSRF field."""
        session = getattr(request.state, "session", None)
        csrf = session.csrf if session is not None else ""
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                **context,
                "nav": self.nav,
                "who": getattr(request.state, "token", None),
                "logins": bool(self.api.tokens),
                "csrf_field": lambda: _hidden("csrf", csrf),
            },
            status_code=status,
        )
        response.headers.update(SECURITY_HEADERS)
        return response

    def refuse(self, request: Request, status: int, title: str, detail: str) -> Response:
        """A page saying clearly why the request was refused, with `status`."""
        return self.render(request, "refused.html", status, title=title, detail=detail)

    @staticmethod
    def redirect(path: str) -> Response:
        """Where an action sends the browser next (303: the next request is a GET)."""
        return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def _hidden(name: str, value: str) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(name, escape(value))
