"""The eBay sandbox's Notification API side (CHANNELS.md §4.1): the endpoint validation eBay
performs on a destination (`GET <endpoint>?challenge_code=`), and notifications signed as eBay
signs them: ECDSA on a P-256 key with SHA1 over the compact JSON body, the signature named by key
id in `X-EBAY-SIGNATURE` (base64 JSON `{"alg", "kid", "signature", "digest"}`), the key served by
the sandbox's `public_key/{kid}`. Written from eBay's documentation and SDKs' behaviour, not from
our verifier."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sandboxes.webhooks import Message, WebhookSender

ACCOUNT_DELETION = "MARKETPLACE_ACCOUNT_DELETION"


class EbaySigner:
    """Signs as eBay's Notification API does, under `key` named `kid`."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, kid: str) -> None:
        self.key, self.kid = key, kid

    def sign(self, message: Message) -> Message:
        signature = self.key.sign(message.body, ec.ECDSA(hashes.SHA1()))
        header = {
            "alg": "ecdsa",
            "kid": self.kid,
            "signature": base64.b64encode(signature).decode(),
            "digest": "SHA1",
        }
        encoded = base64.b64encode(json.dumps(header, separators=(",", ":")).encode()).decode()
        return message.with_headers(**{"X-EBAY-SIGNATURE": encoded})

    def public_key_document(self) -> dict[str, str]:
        """What `GET /commerce/notification/v1/public_key/{kid}` answers."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pem = f"-----BEGIN PUBLIC KEY-----{base64.b64encode(der).decode()}-----END PUBLIC KEY-----"
        return {"key": pem, "algorithm": "ECDSA", "digest": "SHA1"}


def ebay_time(moment: datetime) -> str:
    """eBay's timestamps: UTC, to the millisecond, with `Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def notification(topic: str, data: dict[str, Any]) -> Message:
    """A notification as eBay sends it: compact JSON, its id the message's (same on retries)."""
    notification_id = str(uuid.uuid4())
    now = ebay_time(datetime.now(UTC))
    body = {
        "metadata": {"topic": topic, "schemaVersion": "1.0", "deprecated": False},
        "notification": {
            "notificationId": notification_id,
            "eventDate": now,
            "publishDate": now,
            "publishAttemptCount": 1,
            "data": data,
        },
    }
    encoded = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    return Message(topic, encoded, headers, notification_id)


def validate_endpoint(url: str, verification_token: str, endpoint: str) -> bool:
    """eBay's endpoint validation: GET `url` with a fresh challenge code; True when the answer
    is 200 JSON whose `challengeResponse` is hex SHA-256 of code, token and endpoint, in that
    order."""
    code = str(uuid.uuid4())
    try:
        answer = httpx.get(url, params={"challenge_code": code}, timeout=5.0)
        given = answer.json().get("challengeResponse") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
    expected = hashlib.sha256((code + verification_token + endpoint).encode()).hexdigest()
    return given == expected


def sender(signer: EbaySigner, retry_delays: tuple[float, ...]) -> WebhookSender:
    """The destination's deliveries: a 2xx is delivered, anything else retried."""
    return WebhookSender(None, signer, retry_delays=retry_delays, name="ebay-notifications")
