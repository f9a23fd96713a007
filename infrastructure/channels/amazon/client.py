"""SP-API calls as the Amazon gateway makes them: each with a current LWA access token (see
`lwa.py`), each failure one of the errors the pushers act on.

A 429 may name the operation's rate in `x-amzn-RateLimit-Limit`, but the models declare no
headers on 429 and Amazon often sends none: the wait for the bucket's next token is one over the
rate named, or over the operation's documented rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from infrastructure.channels.amazon.lwa import AccessTokens, LwaCredentials
from infrastructure.channels.gateway import ChannelAuthFailed, ChannelError
from infrastructure.channels.http import exchange, json_of


class SpApi:
    """One seller authorisation's SP-API calls.

    Parameters:
        base_url: the SP-API regional endpoint.
        credentials, token_url, refresh_margin: the LWA tokens' (see `AccessTokens`).
        timeout: seconds for each HTTP exchange.
        transport: an httpx transport, for tests.
        rates: each operation's documented rate (calls a second), for a 429 that names none.
    """

    def __init__(
        self,
        base_url: str,
        credentials: LwaCredentials,
        *,
        token_url: str,
        timeout: float,
        rates: Mapping[str, float],
        transport: httpx.BaseTransport | None = None,
        refresh_margin: float = 60.0,
    ) -> None:
        self.rates = rates
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "invsync (Language=Python)", "Accept": "application/json"},
        )
        self._tokens = AccessTokens(
            self._client, token_url, credentials, refresh_margin=refresh_margin
        )

    def call(self, operation: str, method: str, path: str, **options: Any) -> httpx.Response:
        """One call of an SP-API operation with a current access token; a refused token is
        replaced once, since Amazon may have ended it before the expiry it announced.

        Raises:
            Throttled: SP-API or LWA answered 429.
            ChannelUnavailable: SP-API or LWA could not be reached, timed out or answered 5xx.
            ChannelAuthFailed: LWA refused the credentials, or SP-API refused a fresh token.
        """
        for _ in range(2):
            token = self._tokens.current()
            headers = {"x-amz-access-token": token}
            response = self.transfer(operation, method, path, headers=headers, **options)
            if response.status_code not in (401, 403):
                return response
            self._tokens.forget(token)
        raise ChannelAuthFailed(
            f"SP-API refused a fresh access token for {path} ({describe(response)}): check "
            "that the seller's authorisation grants the Listings and Feeds roles"
        )

    def call_json(self, operation: str, method: str, path: str, **options: Any) -> dict[str, Any]:
        """`call`, answered with a JSON object.

        Raises:
            ChannelError: SP-API refused the call (4xx) or answered no JSON object; and as `call`.
        """
        response = self.call(operation, method, path, **options)
        answer = json_of(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise ChannelError(f"SP-API refused {method} {path}: {describe(response)}")
        return answer

    def transfer(self, operation: str, method: str, url: str, **options: Any) -> httpx.Response:
        """One HTTP exchange for `operation` (a presigned document URL's too); throttling, 5xx
        and network failures are errors, as in `call`."""
        return exchange(
            self._client,
            f"SP-API ({operation})",
            method,
            url,
            retry_after=lambda throttled: bucket_wait(throttled, self.rates[operation]),
            **options,
        )

    def close(self) -> None:
        self._client.close()


def bucket_wait(response: httpx.Response, documented: float) -> float:
    """Seconds until the operation's bucket holds a token again: one over the rate the 429
    names, or over the operation's documented rate when it names none."""
    try:
        rate = float(response.headers.get("x-amzn-ratelimit-limit", ""))
    except ValueError:
        rate = 0.0
    return 1.0 / (rate if rate > 0 else documented)


def objects(value: object) -> list[dict[str, Any]]:
    """The objects in a list of an answer (issues, items); none if it is no list."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def required(answer: Mapping[str, Any], key: str) -> str:
    """A text `key` the answer must hold.

    Raises:
        ChannelError: SP-API answered without it.
    """
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise ChannelError(f"SP-API answered without {key}: {answer}")
    return value


def describe(response: httpx.Response) -> str:
    """SP-API errors are `{"errors": [{"code", "message", "details"}]}`."""
    body = json_of(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return f"HTTP {response.status_code} {first.get('code')}: {first.get('message', '')}"
    return f"HTTP {response.status_code}"
