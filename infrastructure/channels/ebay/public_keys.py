"""The Notification API's signing keys (CHANNELS.md §4.1): fetched from
`/commerce/notification/v1/public_key/{kid}` under the channel's API with an application token,
and kept an hour per key id, as eBay asks (its SDKs cache them that long).

Fetching is I/O, so verification runs off the event loop (`blocking=True`), on a connection pool
of its own with short timeouts: a slow key service holds up no push and no other channel's
webhook for long. What cannot be fetched now is `VerificationUnavailable` (503: eBay retries);
a key eBay says it has not is `SignatureInvalid`.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from cachetools import TTLCache
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from infrastructure.channels.base import SignatureInvalid, VerificationUnavailable
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.oauth import EbayTokens, application_grant
from infrastructure.channels.gateway import ChannelError
from infrastructure.channels.http import exchange, json_object

KEY_PATH = "/commerce/notification/v1/public_key/"
KEY_SECONDS = 3600.0  # eBay: cache a key about an hour
_PEM_MARKERS = re.compile(r"-----(BEGIN|END) PUBLIC KEY-----|\s")
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


@dataclass(frozen=True)
class PublicKey:
    """A signing key and the digest eBay signs with under it (`<digest>withECDSA`)."""

    key: ec.EllipticCurvePublicKey
    digest: type[hashes.HashAlgorithm]


class PublicKeys:
    """Keys by (API, key id), kept `ttl` seconds; one application token per (API, client).

    Thread-safe: verifiers run on a pool of threads. Two threads missing the same key at once
    may both fetch it; they get the same key.
    """

    def __init__(
        self,
        timeout: float = 5.0,
        ttl: float = KEY_SECONDS,
        entries: int = 64,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=2.0))
        # `timer` (seconds) decides when a key is due again: tests pass a clock they move.
        self._keys: TTLCache[tuple[str, str], PublicKey] = TTLCache(entries, ttl, timer=timer)
        self._tokens: dict[tuple[str, str], EbayTokens] = {}
        self._lock = threading.Lock()

    def key(self, channel: EbayConfig, kid: str) -> PublicKey:
        """The key `kid` names, from the cache or eBay.

        Raises:
            SignatureInvalid: eBay has no such key, or serves one we cannot use.
            VerificationUnavailable: the key (or a token to ask for it) cannot be had now.
        """
        name = (channel.api_base_url, kid)
        with self._lock:
            cached = self._keys.get(name)
        if cached is not None:
            return cached
        found = self._fetched(channel, kid)
        with self._lock:
            self._keys[name] = found
        return found

    def _fetched(self, channel: EbayConfig, kid: str) -> PublicKey:
        tokens = self._tokens_of(channel)
        url = channel.api_base_url.rstrip("/") + KEY_PATH + kid
        try:
            response = self._get(url, tokens)
        except ChannelError as error:
            raise VerificationUnavailable(f"eBay's public key {kid!r}: {error}") from None
        if response.status_code in (401, 403):
            raise VerificationUnavailable(
                f"eBay refused our application token for key {kid!r}: check client_id and "
                "client_secret"
            )
        if response.status_code != 200:
            raise SignatureInvalid(f"eBay has no public key {kid!r} (HTTP {response.status_code})")
        return public_key(json_object(response), kid)

    def _get(self, url: str, tokens: EbayTokens) -> httpx.Response:
        token = tokens.current()
        response = self._get_with(url, token)
        if response.status_code == 401:  # a token that expired early is replaced, once
            tokens.forget(token)
            response = self._get_with(url, tokens.current())
        return response

    def _get_with(self, url: str, token: str) -> httpx.Response:
        return exchange(
            self._client,
            "eBay Notification API",
            "GET",
            url,
            retry_after=lambda _: 1.0,
            headers={"Authorization": f"Bearer {token}"},
        )

    def close(self) -> None:
        self._client.close()

    def _tokens_of(self, channel: EbayConfig) -> EbayTokens:
        owner = (channel.api_base_url, channel.client_id)
        with self._lock:
            tokens = self._tokens.get(owner)
            if tokens is None:
                tokens = EbayTokens(
                    self._client,
                    channel.api_base_url,
                    channel.client_id,
                    channel.client_secret,
                    application_grant(),
                )
                self._tokens[owner] = tokens
            return tokens


def public_key(body: dict[str, object], kid: str) -> PublicKey:
    """The key in the key service's answer (`{"key": PEM, "algorithm", "digest"}`).

    Raises:
        SignatureInvalid: it is not an ECDSA public key with a digest we know.
    """
    pem, digest = body.get("key"), body.get("digest")
    algorithm = _DIGESTS.get(digest) if isinstance(digest, str) else None
    if body.get("algorithm") != "ECDSA" or algorithm is None or not isinstance(pem, str):
        raise SignatureInvalid(f"eBay's key {kid!r} is not an ECDSA key with a known digest")
    try:
        key = serialization.load_der_public_key(base64.b64decode(_PEM_MARKERS.sub("", pem)))
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"eBay's key {kid!r} is not a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureInvalid(f"eBay's key {kid!r} is not an elliptic-curve key")
    return PublicKey(key, algorithm)
