"""One HTTP exchange with a channel's API, and the one mapping of what says the channel as a
whole cannot serve it now to the errors the pushers act on: a timeout, a network failure or a 5xx
is `ChannelUnavailable` (try again later), a 429 `Throttled` (wait), a refusal of our
credentials `ChannelAuthFailed` (a person must act). Every other answer is the caller's to read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from infrastructure.channels.gateway import ChannelAuthFailed, ChannelUnavailable, Throttled

CREDENTIALS_REFUSED = frozenset({401, 403})


def exchange(
    client: httpx.Client,
    api: str,
    method: str,
    url: str,
    *,
    retry_after: Callable[[httpx.Response], float],
    credentials_refused: Callable[[httpx.Response], str] | None = None,
    **options: Any,
) -> httpx.Response:
    """One request to `api` (its name in messages), answered unless the channel cannot serve it.

    Parameters:
        retry_after: seconds to wait after a 429, read from it as the channel documents.
        credentials_refused: the message of a 401/403 (what to check); None when the caller
            reads those itself (an expired token to replace).
        options: the request's, as `httpx.Client.request` takes them.

    Raises:
        ChannelUnavailable: the API could not be reached, timed out, or answered 5xx.
        Throttled: the API answered 429.
        ChannelAuthFailed: the API answered 401 or 403, given `credentials_refused`.
    """
    try:
        response = client.request(method, url, **options)
    except httpx.TimeoutException as error:
        raise ChannelUnavailable(f"{api} did not answer {method} {url} in time") from error
    except httpx.TransportError as error:
        raise ChannelUnavailable(f"{api} cannot be reached: {error}") from error
    status = response.status_code
    if status in CREDENTIALS_REFUSED and credentials_refused is not None:
        raise ChannelAuthFailed(credentials_refused(response))
    if status == 429:
        raise Throttled(f"{api} throttled {method} {url}", retry_after(response))
    if status >= 500:
        raise ChannelUnavailable(f"{api} answered {status} to {method} {url}")
    return response


def json_of(response: httpx.Response) -> object:
    """The answer's JSON; None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def json_object(response: httpx.Response) -> dict[str, object]:
    """The answer's body when it is a JSON object, else an empty one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def oauth_error(response: httpx.Response, body: dict[str, object]) -> str:
    """What an OAuth 2.0 token endpoint's refusal says (`{"error", "error_description"}`)."""
    if "error" in body:
        return f"HTTP {response.status_code} {body['error']}: {body.get('error_description', '')}"
    return f"HTTP {response.status_code}"
