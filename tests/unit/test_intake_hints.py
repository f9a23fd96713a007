"""Hints to the intake workers: commits that store while a send is under way share the next
send, one message per lane, and a failing or slow Redis never loses the hints after it nor
holds up the caller."""

from __future__ import annotations

import threading
import time

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.channels.base import Lane
from infrastructure.inbox import IncomingDelivery, Stored
from infrastructure.intake_hints import MESSAGE_IDS, HintSender, messages

SALE, RECEIPT = Lane.DECREMENTS, Lane.INCREMENTS


def _stored(lane: Lane, *ids: int | None) -> list[Stored]:
    delivery = IncomingDelivery("shop", "key", "orders/create", lane.value, {}, b"{}")
    return [Stored(delivery_id, delivery) for delivery_id in ids]


class _Redis:
    """Records what the sender sends; `hold` makes sends wait until released, `fail` makes
    the next sends raise."""

    def __init__(self) -> None:
        self.sent: list[tuple[Lane, list[int]]] = []
        self.sending = threading.Event()
        self.hold = threading.Event()
        self.hold.set()
        self.fail = 0

    def send(self, lane: Lane, ids: list[int]) -> None:
        self.sending.set()
        self.hold.wait(5)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("Redis is down")
        self.sent.append((lane, ids))

    def wait_for(self, count: int) -> list[tuple[Lane, list[int]]]:
        deadline = time.monotonic() + 5
        while len(self.sent) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.sent


@given(st.lists(st.tuples(st.sampled_from([SALE.value, RECEIPT.value]), st.integers(1, 10**9))))
def test_messages_keep_each_lane_s_ids_in_order_and_within_a_worker_s_batch(pending):
    found = messages(pending)
    for lane in (SALE, RECEIPT):
        sent = [i for message_lane, ids in found if message_lane is lane for i in ids]
        assert sent == [i for pending_lane, i in pending if pending_lane == lane.value]
    assert all(0 < len(ids) <= MESSAGE_IDS for _, ids in found)
    assert len(found) == sum(
        -(-sum(1 for lane, _ in pending if lane == each.value) // MESSAGE_IDS)
        for each in (SALE, RECEIPT)
    )


def test_commits_stored_during_a_send_share_the_next_one_message_per_lane():
    redis = _Redis()
    sender = HintSender(redis.send)
    redis.hold.clear()
    sender.hint(_stored(SALE, 1, 2))
    assert redis.sending.wait(5)
    for n in range(3, 50):  # commits while the first send waits on Redis
        sender.hint(_stored(SALE if n % 2 else RECEIPT, n))
    sender.hint(_stored(SALE, None))  # a duplicate: stored before, nothing to hint
    redis.hold.set()
    assert redis.wait_for(3) == [
        (SALE, [1, 2]),
        (SALE, list(range(3, 50, 2))),
        (RECEIPT, list(range(4, 50, 2))),
    ]
    sender.close()


def test_a_failed_send_is_left_to_the_sweeper_and_the_hints_after_it_are_sent():
    redis = _Redis()
    redis.fail = 1
    sender = HintSender(redis.send)
    sender.hint(_stored(SALE, 1))
    deadline = time.monotonic() + 5
    while redis.fail and time.monotonic() < deadline:
        time.sleep(0.005)
    sender.hint(_stored(SALE, 2))
    assert redis.wait_for(1) == [(SALE, [2])]
    sender.close()


def test_while_redis_does_not_answer_hints_beyond_the_bound_are_dropped_without_waiting():
    redis = _Redis()
    sender = HintSender(redis.send, max_waiting=10)
    redis.hold.clear()
    sender.hint(_stored(SALE, 0))
    assert redis.sending.wait(5)
    started = time.monotonic()
    for n in range(1, 31):
        sender.hint(_stored(SALE, n))
    assert time.monotonic() - started < 0.5
    redis.hold.set()
    assert redis.wait_for(2) == [(SALE, [0]), (SALE, list(range(1, 11)))]
    sender.close()


def test_after_close_nothing_more_is_sent():
    redis = _Redis()
    sender = HintSender(redis.send)
    sender.hint(_stored(SALE, 1))
    assert redis.wait_for(1) == [(SALE, [1])]
    sender.close()
    sender.hint(_stored(SALE, 2))
    time.sleep(0.05)
    assert redis.sent == [(SALE, [1])]


def test_dropping_is_warned_once_until_a_send_succeeds_and_again_after(caplog):
    redis = _Redis()
    sender = HintSender(redis.send, max_waiting=2)
    for sends, first in ((2, 0), (4, 10)):
        redis.sending.clear()
        redis.hold.clear()
        sender.hint(_stored(SALE, first))
        assert redis.sending.wait(5)
        sender.hint(_stored(SALE, first + 1, first + 2))
        for n in range(first + 3, first + 6):  # beyond the bound: dropped, warned once
            sender.hint(_stored(SALE, n))
        redis.hold.set()
        redis.wait_for(sends)
    dropped = [r for r in caplog.records if "the sweeper sends the next ones" in r.getMessage()]
    assert len(dropped) == 2
    assert redis.sent == [(SALE, [0]), (SALE, [1, 2]), (SALE, [10]), (SALE, [11, 12])]
    sender.close()
