"""eBay OAuth access tokens (CHANNELS.md §4.3): an application token (client-credentials grant)
for the Notification API's public keys, a user token (refresh-token grant, the seller's consent)
for the Sell APIs. Both come from `/identity/v1/oauth2/token` under the channel's API, with the
application's client id and secret as HTTP Basic credentials, and last about two hours: one token
serves every call until shortly before it expires, so the token endpoint's daily limits (1,000
client-credentials grants) are never near.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from infrastructure.channels.gateway import ChannelAuthFailed
from infrastructure.channels.http import exchange, json_object, oauth_error
from infrastructure.channels.tokens import CachedToken

TOKEN_PATH = "/identity/v1/oauth2/token"
API_SCOPE = "https://api.ebay.com/oauth/api_scope"
INVENTORY_SCOPE = "https://api.ebay.com/oauth/api_scope/sell.inventory"
FULFILLMENT_SCOPE = "https://api.ebay.com/oauth/api_scope/sell.fulfillment"


def application_grant() -> dict[str, str]:
    """The form of a client-credentials grant for the public scope."""
    return {"grant_type": "client_credentials", "scope": API_SCOPE}


def user_grant(refresh_token: str) -> dict[str, str]:
    """The form of a refresh-token grant for the Inventory and Fulfillment APIs."""
    scopes = f"{INVENTORY_SCOPE} {FULFILLMENT_SCOPE}"
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": scopes}


class EbayTokens(CachedToken):
    """The current access token of one grant, fetched when needed.

    Parameters:
        client: the HTTP client to call the token endpoint with.
        api_base_url: the channel's API (`https://api.ebay.com`).
        client_id, client_secret: the application's OAuth client.
        grant: the token request's form (`application_grant()` or `user_grant(...)`).
        refresh_margin: seconds before its expiry a token is no longer used.
        clock: monotonic seconds, for tests.
        turn: takes the channel's turn before each fetch (see `CachedToken`).

    `current()` raises `ChannelAuthFailed` (eBay refused the client credentials or the
    refresh token), `Throttled` (429) or `ChannelUnavailable` (unreachable, timed out, 5xx).
    """

    def __init__(
        self,
        client: httpx.Client,
        api_base_url: str,
        client_id: str,
        client_secret: str,
        grant: dict[str, str],
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        turn: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(self._fetch, refresh_margin=refresh_margin, clock=clock, turn=turn)
        self._client, self._url = client, api_base_url.rstrip("/") + TOKEN_PATH
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._grant = grant

    def _fetch(self) -> tuple[str, float]:
        response = exchange(
            self._client,
            "eBay OAuth",
            "POST",
            self._url,
            retry_after=lambda _: 1.0,  # eBay names no wait on a 429
            data=self._grant,
            auth=self._auth,
        )
        body = json_object(response)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if response.status_code != 200 or not isinstance(token, str):
            raise ChannelAuthFailed(
                f"eBay OAuth refused the {self._grant['grant_type']} grant "
                f"({oauth_error(response, body)}): check client_id, client_secret and, for the "
                "Sell APIs, have the seller consent again for a new refresh_token"
            )
        return token, float(lifetime) if isinstance(lifetime, int | float) else 7200.0
