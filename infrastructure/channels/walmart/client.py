"""Walmart Marketplace API calls as the Walmart gateway makes them (CHANNELS.md §5).

Every call carries a current access token (`WM_SEC.ACCESS_TOKEN`), `WM_SVC.NAME` and a
`WM_QOS.CORRELATION_ID` of its own. Tokens come from `POST /v3/token` (Basic client credentials,
`grant_type=client_credentials`), live 900 s, and are kept until a minute before they expire
(`CachedToken`); a call refused with 401 gets a fresh token once, since Walmart may end one
early. A 429 waits for `Retry-After`, else until `X-Next-Replenishment-Time` (epoch
milliseconds: when the API's token bucket refills), else a second.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from infrastructure.channels.gateway import ChannelAuthFailed, ChannelError
from infrastructure.channels.http import exchange, json_object, json_of
from infrastructure.channels.tokens import CachedToken

SERVICE_NAME = "Walmart Marketplace"
TOKEN_PATH = "/v3/token"


class WalmartApi:
    """One seller's API client: its calls, each with a current token.

    Parameters:
        base_url: `https://marketplace.walmartapis.com` (or a sandbox's URL).
        client_id, client_secret: the API client the seller created.
        timeout: seconds for each HTTP exchange.
        transport: an httpx transport, for tests.
        clock: wall-clock seconds (`X-Next-Replenishment-Time` is a time), for tests.
        turn: takes the channel's turn before a token is fetched (see `CachedToken`).
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        turn: Callable[[], None] = lambda: None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"WM_SVC.NAME": SERVICE_NAME, "Accept": "application/json"},
        )
        self._clock = clock
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._basic = f"Basic {basic}"
        self.tokens = CachedToken(self._fetch, turn=turn)  # POST /v3/token counts as a call

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One call with a current token; a token refused (401) is replaced once.

        Raises:
            Throttled: Walmart answered 429.
            ChannelUnavailable: Walmart could not be reached, timed out or answered 5xx.
            ChannelAuthFailed: Walmart refused the client credentials, or a fresh token.
        """
        for _ in range(2):
            token = self.tokens.current()
            response = self._exchange(method, path, {"WM_SEC.ACCESS_TOKEN": token}, options)
            if response.status_code != 401:
                return response
            self.tokens.forget(token)
        raise ChannelAuthFailed(
            f"Walmart refused a fresh access token for {method} {path} ({describe(response)})"
        )

    def call_json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """`call`, answered with a JSON object.

        Raises:
            ChannelError: Walmart refused the call (4xx) or answered no JSON object; and as
                `call`.
        """
        response = self.call(method, path, **options)
        answer = json_of(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise ChannelError(f"Walmart refused {method} {path}: {describe(response)}")
        return answer

    def close(self) -> None:
        self._client.close()

    def _fetch(self) -> tuple[str, float]:
        headers = {"Authorization": self._basic}
        form = {"grant_type": "client_credentials"}
        response = self._exchange("POST", TOKEN_PATH, headers, {"data": form})
        body = json_object(response)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise ChannelAuthFailed(
                f"Walmart refused the client credentials ({describe(response)}): check "
                "client_id and client_secret"
            )
        return token, float(lifetime) if isinstance(lifetime, int | float) else 900.0

    def _exchange(
        self, method: str, path: str, headers: dict[str, str], options: dict[str, Any]
    ) -> httpx.Response:
        extra = dict(options)
        headers = {**extra.pop("headers", {}), **headers}
        headers["WM_QOS.CORRELATION_ID"] = str(uuid.uuid4())  # unique per call, retries too
        return exchange(
            self._client,
            "Walmart",
            method,
            path,
            retry_after=lambda throttled: retry_after(throttled, self._clock()),
            headers=headers,
            **extra,
        )


def retry_after(response: httpx.Response, now: float) -> float:
    """Seconds a 429 asks us to wait: `Retry-After`, else until `X-Next-Replenishment-Time`
    (epoch milliseconds), else one."""
    try:
        return max(float(response.headers.get("retry-after", "")), 0.0)
    except ValueError:
        pass
    try:
        refill = float(response.headers.get("x-next-replenishment-time", "")) / 1000
    except ValueError:
        return 1.0
    return min(max(refill - now, 0.0), 3600.0)


def describe(response: httpx.Response) -> str:
    """Walmart errors are `{"errors": [{"code", "description" or "info"}]}` (or `"error"`)."""
    body = json_of(response)
    errors = None
    if isinstance(body, dict):
        errors = body.get("errors") or body.get("error")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        text = first.get("description") or first.get("info") or first.get("message") or ""
        return f"HTTP {response.status_code} {first.get('code')}: {text}"
    return f"HTTP {response.status_code}"
