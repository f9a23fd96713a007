"""Signatures of our own scheme (see the package docstring)."""

from __future__ import annotations

from datetime import datetime

from infrastructure.channels.base import (
    Accepted,
    SignatureInvalid,
    SignedRequest,
    Verdict,
    body_digest,
    hmac_hex_matches,
)
from infrastructure.channels.config import ChannelConfig

TOLERANCE_SECONDS = 300
# Unix seconds have 10 digits until the year 2286; a longer figure is not a time, and one past
# 4,300 digits would not even parse.
MAX_TIMESTAMP_DIGITS = 12


def verify(channel: ChannelConfig, request: SignedRequest, now: datetime) -> Verdict:
    headers, body = request.headers, request.body
    timestamp = headers.get("x-invsync-timestamp", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        raise SignatureInvalid("X-Invsync-Timestamp must be unix seconds")
    if abs(now.timestamp() - int(timestamp)) > TOLERANCE_SECONDS:
        raise SignatureInvalid("X-Invsync-Timestamp is more than 5 minutes from our clock")
    signature = headers.get("x-invsync-signature", "").removeprefix("sha256=")
    if not hmac_hex_matches(channel.webhook_secrets, timestamp.encode() + b"." + body, signature):
        raise SignatureInvalid("X-Invsync-Signature does not match the timestamp and body")
    key = headers.get("x-invsync-delivery-id") or body_digest(body)
    return Accepted(delivery_key=key, topic=headers.get("x-invsync-topic", "stock.changes"))
