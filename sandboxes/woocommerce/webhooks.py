"""A WooCommerce store's webhooks, as `WC_Webhook` delivers them (CHANNELS.md §2.1): each webhook
a subscription of its own (topic, delivery URL, secret); payloads built at delivery time, at most
one pending delivery per webhook and resource, sent once as PHP's `wp_json_encode` writes JSON,
signed with X-WC-Webhook-Signature, never retried, and the webhook disabled after the documented
run of failures. Deliveries go through the shared sender (`sandboxes.webhooks`), one per webhook;
their timing is the store's, on one background thread, as Action Scheduler runs them."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from sandboxes.timeline import Timeline
from sandboxes.webhooks import Attempt, Message, WebhookSender

USER_AGENT = "WooCommerce/9.9.0 Hookshot (WordPress/6.8.1)"


@dataclass
class Webhook:
    """One webhook as WooCommerce keeps it (and the control API shows it)."""

    id: int
    topic: str  # order.created|updated|deleted|restored, product.updated
    delivery_url: str
    secret: str
    status: str = "active"  # active | disabled (after too many failures)
    failure_count: int = 0


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery as sent: `status` is None when the target could not be reached."""

    webhook_id: int
    topic: str
    resource_id: int
    headers: Mapping[str, str]
    body: bytes
    status: int | None


class WooCommerceSigner:
    """Signs as `WC_Webhook::generate_signature` does, under the webhook's secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def sign(self, message: Message) -> Message:
        digest = hmac.new(self.secret.encode(), message.body, hashlib.sha256).digest()
        return message.with_headers(**{"X-WC-Webhook-Signature": base64.b64encode(digest).decode()})


def delivered(status: int) -> bool:
    """`WC_Webhook::log_delivery`: 2xx, 301 and 302 succeed (a redirect is not followed)."""
    return 200 <= status < 303


class Webhooks:
    """A store's webhooks: at most one pending delivery per webhook and resource, its payload
    built when it is sent, sent once, never retried.

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
        self._senders: dict[int, WebhookSender] = {}
        self._pending: set[tuple[int, int]] = set()  # (webhook id, resource id)
        self._timeline = Timeline("woo-webhooks")

    def add(self, topic: str, delivery_url: str, secret: str) -> Webhook:
        """An active webhook for `topic` (order.created|updated|deleted|restored,
        product.updated)."""
        with self._lock:
            webhook = Webhook(next(self._ids), topic, delivery_url, secret)
            self.subscriptions[webhook.id] = webhook
            self._senders[webhook.id] = WebhookSender(
                delivery_url,
                WooCommerceSigner(secret),
                timeout=self.delivery_timeout,
                delivered=delivered,
            )
            return webhook

    def ping(self, webhook_id: int) -> int:
        """The unsigned form post WooCommerce sends when a webhook is created; its status."""
        url = self.subscriptions[webhook_id].delivery_url
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}
        body = f"webhook_id={webhook_id}"
        answer = httpx.post(url, content=body, headers=headers, timeout=self.delivery_timeout)
        return answer.status_code

    def lose(self, topic: str, count: int = 1) -> None:
        """The next `count` deliveries of each webhook on `topic` are lost on the way."""
        with self._lock:
            for webhook in self.subscriptions.values():
                if webhook.topic == topic:
                    self._senders[webhook.id].lose(count)

    def schedule(self, topic: str, resource_id: int) -> None:
        """A hook fired for the resource: each active webhook on `topic` will deliver it."""
        with self._lock:
            for webhook in self.subscriptions.values():
                key = (webhook.id, resource_id)
                if webhook.topic != topic or webhook.status != "active" or key in self._pending:
                    continue
                self._pending.add(key)
                if self.auto_deliver:
                    self._timeline.after(self.delivery_delay, functools.partial(self._deliver, key))

    def attempts(self) -> list[Attempt]:
        """Every webhook's delivery attempts, as their senders recorded them."""
        with self._lock:
            senders = list(self._senders.values())
        return [attempt for sender in senders for attempt in sender.attempts]

    def deliver_pending(self) -> list[WebhookDelivery]:
        """Deliver every pending webhook now, each with the resource as it is now."""
        with self._lock:
            keys = sorted(self._pending)
        return [sent for key in keys if (sent := self._deliver(key)) is not None]

    def close(self) -> None:
        self._timeline.close()
        for sender in self._senders.values():
            sender.close()

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
        attempt = self._senders[webhook_id].deliver(self._message(webhook, payload))
        sent = WebhookDelivery(
            webhook_id, webhook.topic, resource_id, attempt.headers, attempt.body, attempt.status
        )
        with self._lock:
            self.sent.append(sent)
            self._count(webhook, attempt.delivered)
        return sent

    def _count(self, webhook: Webhook, succeeded: bool) -> None:
        """`WC_Webhook::log_delivery` and `failed_delivery`."""
        if succeeded:
            webhook.failure_count = 0
        elif webhook.failure_count > self.max_failures:
            webhook.status = "disabled"
        else:
            webhook.failure_count += 1

    def _message(self, webhook: Webhook, payload: object) -> Message:
        """The delivery, unsigned, with the headers WooCommerce sends beside the signature."""
        resource, _, event = webhook.topic.partition(".")
        # wp_hash(id . time()): the same for two deliveries of one webhook in one second.
        stamp = f"{webhook.id}{int(time.time())}".encode()
        delivery_id = hmac.new(b"sandbox-salt", stamp, "md5").hexdigest()
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": self.site_url,
            "X-WC-Webhook-Topic": webhook.topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-ID": str(webhook.id),
            "X-WC-Webhook-Delivery-ID": delivery_id,
        }
        return Message(webhook.topic, php_json(payload), headers, delivery_id)


def php_json(payload: object) -> bytes:
    """`trim(wp_json_encode($payload))`: compact, `/` as `\\/`, non-ASCII as `\\uXXXX`."""
    return (
        json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()
    )
