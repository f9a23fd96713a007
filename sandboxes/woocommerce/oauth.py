"""The WooCommerce sandbox's check of one-legged OAuth 1.0a requests, written from WooCommerce's
PHP (`WC_REST_Authentication`: `get_oauth_parameters`, `check_oauth_signature`,
`check_oauth_timestamp_and_nonce`), not from the library the gateway signs with, so the two are
checked against each other:

- the parameters come from the query string, form fields and an `Authorization: OAuth` header;
  none of the five `oauth_*` ones: not an OAuth request; some: "Missing OAuth parameter(s)";
- the string to sign is `METHOD&rawurlencode(home URL + path)&` and the parameters but
  `oauth_signature`, sorted by name (`strcmp`), each `name=value` of rawurlencoded parts
  rawurlencoded again, joined by `%26`;
- HMAC-SHA1 or HMAC-SHA256 (any other method is refused) keyed by `consumer_secret&` (there is
  no token), base64;
- the timestamp within 15 minutes of the store's clock, and a nonce the key has not used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus

REQUIRED = (
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
)
WINDOW = 15 * 60  # seconds a timestamp may be off the store's clock
_ALGORITHMS = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}
_HEADER_PARAM = re.compile(r'(oauth_[a-z_-]*)=(:?"([^"]*)"|([^,]*))')


def rawurlencode(value: str) -> str:
    """PHP's `rawurlencode` (RFC 3986: all but letters, digits and `-._~`)."""
    return quote(value, safe="")


def string_to_sign(method: str, base_url: str, params: Mapping[str, str]) -> str:
    pairs = sorted(
        ((k, v) for k, v in params.items() if k != "oauth_signature"),
        key=lambda pair: pair[0].encode(),  # strcmp compares bytes
    )
    joined = "%26".join(rawurlencode(f"{rawurlencode(k)}={rawurlencode(v)}") for k, v in pairs)
    return f"{method.upper()}&{rawurlencode(base_url)}&{joined}"


def signature(
    method: str,
    base_url: str,
    params: Mapping[str, str],
    consumer_secret: str,
    token_secret: str = "",  # WooCommerce has none; RFC 5849's own examples do
) -> str:
    digest = _ALGORITHMS[params["oauth_signature_method"]]
    key = f"{consumer_secret}&{token_secret}".encode()
    signed = hmac.new(key, string_to_sign(method, base_url, params).encode(), digest).digest()
    return base64.b64encode(signed).decode()


def header_params(header: str) -> dict[str, str]:
    """`WC_REST_Authentication::parse_header`."""
    if not header.startswith("OAuth "):
        return {}
    return {
        name: unquote_plus(quoted or bare)
        for name, _, quoted, bare in _HEADER_PARAM.findall(header)
        if name != "realm"
    }


@dataclass(frozen=True)
class Refusal:
    message: str
    code: str = "woocommerce_rest_authentication_error"


class OAuthCheck:
    """One store's OAuth check; remembers each key's nonces for the timestamp window.

    Parameters:
        secrets: the consumer secret of each consumer key.
        clock: the store's clock (seconds since the epoch).
    """

    def __init__(
        self, secrets: Callable[[str], str | None], clock: Callable[[], float] = time.time
    ) -> None:
        self._secrets, self._clock = secrets, clock
        self._nonces: dict[str, dict[str, int]] = {}  # key -> nonce -> its timestamp

    def check(self, method: str, base_url: str, params: Mapping[str, str]) -> str | Refusal | None:
        """The consumer key a request proves, a refusal, or None for a request without OAuth."""
        missing = [name for name in REQUIRED if not params.get(name)]
        if len(missing) == len(REQUIRED):
            return None
        if missing:
            plural = "s" if len(missing) > 1 else ""
            return Refusal(
                f"Missing OAuth parameter{plural} {', '.join(missing)}",
                "woocommerce_rest_authentication_missing_parameter",
            )
        key = params["oauth_consumer_key"]
        secret = self._secrets(key)
        if secret is None:
            return Refusal("Consumer key is invalid.")
        if params["oauth_signature_method"] not in _ALGORITHMS:
            return Refusal("Invalid signature - signature method is invalid.")
        expected = signature(method, base_url, params, secret)
        # `rawurldecode(str_replace(' ', '+', …))`: a raw + arrives as a space.
        given = unquote(params["oauth_signature"].replace(" ", "+"))
        if not hmac.compare_digest(expected, given):
            return Refusal("Invalid signature - provided signature does not match.")
        return self._fresh(key, params["oauth_timestamp"], params["oauth_nonce"]) or key

    def _fresh(self, key: str, timestamp: str, nonce: str) -> Refusal | None:
        now = self._clock()
        stamp = int(timestamp) if timestamp.isdigit() else 0
        if not now - WINDOW <= stamp <= now + WINDOW:
            return Refusal("Invalid timestamp.")
        used = self._nonces.setdefault(key, {})
        if nonce in used:
            return Refusal("Invalid nonce - nonce has already been used.")
        used[nonce] = stamp
        for old in [n for n, at in used.items() if at < now - WINDOW]:
            del used[old]  # WooCommerce keeps only the window's nonces
        return None
