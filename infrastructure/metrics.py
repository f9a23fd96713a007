"""Prometheus metrics of intake."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOKS_RECEIVED = Counter(
    "invsync_webhooks_received_total",
    "Webhook deliveries answered 2xx, by channel and outcome (stored, duplicate, ping).",
    ["channel", "outcome"],
)
WEBHOOKS_REJECTED = Counter(
    "invsync_webhooks_rejected_total",
    "Webhook requests refused, by channel and reason (signature, unverifiable, too_large, "
    "busy: no body slot free, unavailable: not stored in time, unstorable: the row refused).",
    ["channel", "reason"],
)
