"""Walmart's webhook signatures as its security page documents them (CHANNELS.md §5), written
from the documentation and never from invsync's verifier: `WM_SEC.TIMESTAMP` is the signing
time in unix seconds, `WM_SEC.SIGNATURE` the base64 HMAC-SHA256, under the subscription's
secret, of `METHOD\\nPATH_AND_QUERY\\nWM_SEC.TIMESTAMP\\nhex(SHA-256(body))`, where the path
and query are those of the URL the subscription posts to."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from sandboxes.webhooks import Message


class WalmartSigner:
    """Signs for the subscription whose destination `url()` names, at the moment it signs."""

    def __init__(self, secret: str, url: Callable[[], str | None]) -> None:
        self.secret, self._url = secret, url

    def sign(self, message: Message) -> Message:
        parts = urlsplit(self._url() or "/")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        timestamp = str(int(time.time()))
        digest = hashlib.sha256(message.body).hexdigest()
        signed = "\n".join(("POST", target, timestamp, digest)).encode()
        mac = hmac.new(self.secret.encode(), signed, hashlib.sha256).digest()
        return message.with_headers(
            **{
                "WM_SEC.TIMESTAMP": timestamp,
                "WM_SEC.SIGNATURE": base64.b64encode(mac).decode(),
                "Content-Type": "application/json",
            }
        )
