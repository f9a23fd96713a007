"""The operator's console: server-rendered HTML pages over the parts the JSON API calls.

How it is laid out, and how to add a page:

- `pages.PAGES` lists the pages in the order the navigation shows them. A page is one module
  here holding `PAGE = Page(title, path, routes)` (`routes(console)` returns its Starlette
  routes), one template in `templates/` extending `base.html`, and one line in `PAGES`.
- A route is thin: wrap its handler with `console.view(handler, scope)` (GET pages) or
  `console.action(handler, scope)` (POST forms). The wrapper admits the session (a login when
  `[[api_tokens]]` are configured, the token's scope: `read` for pages, `write` or `admin` as
  the JSON API's equivalent route needs), checks the form's CSRF field on every POST, and runs
  the handler in a thread (it may call the blocking stores). The handler parses, calls what
  the API calls (`console.api`), and answers `console.render(request, "page.html", ...)` or a
  303 redirect (`console.redirect(path)`) after an action. Refuse with `console.refuse`.
- Every form that POSTs carries `{{ csrf_field() }}`; templates are autoescaped (never mark
  channel data `|safe`), and the Content-Security-Policy allows no inline script or style.
- Static files (`static/`) are package data, served under `/console/static/`.

Sessions are `infrastructure.console_sessions`'s (why Redis: see there); `auth` is the login,
logout and the admission every page goes through."""

from interfaces.http.console.pages import console_routes

__all__ = ["console_routes"]
