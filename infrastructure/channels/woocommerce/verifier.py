"""WooCommerce webhook signatures: base64 HMAC-SHA256 of the raw body under the webhook's secret.

The body is PHP's `wp_json_encode` output (`\\/` for `/`, `\\uXXXX` for non-ASCII), so it is
verified as received: re-encoding it with Python's `json` would change the bytes and the HMAC.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from infrastructure.channels.base import (
    Accepted,
    Ping,
    SignatureInvalid,
    SignedRequest,
    Verdict,
    body_digest,
    hmac_b64_matches,
)
from infrastructure.channels.config import ChannelConfig

SIGNATURE_HEADER = "x-wc-webhook-signature"
TOPIC_HEADER = "x-wc-webhook-topic"

# What WooCommerce posts, unsigned, when a webhook is created; it wants exactly a 200.
_CREATION_PING = re.compile(rb"webhook_id=\d+")


def verify(channel: ChannelConfig, request: SignedRequest, now: datetime) -> Verdict:
    """Check a WooCommerce delivery and name it.

    Parameters:
        channel: the channel account, whose `webhook_secrets` are all tried (rotation).
        request: the request as received (WooCommerce signs its body only).
        now: unused: WooCommerce signs no timestamp.

    Returns:
        `Ping` for the unsigned creation ping, else `Accepted` with a key derived from the payload.

    Raises:
        SignatureInvalid: the signature is missing, not base64, or made with no secret we hold.
    """
    headers, body = request.headers, request.body
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        if _CREATION_PING.fullmatch(body):
            return Ping()  # unsigned but harmless: nothing is stored
        raise SignatureInvalid(
            "X-WC-Webhook-Signature is missing: WooCommerce signs every delivery but the "
            "creation ping"
        )
    if not hmac_b64_matches(channel.webhook_secrets, body, signature):
        raise SignatureInvalid(
            "X-WC-Webhook-Signature is not the base64 HMAC-SHA256 of the body under any "
            f"secret configured for channel {channel.id!r}"
        )
    topic = headers.get(TOPIC_HEADER, "")
    return Accepted(delivery_key=delivery_key(topic, body), topic=topic)


def delivery_key(topic: str, body: bytes) -> str:
    """`<topic>:<resource id>:<date_modified_gmt>`, or the body's digest when it names neither.

    X-WC-Webhook-Delivery-ID hashes the webhook id with the unix second, so two deliveries in
    one second share it; a resource modified at a given time is one fact, whatever the header.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
        return body_digest(body)
    if not isinstance(payload, dict):
        return body_digest(body)
    resource_id = payload.get("id")
    modified = payload.get("date_modified_gmt")
    if not _is_scalar(resource_id) or not isinstance(modified, str) or not modified:
        return body_digest(body)  # e.g. `order.deleted`, whose payload is only the id
    return f"{topic}:{resource_id}:{modified}"


def _is_scalar(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and bool(value)
    )
