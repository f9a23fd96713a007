"""Login with Amazon (LWA) access tokens for SP-API calls (CHANNELS.md §3.3).

An SP-API call carries a short-lived LWA access token (one hour) in `x-amz-access-token`; the
token comes from the LWA token endpoint in exchange for the seller's long-lived refresh token and
the application's client id and secret. One token serves every call until shortly before it
expires, so a gateway asks LWA once an hour, not once a call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from infrastructure.channels.gateway import ChannelAuthFailed
from infrastructure.channels.http import exchange, json_object, oauth_error
from infrastructure.channels.tokens import CachedToken


@dataclass(frozen=True)
class LwaCredentials:
    """An application's LWA client and one seller's authorisation of it."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)


class AccessTokens(CachedToken):
    """The current LWA access token of one seller authorisation, fetched when needed.

    Parameters:
        client: the HTTP client to call `token_url` with.
        token_url: LWA's token endpoint.
        credentials: the application's client id and secret and the seller's refresh token.
        refresh_margin: seconds before its expiry a token is no longer used.
        clock: monotonic seconds, for tests.

    `current()` raises `ChannelAuthFailed` (LWA refused the client credentials or the
    refresh token), `Throttled` (429) or `ChannelUnavailable` (unreachable, timed out, 5xx).
    """

    def __init__(
        self,
        client: httpx.Client,
        token_url: str,
        credentials: LwaCredentials,
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(self._fetch, refresh_margin=refresh_margin, clock=clock)
        self._client, self._url = client, token_url
        self._form = {
            "grant_type": "refresh_token",
            "refresh_token": credentials.refresh_token,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        }

    def _fetch(self) -> tuple[str, float]:
        # LWA names no wait on a 429: a second, as before any retry of ours.
        response = exchange(
            self._client,
            "Login with Amazon",
            "POST",
            self._url,
            retry_after=lambda _: 1.0,
            data=self._form,
        )
        body = json_object(response)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if response.status_code != 200 or not isinstance(token, str):
            raise ChannelAuthFailed(
                f"Login with Amazon refused the refresh token ({oauth_error(response, body)}): "
                "check the client id and secret, and have the seller authorise the app again"
            )
        return token, float(lifetime) if isinstance(lifetime, int | float) else 3600.0
