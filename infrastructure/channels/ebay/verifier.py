"""eBay Notification API deliveries (CHANNELS.md §4.1): JSON bodies signed with ECDSA.

`X-EBAY-SIGNATURE` is base64 of a JSON object `{"alg", "kid", "signature", "digest"}`; the
signature (base64 DER) is checked on the raw body under the public key `kid` names, with the
digest eBay's key service names for it (`SHA1withECDSA` today). A delivery is keyed by its
`notificationId` (the same on eBay's retries) and its topic is the body's `metadata.topic`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from infrastructure.channels.base import (
    Accepted,
    SignatureInvalid,
    SignedRequest,
    Verdict,
    body_digest,
)
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.ebay.public_keys import PublicKey, PublicKeys

SIGNATURE_HEADER = "x-ebay-signature"
MAX_HEADER = 4096  # a real header is about 300 characters

EbayVerifier = Callable[[EbayConfig, SignedRequest, datetime], Verdict]


def make_verifier(keys: PublicKeys) -> EbayVerifier:
    """A verifier that checks signatures with the keys `keys` fetches and keeps."""

    def verify(channel: EbayConfig, request: SignedRequest, now: datetime) -> Verdict:
        """Check an eBay notification and name it.

        Parameters:
            channel: the channel account, whose API serves the keys.
            request: the request as received; its raw body is what eBay signed.
            now: unused: a replay is deduplicated by its notification id.

        Returns:
            `Accepted`, keyed by the notification's id, with its topic.

        Raises:
            SignatureInvalid: no or a malformed `X-EBAY-SIGNATURE`, an unknown key, or a
                signature that does not match the body.
            VerificationUnavailable: the key cannot be fetched now.
        """
        header = signature_header(request.headers.get(SIGNATURE_HEADER, ""))
        check_signature(keys.key(channel, header["kid"]), header, request.body)
        return verdict(request.body)

    return verify


def check_signature(key: PublicKey, header: Mapping[str, Any], body: bytes) -> None:
    """Check the decoded `X-EBAY-SIGNATURE` on the raw body: `<digest>withECDSA` under `key`.

    Raises:
        SignatureInvalid: the signature does not match.
    """
    try:
        key.key.verify(header["signature"], body, ec.ECDSA(key.digest()))
    except InvalidSignature:
        raise SignatureInvalid(
            f"X-EBAY-SIGNATURE does not match the body under eBay's key {header['kid']!r}"
        ) from None


def signature_header(value: str) -> dict[str, Any]:
    """The fields of `X-EBAY-SIGNATURE`, the signature decoded to bytes.

    Raises:
        SignatureInvalid: missing, not base64 JSON, or without a key id and signature.
    """
    if not value:
        raise SignatureInvalid("no X-EBAY-SIGNATURE header")
    if len(value) > MAX_HEADER:
        raise SignatureInvalid(f"X-EBAY-SIGNATURE is over {MAX_HEADER} characters")
    try:
        fields = json.loads(base64.b64decode(value, validate=True))
        kid, signature = fields["kid"], fields["signature"]
        if not isinstance(kid, str) or not kid.replace("-", "").isalnum():
            raise ValueError("kid")
        return {"kid": kid, "signature": base64.b64decode(signature, validate=True)}
    except (binascii.Error, ValueError, TypeError, KeyError, RecursionError):
        raise SignatureInvalid(
            "X-EBAY-SIGNATURE is not base64 JSON with kid and signature"
        ) from None


def verdict(body: bytes) -> Accepted:
    """The stored delivery's key and topic, read from the signed body; a body that is not the
    notification envelope is stored all the same (keyed by its digest) and parked by the
    translator."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return Accepted(body_digest(body), "unreadable")
    topic = _text(payload, "metadata", "topic") or "unknown"
    notification_id = _text(payload, "notification", "notificationId")
    return Accepted(notification_id or body_digest(body), topic)


def _text(payload: object, section: str, name: str) -> str:
    part = payload.get(section) if isinstance(payload, dict) else None
    value = part.get(name) if isinstance(part, dict) else None
    return value if isinstance(value, str) else ""


verify = make_verifier(PublicKeys())
