"""One webhook sender for every sandbox, behaving as a channel's delivery service does
(CHANNELS.md §7): each message is signed by the channel's signer, posted by a bounded pool of
delivery threads (many at once, as delivery services post), retried after each of the channel's
documented delays with the same id and bytes, and every attempt is recorded. What channels do to
receivers is there on demand: duplicates (`duplicates`), deliveries out of order (`held()`),
outages of the receiver (a refused or timed-out post fails like a 5xx and is retried alike), and
messages lost on the way (`lose`).

A channel plugs in two things: its `Signer` (written from the channel's documentation, never
from our verifiers, so a mistake on one side cannot cancel out) and its retry schedule, with what
it counts as delivered and whether it removes the subscription once a message's retries are
spent (Shopify does, SNS drops the message, WooCommerce never retries at all).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

import httpx

from sandboxes.timeline import Timeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One webhook as it goes over the wire; the same id and bytes on every retry and duplicate."""

    topic: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def with_headers(self, **headers: str) -> Message:
        return replace(self, headers={**self.headers, **headers})


class Signer(Protocol):
    """A channel's way of signing what it sends, its secret or key inside."""

    def sign(self, message: Message) -> Message:
        """`message` as the channel sends it: signed (in a header, or in the body) and with the
        channel's other headers."""
        ...


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: `status` None when the receiver could not be reached (refused,
    timed out)."""

    message: Message
    retry: int  # 0: the first delivery
    status: int | None
    delivered: bool
    lost: bool = False  # lost on the way: the channel counts it delivered, nobody received it
    # When the post began (`time.monotonic()`): where a receiver's clock starts for this message.
    posted: float = field(default_factory=time.monotonic)

    @property
    def topic(self) -> str:
        return self.message.topic

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def headers(self) -> Mapping[str, str]:
        return self.message.headers


# Deliveries in flight at once, by default. Delivery services post many webhooks concurrently
# (Shopify documents no figure; SNS delivers unthrottled unless a policy says otherwise), so a
# receiver's pace, not one queue in the sender, sets how soon a webhook arrives. Ten is enough
# that a burst (Shopify sends an inventory_levels/update for every quantity set) never waits
# behind a slow answer, and few enough that a sandbox cannot swamp a receiver on this machine.
DELIVERIES_AT_ONCE = 10


def two_hundreds(status: int) -> bool:
    """What most channels count as delivered: a 2xx (a redirect is a failure)."""
    return 200 <= status < 300


class WebhookSender:
    """One subscription's deliveries to `url`, as the channel makes them.

    Parameters:
        url: where deliveries go; None: nowhere (nothing is sent). May change between attempts.
        signer: the channel's signer.
        retry_delays: seconds before each retry of a failed delivery, as the channel documents
            them (a test compresses them); empty: never retried.
        timeout: what a delivery may take, as the channel documents it.
        delivered: which statuses count as delivered.
        remove_when_spent: whether the channel removes the subscription (`active` False) once a
            message's retries are spent.
        name: the background threads' name.
        concurrency: deliveries posted at once; 1: one at a time, in the order they fell due
            (what a test of the order of arrival asks for).
    """

    def __init__(
        self,
        url: str | None,
        signer: Signer,
        *,
        retry_delays: tuple[float, ...] = (),
        timeout: httpx.Timeout | float = 5.0,
        delivered: Callable[[int], bool] = two_hundreds,
        remove_when_spent: bool = False,
        name: str = "sandbox-webhooks",
        concurrency: int = DELIVERIES_AT_ONCE,
    ) -> None:
        self.url, self.signer = url, signer
        self.retry_delays, self.delivered = retry_delays, delivered
        self.remove_when_spent = remove_when_spent
        self.active = True  # False once the channel removed or disabled the subscription
        self.duplicates = 0  # extra copies of each message sent, as at-least-once delivery may
        self.attempts: list[Attempt] = []
        self._losing = 0  # messages still to lose
        # The timeline decides when each delivery or retry falls due; the pool posts them.
        self._timeline = Timeline(name)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix=name)
        self._client = httpx.Client(
            timeout=timeout, limits=httpx.Limits(max_keepalive_connections=concurrency)
        )
        self._held: list[tuple[Message, int]] | None = None
        self._busy = 0  # deliveries queued or running, retries included
        self._idle = threading.Condition()

    def send(self, message: Message, *, duplicates: int | None = None) -> Message | None:
        """Sign `message` and queue its delivery (and `duplicates` more, default `duplicates`);
        the message as signed, None when there is no active subscription to deliver to."""
        if self.url is None or not self.active:
            return None
        signed = self.signer.sign(message)
        copies = 1 + (self.duplicates if duplicates is None else duplicates)
        with self._idle:
            if self._held is not None:
                self._held.append((signed, copies))
                return signed
        for _ in range(copies):
            self._queue(signed, retry=0, delay=0.0)
        return signed

    def deliver(self, message: Message) -> Attempt:
        """Sign and deliver `message` now, on the caller's thread (a failure is retried later as
        the schedule says)."""
        signed = self.signer.sign(message)
        return self._lost_attempt(signed) or self._attempt(signed, retry=0)

    def lose(self, count: int = 1) -> None:
        """The next `count` messages are lost on the way: never posted nor retried, while the
        channel counts them delivered (a webhook lost for good, as WooCommerce's often are)."""
        with self._idle:
            self._losing += count

    def _lost(self) -> bool:
        with self._idle:
            if self._losing:
                self._losing -= 1
                return True
            return False

    @contextmanager
    def held(self) -> Iterator[None]:
        """Messages sent inside the block go out after it, newest first."""
        with self._idle:
            self._held = []
        try:
            yield
        finally:
            with self._idle:
                held, self._held = self._held or [], None
            for message, copies in reversed(held):
                for _ in range(copies):
                    self._queue(message, retry=0, delay=0.0)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Whether every queued delivery (and its retries) finished within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                if not self._idle.wait(deadline - time.monotonic()):
                    return False
        return True

    def close(self) -> None:
        """Stop delivering: what is still queued is never sent (deliveries under way finish)."""
        self._timeline.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def _queue(self, message: Message, retry: int, delay: float) -> None:
        with self._idle:
            self._busy += 1
        self._timeline.after(delay, lambda: self._due(message, retry))

    def _due(self, message: Message, retry: int) -> None:
        """On the timeline's thread, in the order deliveries fell due: which message is lost is
        decided here, so `lose` takes the next messages whatever the pool does with them."""
        if retry == 0 and self._lost_attempt(message):
            self._done()
        else:
            self._pool.submit(self._queued, message, retry)

    def _queued(self, message: Message, retry: int) -> None:
        try:
            self._attempt(message, retry)
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def _lost_attempt(self, message: Message) -> Attempt | None:
        """The first delivery of `message` lost on the way, if it is one of those to lose."""
        if not self._lost():
            return None
        lost = Attempt(message, 0, None, delivered=True, lost=True)
        self.attempts.append(lost)
        return lost

    def _attempt(self, message: Message, retry: int) -> Attempt:
        posted = time.monotonic()
        status = self._post(message)
        delivered = status is not None and self.delivered(status)
        attempt = Attempt(message, retry, status, delivered, posted=posted)
        self.attempts.append(attempt)
        if attempt.delivered:
            return attempt
        if retry < len(self.retry_delays):
            self._queue(message, retry + 1, self.retry_delays[retry])
        elif self.remove_when_spent:
            self.active = False
        return attempt

    def _post(self, message: Message) -> int | None:
        url = self.url
        if url is None:
            return None
        try:
            answer = self._client.post(url, content=message.body, headers=dict(message.headers))
        except httpx.HTTPError as error:
            log.info("%s: %s not delivered to %s: %s", message.topic, message.id, url, error)
            return None
        return answer.status_code
