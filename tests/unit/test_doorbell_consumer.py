"""The doorbell's consumer (`queue._WokenConsumer`) subclasses Dramatiq's private
`_RedisConsumer`, the same from dramatiq 2.0.0 through 2.2.1 (pyproject pins below 2.3). These
fail loudly when an upgrade changes what it relies on, instead of a worker quietly polling,
never waking, or holding its acks back: read the new class before raising the pin."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import _RedisConsumer

from infrastructure.queue import DoorbellBroker, _WokenConsumer


class RecordingBroker:
    """What the consumer calls of its broker and its Redis client, each call recorded as sent;
    nothing waits in the queue and no ring comes."""

    idle_wait_ms = 500

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.client = self

    def doorbell(self, queue_name: str) -> str:
        return f"{queue_name}.bell"

    def do_fetch(self, queue_name: str, count: int) -> list[bytes]:
        self.sent.append(("fetch", queue_name, count))
        return []

    def do_ack(self, queue_name: str, message_id: str) -> None:
        self.sent.append(("ack", queue_name, message_id))

    def do_nack(self, queue_name: str, message_id: str) -> None:
        self.sent.append(("nack", queue_name, message_id))

    def blpop(self, keys: list[str], timeout: float) -> None:
        self.sent.append(("blpop", *keys, timeout))


def consumer(broker: RecordingBroker) -> _WokenConsumer:
    return _WokenConsumer(broker, "q", 2, 20)  # type: ignore[arg-type]


def test_dramatiqs_consumer_is_built_as_the_doorbell_consumer_builds_it():
    parameters = list(inspect.signature(_RedisConsumer.__init__).parameters)
    assert parameters == ["self", "broker", "queue_name", "prefetch", "timeout"]
    assert isinstance(inspect.getattr_static(_RedisConsumer, "outstanding_message_count"), property)


def test_the_doorbell_broker_makes_its_consumers_doorbell_consumers():
    broker = DoorbellBroker(url="redis://127.0.0.1:1/0")  # never connected
    assert type(broker.consume("q", prefetch=2, timeout=20)) is _WokenConsumer


def test_a_consumer_finding_nothing_waits_for_its_doorbell_for_the_idle_wait():
    broker = RecordingBroker()
    assert next(consumer(broker)) is None
    assert broker.sent == [("fetch", "q", 2), ("blpop", "q.bell", 0.5)]


@pytest.mark.parametrize("outcome", ["ack", "nack"])
def test_an_ack_or_nack_is_sent_at_once_not_held_for_the_consumers_next_look(outcome):
    # The worker thread that ran the message calls this while the consumer may be blocked on
    # its doorbell: held for the consumer's next look, a worker killed meanwhile would have
    # the message run again.
    broker = RecordingBroker()
    message = Message("q", "an_actor", (), {}, {"redis_message_id": "r-1"})
    getattr(consumer(broker), outcome)(MessageProxy(message))
    assert broker.sent == [(outcome, "q", "r-1")]
