"""How invsync proves its WooCommerce API key (CHANNELS.md §2.2, WooCommerce's REST
authentication): over HTTPS, HTTP Basic with the consumer key and secret; over plain HTTP, where
WooCommerce does not look at Basic credentials at all, one-legged OAuth 1.0a with the signature
in the query string, as `WC_REST_Authentication` reads it. Signing is oauthlib's."""

from __future__ import annotations

from collections.abc import Generator

import httpx
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_TYPE_QUERY,
    Client,
)


class OAuth1Query(httpx.Auth):
    """Signs each request with one-legged OAuth 1.0a (no token), HMAC-SHA256, the `oauth_*`
    parameters in the query. A JSON body is not signed: OAuth signs form bodies only, and
    WooCommerce reads its parameters from the query and form fields."""

    def __init__(self, consumer_key: str, consumer_secret: str) -> None:
        self._client = Client(
            consumer_key,
            client_secret=consumer_secret,
            signature_method=SIGNATURE_HMAC_SHA256,
            signature_type=SIGNATURE_TYPE_QUERY,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # A fresh nonce and timestamp each time: WooCommerce refuses a nonce it has seen.
        signed, _, _ = self._client.sign(str(request.url), request.method)
        request.url = httpx.URL(signed)
        yield request


def api_auth(base_url: str, consumer_key: str, consumer_secret: str) -> httpx.Auth:
    """The credentials WooCommerce accepts at `base_url`.

    Raises:
        ValueError: the URL is neither http:// nor https://.
    """
    scheme = httpx.URL(base_url).scheme
    if scheme == "https":
        return httpx.BasicAuth(consumer_key, consumer_secret)
    if scheme == "http":
        return OAuth1Query(consumer_key, consumer_secret)
    raise ValueError(
        f"a WooCommerce store's api_base_url starts with https:// (or http://), not {base_url!r}"
    )
