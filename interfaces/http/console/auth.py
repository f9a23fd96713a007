"""Who may use the console: the login with an API token, the session cookie, each page's
scope, the CSRF check of every POST, and the logout.

With `[[api_tokens]]` configured a page needs a session opened by logging in with one of them,
whose digest is checked against the tokens configured now on every request, and the scope the
JSON API's equivalent route needs. With none (the loopback demo) the console is open, and a
session is opened on the first page all the same: its forms carry the CSRF field too.

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it)
and Secure when the console is served over https."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from infrastructure.config import ApiToken
from infrastructure.console_sessions import SESSION_SECONDS, Session

if TYPE_CHECKING:
    from interfaces.http.console.base import Console

COOKIE = "invsync_console"
LOGIN = "/console/login"
HOME = "/console/"


def token_of(tokens: Sequence[ApiToken], digest: str | None) -> ApiToken | None:
    """The configured token whose SHA-256 is `digest`, compared with every one in constant
    time (as the API's bearer check does), or None."""
    found = None
    for token in tokens:
        if digest is not None and hmac.compare_digest(digest, token.sha256):
            found = token
    return found


def may(token: ApiToken | None, scope: str | None) -> bool:
    """Whether `token` (None: the open console) holds `scope`; admin holds every scope."""
    if token is None or scope is None:
        return True
    return scope in token.scopes or "admin" in token.scopes


async def admit(console: Console, request: Request, scope: str | None) -> Session | Response:
    """The request's session, with `request.state.session` and `.token` (the token's name, who
    did it) set; or the answer instead: the login for a page, a 403 page for an action or a
    token without the scope."""
    if not console.api.tokens:
        session = await current(console, request)
        request.state.session = session
        return session
    found = await run_in_threadpool(console.sessions.get, request.cookies.get(COOKIE))
    token = token_of(console.api.tokens, found.token if found is not None else None)
    if found is None or token is None:
        return _logged_out(console, request)
    request.state.session, request.state.token = found, token.name
    if not may(token, scope):
        return console.refuse(
            request, 403, "Not allowed", f"The token {token.name!r} lacks the {scope!r} scope."
        )
    return found


async def current(console: Console, request: Request) -> Session:
    """The session the request's cookie names, or a new one holding no token."""
    found = await run_in_threadpool(console.sessions.get, request.cookies.get(COOKIE))
    if found is None:
        return await run_in_threadpool(console.sessions.open, None)
    return found


def _logged_out(console: Console, request: Request) -> Response:
    if request.method == "GET":
        return RedirectResponse(LOGIN, status_code=303)
    return console.refuse(request, 403, "Logged out", "Your session has ended: log in again.")


async def checked_form(console: Console, request: Request, session: Session) -> Response | None:
    """None when the POSTed form carries the session's CSRF secret (kept as
    `request.state.form`), else the 403 page refusing it."""
    form = await request.form()
    request.state.form = form
    sent = form.get("csrf")
    if isinstance(sent, str) and hmac.compare_digest(sent.encode(), session.csrf.encode()):
        return None
    return console.refuse(
        request,
        403,
        "Form refused",
        "This form did not come from this console session (it is stale or forged): "
        "reload the page and try again.",
    )


def with_cookie(request: Request, response: Response, session: Session) -> Response:
    """`response`, setting the session's cookie when the request did not carry it already."""
    if request.cookies.get(COOKIE) != session.id:
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


def auth_routes(console: Console) -> list[BaseRoute]:
    """The login form, logging in, and logging out."""
    routes = _Login(console)
    return [
        Route(LOGIN, routes.form, methods=["GET"]),
        Route(LOGIN, routes.login, methods=["POST"]),
        Route("/console/logout", console.action(routes.logout, None), methods=["POST"]),
    ]


class _Login:
    def __init__(self, console: Console) -> None:
        self._console = console

    async def form(self, request: Request) -> Response:
        """The login form, under a session of its own that holds no token yet: the form's CSRF
        secret, so another site cannot log this browser in with a token of its choosing."""
        if not self._console.api.tokens:
            return RedirectResponse(HOME, status_code=303)
        session = await current(self._console, request)
        request.state.session = session
        return with_cookie(request, self._console.render(request, "login.html"), session)

    async def login(self, request: Request) -> Response:
        """A valid token opens a new session (a new id) holding it; any other is refused 401."""
        console = self._console
        before = await run_in_threadpool(console.sessions.get, request.cookies.get(COOKIE))
        if before is None:
            return await self.form(request)  # the form's session expired: show a fresh one
        request.state.session = before
        refusal = await checked_form(console, request, before)
        if refusal is not None:
            return refusal
        token = _token(console, request.state.form.get("token"))
        if token is None:
            error = "That token is not valid."
            return console.render(request, "login.html", 401, error=error)
        await run_in_threadpool(console.sessions.end, before.id)
        session = await run_in_threadpool(console.sessions.open, token.sha256)
        return with_cookie(request, RedirectResponse(HOME, status_code=303), session)

    def logout(self, request: Request) -> Response:
        """End the session everywhere, and forget its cookie."""
        self._console.sessions.end(request.state.session.id)
        response = RedirectResponse(LOGIN if self._console.api.tokens else HOME, status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response


def _token(console: Console, value: object) -> ApiToken | None:
    if not isinstance(value, str) or not value.strip():
        return None
    digest = hashlib.sha256(value.strip().encode()).hexdigest()
    return token_of(console.api.tokens, digest)
