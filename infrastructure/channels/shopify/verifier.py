"""Shopify webhook signatures: base64 HMAC-SHA256 of the raw body under the app's secret."""

from __future__ import annotations

from datetime import datetime

from infrastructure.channels.base import (
    Accepted,
    SignatureInvalid,
    SignedRequest,
    Verdict,
    body_digest,
    hmac_b64_matches,
)
from infrastructure.channels.config import ChannelConfig


def verify(channel: ChannelConfig, request: SignedRequest, now: datetime) -> Verdict:
    headers, body = request.headers, request.body
    if not hmac_b64_matches(channel.webhook_secrets, body, headers.get("x-shopify-hmac-sha256")):
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 does not match the body")
    # Same id on every retry of one delivery; the body hash only if a proxy dropped the header.
    key = headers.get("x-shopify-webhook-id") or body_digest(body)
    return Accepted(delivery_key=key, topic=headers.get("x-shopify-topic", ""))
