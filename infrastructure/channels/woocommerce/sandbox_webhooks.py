"""The WooCommerce sandbox's webhook sender, as `WC_Webhook` delivers (CHANNELS.md §2.1):
payloads built at delivery time, at most one pending delivery per webhook and resource, sent once
as PHP's `wp_json_encode` writes JSON, signed with X-WC-Webhook-Signature, never retried, and the
webhook disabled after the documented run of failures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

USER_AGENT = "WooCommerce/9.9.0 Hookshot (WordPress/6.8.1)"


@dataclass
class Webhook:
    id: int
    topic: str  # order.created|updated|deleted|restored, product.updated
    delivery_url: str
    secret: str
    status: str = "active"  # active | disabled (after too many failures)
    failure_count: int = 0


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery attempt as sent: `status` is None when the target could not be reached."""

    webhook_id: int
    topic: str
    resource_id: int
    headers: dict[str, str]
    body: bytes
    status: int | None


class WebhookSender:
    """A store's webhooks as `WC_Webhook` delivers them: at most one pending delivery per
    webhook and resource, its payload built when it is sent, sent once, never retried.

    Parameters:
        payload: the resource (topic, id) as it is now; None once it is deleted.
        lock: the store's lock, held while a payload is built.
    """

    def __init__(
        self,
        payload: Callable[[str, int], dict[str, Any] | None],
        lock: threading.RLock,
        *,
        site_url: str,
        auto_deliver: bool,
        delivery_delay: float,
        delivery_timeout: float,
        max_failures: int,
    ) -> None:
        self.subscriptions: dict[int, Webhook] = {}
        self.sent: list[WebhookDelivery] = []
        self.site_url, self.auto_deliver = site_url, auto_deliver
        self.delivery_delay, self.delivery_timeout = delivery_delay, delivery_timeout
        self.max_failures = max_failures
        self._payload, self._lock = payload, lock
        self._ids = itertools.count(1)
        self._pending: set[tuple[int, int]] = set()  # (webhook id, resource id)
        self._queue: queue.Queue[tuple[float, tuple[int, int]] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    def add(self, topic: str, delivery_url: str, secret: str) -> Webhook:
        """An active webhook for `topic` (order.created|updated|deleted|restored,
        product.updated)."""
        with self._lock:
            webhook = Webhook(next(self._ids), topic, delivery_url, secret)
            self.subscriptions[webhook.id] = webhook
            return webhook

    def ping(self, webhook_id: int) -> int:
        """The unsigned form post WooCommerce sends when a webhook is created; its status."""
        url = self.subscriptions[webhook_id].delivery_url
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}
        body = f"webhook_id={webhook_id}"
        answer = httpx.post(url, content=body, headers=headers, timeout=self.delivery_timeout)
        return answer.status_code

    def schedule(self, topic: str, resource_id: int) -> None:
        """A hook fired for the resource: each active webhook on `topic` will deliver it."""
        with self._lock:
            for webhook in self.subscriptions.values():
                key = (webhook.id, resource_id)
                if webhook.topic != topic or webhook.status != "active" or key in self._pending:
                    continue
                self._pending.add(key)
                if self.auto_deliver:
                    self._queue.put((time.monotonic() + self.delivery_delay, key))
                    self._start()

    def deliver_pending(self) -> list[WebhookDelivery]:
        """Deliver every pending webhook now, each with the resource as it is now."""
        with self._lock:
            keys = sorted(self._pending)
        return [sent for key in keys if (sent := self._deliver(key)) is not None]

    def close(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=5)
            self._worker = None

    def _start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, daemon=True, name="woo-webhooks")
            self._worker.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            due, key = item
            time.sleep(max(due - time.monotonic(), 0.0))
            self._deliver(key)

    def _deliver(self, key: tuple[int, int]) -> WebhookDelivery | None:
        webhook_id, resource_id = key
        with self._lock:
            if key not in self._pending:
                return None  # delivered already, on demand
            self._pending.discard(key)
            webhook = self.subscriptions[webhook_id]
            payload = self._payload(webhook.topic, resource_id)
            if webhook.status != "active" or payload is None:
                return None
        body = php_json(payload)
        headers = self._signed_headers(webhook, body)
        try:
            status: int | None = httpx.post(
                webhook.delivery_url, content=body, headers=headers, timeout=self.delivery_timeout
            ).status_code
        except httpx.HTTPError:
            status = None
        sent = WebhookDelivery(webhook_id, webhook.topic, resource_id, headers, body, status)
        with self._lock:
            self.sent.append(sent)
            self._count(webhook, status)
        return sent

    def _count(self, webhook: Webhook, status: int | None) -> None:
        """`WC_Webhook::log_delivery` and `failed_delivery`: 2xx, 301 and 302 succeed."""
        if status is not None and 200 <= status < 303:
            webhook.failure_count = 0
        elif webhook.failure_count > self.max_failures:
            webhook.status = "disabled"
        else:
            webhook.failure_count += 1

    def _signed_headers(self, webhook: Webhook, body: bytes) -> dict[str, str]:
        resource, _, event = webhook.topic.partition(".")
        signature = hmac.new(webhook.secret.encode(), body, hashlib.sha256).digest()
        # wp_hash(id . time()): the same for two deliveries of one webhook in one second.
        stamp = f"{webhook.id}{int(time.time())}".encode()
        return {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": self.site_url,
            "X-WC-Webhook-Topic": webhook.topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-WC-Webhook-ID": str(webhook.id),
            "X-WC-Webhook-Delivery-ID": hmac.new(b"sandbox-salt", stamp, "md5").hexdigest(),
        }


def php_json(payload: object) -> bytes:
    """`trim(wp_json_encode($payload))`: compact, `/` as `\\/`, non-ASCII as `\\uXXXX`."""
    return (
        json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()
    )
