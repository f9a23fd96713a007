"""AWS SNS HTTP/S message verification (CHANNELS.md §3.2).

SNS signs a canonical string built from a few message fields with the private key of a
certificate it serves from an `sns.<region>.amazonaws.com` host, and names that certificate in the
message itself. So the certificate URL is checked before anything is fetched: trusting any URL
would let anyone sign with a key of their own. Where a channel's SNS serves its certificates and
subscribe URLs is part of its configuration (`sns_origins`, SNS's own hosts unless it says
otherwise); a URL at any other origin is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from infrastructure.channels.amazon.config import REGION, SNS_ORIGINS
from infrastructure.channels.base import SignatureInvalid, VerificationUnavailable

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

# The signed fields of each message type, in the order SNS concatenates them.
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: _CONFIRMATION_KEYS,
    UNSUBSCRIBE_CONFIRMATION: _CONFIRMATION_KEYS,
}

_REQUIRED = (
    "Type",
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
)
_REQUIRED_IN_CONFIRMATIONS = ("Token", "SubscribeURL")

# Messages relayed by AWS Lambda spell these keys differently; SNS signs the original spelling.
_LAMBDA_SPELLINGS = {
    "SigningCertUrl": "SigningCertURL",
    "SubscribeUrl": "SubscribeURL",
    "UnsubscribeUrl": "UnsubscribeURL",
}

_REGION_NAME = r"[a-zA-Z0-9\-]{3,}"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

# An SNS certificate is about 2 KB; a server sending far more is not serving one.
MAX_CERTIFICATE_BYTES = 64 * 1024


def parse_message(body: bytes) -> dict[str, Any]:
    """The SNS message in `body`, Lambda spellings renamed, with every field verification needs.

    Raises:
        SignatureInvalid: the body is not a JSON object, its `Type` is unknown, or a field is
            missing or not a string.
    """
    try:
        message = json.loads(body)
    except ValueError:
        raise SignatureInvalid("the SNS message body is not JSON") from None
    except RecursionError:
        raise SignatureInvalid("the SNS message body is nested too deeply to be one") from None
    if not isinstance(message, dict):
        raise SignatureInvalid("the SNS message body is not a JSON object")
    message = renamed(message)
    kind = message.get("Type")
    if kind not in SIGNED_KEYS:
        raise SignatureInvalid(f"unknown SNS message Type {kind!r}")
    required = _REQUIRED if kind == NOTIFICATION else _REQUIRED + _REQUIRED_IN_CONFIRMATIONS
    missing = [key for key in required if not isinstance(message.get(key), str) or not message[key]]
    if missing:
        raise SignatureInvalid(f"the SNS {kind} lacks {', '.join(missing)}")
    if "Subject" in message and not isinstance(message["Subject"], str | None):
        raise SignatureInvalid("the SNS Subject is not a string")
    return message


def renamed(message: Mapping[str, Any]) -> dict[str, Any]:
    """`message` with Lambda-style keys (`SigningCertUrl`, …) spelled as SNS signs them."""
    return {_LAMBDA_SPELLINGS.get(key, key): value for key, value in message.items()}


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signs: `<Key>\\n<Value>\\n` for each signed key of the message's type, in
    SNS's order, skipping absent keys.

    Raises:
        SignatureInvalid: the message's `Type` is not one SNS sends.
    """
    message = renamed(message)
    keys = SIGNED_KEYS.get(message.get("Type", ""))
    if keys is None:
        raise SignatureInvalid(f"unknown SNS message Type {message.get('Type')!r}")
    present = (key for key in keys if message.get(key) is not None)
    return "".join(f"{key}\n{message[key]}\n" for key in present).encode()


def check_certificate_url(url: str, origins: Sequence[str] = SNS_ORIGINS) -> None:
    """Refuse a `SigningCertURL` that is not a `.pem` at one of the channel's SNS `origins`.

    Raises:
        SignatureInvalid: the URL is not one the channel's SNS would sign with.
    """
    parts = _trusted_sns_url("SigningCertURL", url, origins)
    if not parts.path.endswith(".pem") or parts.query or parts.fragment:
        raise SignatureInvalid(f"SigningCertURL {url!r} does not name a .pem certificate")


def check_subscribe_url(url: str, origins: Sequence[str] = SNS_ORIGINS) -> None:
    """Refuse a `SubscribeURL` outside the channel's SNS `origins`: confirming means we GET it,
    so an untrusted one would make us request whatever a message names.

    Raises:
        SignatureInvalid: the URL is at none of the origins.
    """
    _trusted_sns_url("SubscribeURL", url, origins)


def _trusted_sns_url(field: str, url: str, origins: Sequence[str]) -> SplitResult:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise SignatureInvalid(f"{field} {url!r} is not a URL") from None
    if any(_at_origin(parts, origin) for origin in origins):
        return parts
    raise SignatureInvalid(f"{field} {url!r} is at none of {', '.join(origins)}")


def _at_origin(parts: SplitResult, origin: str) -> bool:
    """Whether the URL is at `origin` (`<region>` standing for any region's name). The whole
    authority must match, not only the host name: no user info or port can make an SNS-looking
    URL reach another server."""
    scheme, _, authority = origin.rstrip("/").partition("://")
    pattern = re.escape(authority).replace(re.escape(REGION), _REGION_NAME)
    return parts.scheme == scheme and re.fullmatch(pattern, parts.netloc) is not None


class CertificateCache:
    """SNS signing certificates, fetched once per URL and kept (the `max_entries` most recently
    used), and the signature check that uses them.

    Thread-safe: verification runs in a thread pool, since a first fetch blocks. Two threads
    missing the same URL at once may both fetch it; the result is the same certificate.
    """

    def __init__(self, max_entries: int = 16, timeout: float = 5.0) -> None:
        self.max_entries = max_entries
        self.timeout = timeout
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, message: Mapping[str, Any], origins: Sequence[str] = SNS_ORIGINS) -> None:
        """Check the message's `Signature` under the certificate its `SigningCertURL` names.

        Parameters:
            message: a parsed SNS message (see `parse_message`).
            origins: where the channel's SNS serves its certificates (`sns_origins`).

        Raises:
            SignatureInvalid: unknown `SignatureVersion`, a signature that is not base64, an
                untrusted or unreachable certificate URL, or a signature that does not match.
        """
        message = renamed(message)
        algorithm = _hash_for(message.get("SignatureVersion"))
        signature = _decoded(message.get("Signature"))
        url = str(message.get("SigningCertURL") or "")
        check_certificate_url(url, origins)
        key = self._public_key(url)
        try:
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise SignatureInvalid(
                f"the SNS Signature does not match the message under the certificate at {url}"
            ) from None

    def _public_key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            key = self._keys.get(url)
            if key is not None:
                self._keys.move_to_end(url)
                return key
        # Fetched outside the lock, so a slow certificate host holds up no other URL.
        key = _public_key_in(url, _fetch(url, self.timeout))
        with self._lock:
            self._keys[url] = key
            self._keys.move_to_end(url)
            while len(self._keys) > self.max_entries:
                self._keys.popitem(last=False)
        return key


def _hash_for(version: object) -> hashes.HashAlgorithm:
    algorithm = _HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise SignatureInvalid(f"SNS SignatureVersion {version!r} is not 1 (SHA1) or 2 (SHA256)")
    return algorithm()


def _decoded(signature: object) -> bytes:
    if not isinstance(signature, str) or not signature:
        raise SignatureInvalid("the SNS message has no Signature")
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("the SNS Signature is not base64") from None


def _fetch(url: str, timeout: float) -> bytes:
    # Redirects are not followed: they could lead anywhere, and SNS serves certificates directly.
    try:
        with httpx.stream("GET", url, timeout=timeout) as response:
            if response.status_code >= 500:
                raise VerificationUnavailable(
                    f"the SNS certificate at {url} answered HTTP {response.status_code}"
                )
            if response.status_code != 200:
                raise SignatureInvalid(
                    f"the SNS certificate at {url} answered HTTP {response.status_code}"
                )
            pem = bytearray()
            for chunk in response.iter_bytes():
                pem += chunk
                if len(pem) > MAX_CERTIFICATE_BYTES:
                    raise SignatureInvalid(f"the SNS certificate at {url} is too large")
            return bytes(pem)
    except httpx.HTTPError as error:
        raise VerificationUnavailable(
            f"cannot fetch the SNS certificate at {url}: {error}"
        ) from None


def _public_key_in(url: str, pem: bytes) -> rsa.RSAPublicKey:
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise SignatureInvalid(f"{url} does not serve a PEM certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureInvalid(f"the certificate at {url} holds no RSA key")
    return key
