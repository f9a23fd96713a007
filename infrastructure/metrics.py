"""Prometheus metrics of intake and reconciliation."""

from __future__ import annotations

import functools

from prometheus_client import Counter


@functools.cache
def _child(metric: Counter, labels: tuple[str, ...]) -> Counter:
    return metric.labels(*labels)


def counted(metric: Counter, *labels: str) -> None:
    """Add one to `metric`'s child of `labels`, found once per set of labels (`labels()` takes
    a lock and builds a key each call). Only for labels from a bounded set (configured
    channels, fixed outcomes)."""
    _child(metric, labels).inc()


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
RECONCILE_RUNS = Counter(
    "invsync_reconcile_runs_total",
    "Reconciliation runs finished, by channel, schedule (requested, orders, active, catalog) "
    "and outcome (done, failed).",
    ["channel", "scope", "outcome"],
)
RECONCILE_ORDERS = Counter(
    "invsync_reconcile_orders_total",
    "Orders listed by reconciliation polls, by channel and whether they were new to the inbox "
    "(found: listed; applied: stored anew, the webhook having been lost).",
    ["channel", "outcome"],
)
RECONCILE_SKUS_READ = Counter(
    "invsync_reconcile_skus_read_total", "SKU levels read from the channel.", ["channel"]
)
RECONCILE_DRIFT = Counter(
    "invsync_reconcile_drift_total",
    "Drift found by reconciliation, by channel and size (small: corrected at once; large: "
    "escalated as a discrepancy for review).",
    ["channel", "size"],
)
ORDERS_ACKNOWLEDGED = Counter(
    "invsync_orders_acknowledged_total",
    "Orders invsync acknowledged for the merchant (Walmart's within 4 hours), by channel and "
    "outcome (acknowledged; failed: tried again by the next orders poll).",
    ["channel", "outcome"],
)
