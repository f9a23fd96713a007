"""Orders a channel's webhooks missed re-enter intake: the channel's orders modified since the
watermark (less an overlap, for the channel's clock and orders saved while the last poll read)
are listed through its kind's `list_orders` and stored in the inbox as the deliveries their
webhooks would have been. The translator reads them unchanged, so an order seen by webhook and
by poll moves the ledger once, and a poll that finds a cancellation applies it.

A repeat finds the same orders under the same delivery keys (`poll:<order id>:<modified at>:
<digest of the body>`)
and stores nothing new; the watermark moves on only once everything listed is stored, so a poll
that fails part-way lists the same window again next time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import psycopg

from domain.errors import InvsyncError
from infrastructure import inbox
from infrastructure.channels.base import PolledOrder
from infrastructure.channels.config import ChannelConfig
from infrastructure.channels.kinds import kind_of
from infrastructure.inbox import IncomingDelivery, Stored
from infrastructure.reconcile import watermarks

STORE_EVERY = 100  # orders stored (and intake nudged) at a time while the listing goes on


class OrdersNotListed(InvsyncError):
    """Raised when a channel's kind offers no way to list its orders."""


@dataclass(frozen=True)
class OrdersPolled:
    """What one poll did: orders listed, of them stored as new deliveries, and the watermark
    the channel holds after it."""

    found: int
    stored: int
    watermark: datetime


def poll_orders(
    channel: ChannelConfig,
    *,
    database_url: str,
    gateway: Any,
    nudge: Callable[[Sequence[Stored]], None],
    overlap: timedelta,
    since: datetime | None = None,
    until: datetime | None = None,
) -> OrdersPolled:
    """List the channel's orders modified from `since` (default: its watermark less `overlap`;
    `until` less `overlap` before its first poll) to `until` (default: now), store each as an
    inbox delivery and `nudge` intake with what is new; then move the watermark on to `until`.

    Parameters:
        gateway: the channel's gateway (`kinds.api_for`), built behind its gate: each call
            takes a turn of the channel's rate limit, as pushes do.
        nudge: tells the intake workers of stored deliveries (`Intake.hint`).

    Raises:
        OrdersNotListed: the channel's kind cannot list its orders.
        ChannelError: the channel's API failed (throttled, down, refused): nothing moves on.
    """
    kind = kind_of(channel)
    if kind.list_orders is None:
        raise OrdersNotListed(f"invsync cannot list the orders of {channel.kind} channels")
    until = until or datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        since = since or _start(watermarks.orders_listed_to(conn, channel.id), until, overlap)
        found = stored = 0
        listed = kind.list_orders(channel, gateway, since, until)
        for page in _batches(listed, STORE_EVERY):
            fresh = [s for s in inbox.store(conn, [_delivery(channel, o) for o in page]) if s.id]
            nudge(fresh)
            found, stored = found + len(page), stored + len(fresh)
        mark = watermarks.advance(conn, channel.id, until)
    return OrdersPolled(found, stored, mark)


def delivery_key(order: PolledOrder) -> str:
    """The same order, modified at the same time and shown alike, is the same delivery however
    often polled; the body's digest tells apart two changes a channel stamps with one second."""
    digest = hashlib.sha256(order.body).hexdigest()[:16]
    return f"poll:{order.order_id}:{order.modified_at.astimezone(UTC).isoformat()}:{digest}"


def _start(mark: datetime | None, until: datetime, overlap: timedelta) -> datetime:
    return (mark or until) - overlap


def _delivery(channel: ChannelConfig, order: PolledOrder) -> IncomingDelivery:
    lane = kind_of(channel).lane(order.topic)
    return IncomingDelivery(
        channel.id, delivery_key(order), order.topic, lane.value, order.headers, order.body
    )


def _batches(orders: Iterable[PolledOrder], size: int) -> Iterator[list[PolledOrder]]:
    listed = iter(orders)
    while page := list(islice(listed, size)):
        yield page
