"""The one webhook sender every sandbox delivers through: retries on the channel's schedule with
the same bytes, what counts as delivered, subscriptions removed once retries are spent, receivers
that are down, duplicates, deliveries out of order and many at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandboxes.server import SandboxServer, free_port
from sandboxes.webhooks import Message, WebhookSender, two_hundreds

FAST = (0.01, 0.01)


class Stamp:
    """A signer that marks what it signed."""

    def sign(self, message: Message) -> Message:
        return message.with_headers(**{"X-Signed": message.topic})


class Receiver:
    def __init__(self) -> None:
        self.statuses: list[int] = []  # answers to give, in turn; then 200
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.app = Starlette(routes=[Route("/hooks", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    with SandboxServer(receiver.app) as server:
        yield receiver, f"{server.url}/hooks"


def sender(url: str | None, **options) -> WebhookSender:
    return WebhookSender(url, Stamp(), retry_delays=FAST, timeout=2.0, **options)


def test_a_failed_delivery_is_retried_on_the_schedule_with_the_same_signed_bytes(receiver):
    endpoint, url = receiver
    endpoint.statuses = [500, 302]
    hooks = sender(url)
    sent = hooks.send(Message("orders/create", b'{"id":1}'))
    assert hooks.wait_idle()
    hooks.close()
    assert sent is not None
    assert sent.headers["X-Signed"] == "orders/create"
    assert [(a.retry, a.status, a.delivered) for a in hooks.attempts] == [
        (0, 500, False),
        (1, 302, False),
        (2, 200, True),
    ]
    assert {body for _, body in endpoint.received} == {b'{"id":1}'}
    assert {headers["x-signed"] for headers, _ in endpoint.received} == {"orders/create"}


def test_once_retries_are_spent_the_message_is_dropped_or_the_subscription_removed(receiver):
    endpoint, url = receiver
    for remove, active in ((False, True), (True, False)):
        endpoint.statuses = [503] * 3
        hooks = sender(url, remove_when_spent=remove)
        hooks.send(Message("t", b"{}"))
        assert hooks.wait_idle()
        assert len(hooks.attempts) == 3
        assert hooks.active is active
        assert (hooks.send(Message("t", b"{}")) is None) is not active
        hooks.close()


def test_a_receiver_that_is_down_fails_like_a_5xx_and_is_retried():
    hooks = sender(f"http://127.0.0.1:{free_port()}/hooks")
    hooks.send(Message("t", b"{}"))
    assert hooks.wait_idle()
    hooks.close()
    assert [(a.retry, a.status) for a in hooks.attempts] == [(0, None), (1, None), (2, None)]


def test_what_counts_as_delivered_is_the_channels_own(receiver):
    endpoint, url = receiver
    endpoint.statuses = [302]
    hooks = sender(url, delivered=lambda status: two_hundreds(status) or status == 302)
    attempt = hooks.deliver(Message("t", b"{}"))
    hooks.close()
    assert (attempt.status, attempt.delivered, len(hooks.attempts)) == (302, True, 1)


def test_duplicates_keep_the_id_and_held_messages_go_out_newest_first(receiver):
    endpoint, url = receiver
    hooks = sender(url, concurrency=1)  # one at a time: the order of arrival is the test
    hooks.duplicates = 1
    first = hooks.send(Message("first", b"1"))
    assert hooks.wait_idle()
    hooks.duplicates = 0
    with hooks.held():
        hooks.send(Message("second", b"2"))
        hooks.send(Message("third", b"3"), duplicates=1)
        assert hooks.wait_idle()  # nothing goes out while held
    assert hooks.wait_idle()
    hooks.close()
    assert first is not None
    assert [a.message.id for a in hooks.attempts[:2]] == [first.id, first.id]
    assert [body for _, body in endpoint.received] == [b"1", b"1", b"3", b"3", b"2"]


def test_without_a_subscription_nothing_is_sent():
    hooks = sender(None)
    assert hooks.send(Message("t", b"{}")) is None
    hooks.close()
    assert hooks.attempts == []


class Gate:
    """A receiver that holds each delivery until `wanted` are in flight together (at most
    `patience` seconds), and notes the most it ever held at once."""

    def __init__(self, wanted: int, patience: float = 3.0) -> None:
        self.wanted, self.patience = wanted, patience
        self.in_flight = self.most = 0
        self.full = asyncio.Event()
        self.app = Starlette(routes=[Route("/hooks", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        await request.body()
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.wanted:
            self.full.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.full.wait(), self.patience)
        self.in_flight -= 1
        return Response(status_code=200)


@pytest.mark.parametrize(
    ("concurrency", "gate", "most"),
    [
        # The first delivery is still held when the third arrives; no fourth comes in beside.
        (3, Gate(wanted=3), 3),
        # One at a time never overlaps: each waits out the gate's patience alone.
        (1, Gate(wanted=2, patience=0.2), 1),
    ],
)
def test_deliveries_overlap_up_to_the_senders_bound(concurrency, gate, most):
    with SandboxServer(gate.app) as server:
        hooks = sender(f"{server.url}/hooks", concurrency=concurrency)
        for n in range(5):
            hooks.send(Message("t", str(n).encode()))
        assert hooks.wait_idle()
        hooks.close()
    assert gate.most == most
    assert [a.status for a in hooks.attempts] == [200] * 5
