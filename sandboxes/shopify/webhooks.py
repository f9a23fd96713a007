"""How a Shopify store sends webhooks (CHANNELS.md §1.1, §7): JSON bodies signed with
`X-Shopify-Hmac-Sha256` under the app's client secret, the same webhook and event ids on every
retry, a connection timeout of 1 s and 5 s in all, 8 retries over about 4 hours, and the
subscription deleted once they are spent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from sandboxes.webhooks import DELIVERIES_AT_ONCE, Message, WebhookSender

# 8 retries over about 4 hours with exponential backoff (§1.1); the exact steps are not published.
DOCUMENTED_RETRY_DELAYS = (60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 7200.0)
TIMEOUT = httpx.Timeout(5.0, connect=1.0)


def sign(secret: str, body: bytes) -> str:
    """`X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the raw body under the app's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class ShopifySigner:
    """Signs as Shopify does, under the app's client secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def sign(self, message: Message) -> Message:
        return message.with_headers(**{"X-Shopify-Hmac-Sha256": sign(self.secret, message.body)})


def sender(
    url: str | None,
    secret: str,
    retry_delays: tuple[float, ...] = DOCUMENTED_RETRY_DELAYS,
    *,
    concurrency: int = DELIVERIES_AT_ONCE,
) -> WebhookSender:
    """A shop's webhook subscription to `url` (None: no subscription), `concurrency` deliveries
    at once."""
    return WebhookSender(
        url,
        ShopifySigner(secret),
        retry_delays=retry_delays,
        timeout=TIMEOUT,
        remove_when_spent=True,  # an Admin API subscription is deleted
        name="shopify-hooks",
        concurrency=concurrency,
    )


def webhook(topic: str, payload: dict[str, Any], shop_domain: str, api_version: str) -> Message:
    """One event's webhook, unsigned, with the headers Shopify sends beside the signature."""
    webhook_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Message(topic, body, headers, webhook_id)
