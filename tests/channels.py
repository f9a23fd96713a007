"""Signing as the channels do, for tests and benchmarks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


def shopify_headers(secret: str, body: bytes, topic: str, webhook_id: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": "test.myshopify.com",
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": webhook_id,
    }


def internal_headers(
    secret: str, body: bytes, delivery_id: str, timestamp: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Invsync-Timestamp": stamp,
        "X-Invsync-Signature": "sha256=" + signature.hexdigest(),
        "X-Invsync-Delivery-Id": delivery_id,
    }


def shopify_order(order_id: int, lines: list[tuple[int, str, int]], **fields: Any) -> bytes:
    order = {
        "id": order_id,
        "created_at": "2026-11-28T10:00:00-05:00",
        "cancelled_at": None,
        "location_id": None,
        "line_items": [{"id": line, "sku": sku, "quantity": qty} for line, sku, qty in lines],
        **fields,
    }
    return json.dumps(order, separators=(",", ":")).encode()


def receipt_document(sku: str, quantity: int, key: str, location: str = "main") -> bytes:
    return json.dumps(
        {
            "changes": [
                {
                    "kind": "receipt",
                    "sku": sku,
                    "quantity": quantity,
                    "business_key": key,
                    "location": location,
                }
            ]
        }
    ).encode()


def woocommerce_body(order: dict[str, Any]) -> bytes:
    """The bytes WooCommerce sends: PHP's json_encode escapes slashes and non-ASCII."""
    return json.dumps(order, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def woocommerce_headers(secret: str, body: bytes, topic: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.partition(".")[0],
        "X-WC-Webhook-Event": topic.partition(".")[2],
        "X-WC-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "abc",
        "X-WC-Webhook-Source": "https://shop.example/",
    }


def woocommerce_table(
    channel: str, url: str, key: str, secret: str, hook_secret: str
) -> dict[str, Any]:
    """A WooCommerce channel's `[[channels]]` table for a sandbox store at `url`, not pushing."""
    return {
        "id": channel,
        "kind": "woocommerce",
        "api_base_url": url,
        "webhook_secrets": [hook_secret],
        "consumer_key": key,
        "consumer_secret": secret,
        "push": {"enabled": False},
    }


def ebay_table(channel: str, url: str, **extra: Any) -> dict[str, Any]:
    """An eBay channel's `[[channels]]` table for a sandbox account at `url` (the sandbox's
    default credentials), not pushing unless `extra` says so."""
    return {
        "id": channel,
        "kind": "ebay",
        "api_base_url": url,
        "client_id": "sandbox-app",
        "client_secret": "sandbox-cert",
        "refresh_token": "sandbox-refresh",
        "verification_token": "verification_token_32_to_80_chars_long_abcdefgh",
        "notification_endpoint": f"https://hub.example.com/webhooks/{channel}",
        "push": {"enabled": False},
        **extra,
    }
