"""Walmart webhook signatures, as Walmart documents them for its HMAC auth method
(CHANNELS.md §5, vector 5): `WM_SEC.SIGNATURE` is the base64 HMAC-SHA256, under the
subscription's secret, of `METHOD\\nPATH_AND_QUERY\\nWM_SEC.TIMESTAMP\\nhex(SHA-256(raw body))`,
and `WM_SEC.TIMESTAMP` (unix seconds) is within `REPLAY_WINDOW_SECONDS` of our clock.

The path and query are the request's as Walmart sent them: a proxy that rewrites the path in
front of invsync breaks the signature. A delivery is keyed by its `source.eventId`, which Walmart
keeps across retries and tells us to deduplicate on; the topic is the sub-event an
`ORDER_UPDATES` carries, else the event type.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from infrastructure.channels.base import (
    Accepted,
    SignatureInvalid,
    SignedRequest,
    Verdict,
    body_digest,
    hmac_b64_matches,
    parsed_object,
)
from infrastructure.channels.config import ChannelConfig

SIGNATURE_HEADER = "wm_sec.signature"
TIMESTAMP_HEADER = "wm_sec.timestamp"
REPLAY_WINDOW_SECONDS = 300
# Unix seconds have 10 digits until the year 2286 (as our own scheme's bound).
MAX_TIMESTAMP_DIGITS = 12
ORDER_UPDATES = "ORDER_UPDATES"


def string_to_sign(method: str, target: str, timestamp: str, body: bytes) -> bytes:
    """What Walmart signs: the method, the path and query, the timestamp and the body's digest."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{method}\n{target}\n{timestamp}\n{digest}".encode()


def verify(channel: ChannelConfig, request: SignedRequest, now: datetime) -> Verdict:
    """Check a Walmart delivery and name it.

    Parameters:
        channel: the channel account, whose `webhook_secrets` are all tried (rotation).
        request: the request as received: its method, path and query are signed too.
        now: our clock, which `WM_SEC.TIMESTAMP` must be within the replay window of.

    Returns:
        `Accepted`, keyed by the event's `source.eventId` (the body's digest if it names none),
        its topic the `ORDER_UPDATES` sub-event or the event type.

    Raises:
        SignatureInvalid: the timestamp is missing, not unix seconds or outside the replay
            window, or the signature is missing or made with no secret we hold.
    """
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        raise SignatureInvalid("WM_SEC.TIMESTAMP must be unix seconds")
    if abs(now.timestamp() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise SignatureInvalid(
            f"WM_SEC.TIMESTAMP is more than {REPLAY_WINDOW_SECONDS} s from our clock (a replay?)"
        )
    signed = string_to_sign(request.method, request.target, timestamp, request.body)
    if not hmac_b64_matches(channel.webhook_secrets, signed, request.headers.get(SIGNATURE_HEADER)):
        raise SignatureInvalid(
            "WM_SEC.SIGNATURE is not the base64 HMAC-SHA256 of the method, path, timestamp and "
            f"body digest under any secret configured for channel {channel.id!r}"
        )
    return _verdict(request.body)


def _verdict(body: bytes) -> Accepted:
    event = parsed_object(body)
    source = event.get("source") if event is not None else None
    source = source if isinstance(source, dict) else {}
    # The documented vector names its type at the top; Walmart's events in `source`.
    event_type = source.get("eventType") or (event or {}).get("eventType")
    event_id = source.get("eventId")
    topic = event_type if isinstance(event_type, str) else ""
    if topic == ORDER_UPDATES and event is not None:
        payload = event.get("payload")
        sub_event = payload.get("subEventType") if isinstance(payload, dict) else None
        topic = sub_event if isinstance(sub_event, str) and sub_event else topic
    key = f"event:{event_id}" if _is_text(event_id) else body_digest(body)
    return Accepted(delivery_key=key, topic=topic)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)
