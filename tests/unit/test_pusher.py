"""The pusher's loop without servers: its limits in memory (`MemoryLimits`, as one process runs
them), a hand-written outbox and channel. Read, decide, call, record: what goes, what waits and
what a failing channel costs (`tests/integration/test_push.py` runs the same over PostgreSQL and
Redis)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from infrastructure.channels.gateway import (
    ChannelUnavailable,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.limits import call_interval
from infrastructure.push.memory_limits import MemoryLimits
from infrastructure.push.pusher import Pusher, PushPolicy
from infrastructure.push.store import Acknowledged, Pending, Shown

CHANNEL = "fake"
OLD = datetime.now(UTC) - timedelta(hours=1)


@dataclass
class Outbox:
    """The pushers' side of the outbox, in memory: rows pending until acknowledged."""

    rows: dict[str, Pending] = field(default_factory=dict)
    acknowledged: list[Acknowledged] = field(default_factory=list)
    shown_rows: list[Shown] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)
    changes: int = 0
    reads: int = 0
    # Changes made just after the read of this number (1: the first), as a sale committed
    # while the pusher waits for its turn.
    after_read: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    slow_sales: list[float] = field(default_factory=list)  # seconds the reads of sales take

    def change(self, sku: str, quantity: int, acknowledged: int | None = None) -> None:
        self.changes += 1
        version = self.changes
        self.rows[sku] = Pending(
            sku, quantity, version, version, "sale", OLD, acknowledged, None, 0
        )

    def pending(self, channel_id: str, limit: int) -> list[Pending]:
        self.reads += 1
        found = list(self.rows.values())[:limit]
        for sku, quantity in self.after_read.pop(self.reads, []):
            self.change(sku, quantity)
        return found

    def sold(self, channel_id: str, rows: list[Pending]) -> list[Pending]:
        if self.slow_sales:
            time.sleep(self.slow_sales.pop(0))
        return [replace(p, sold=0) for p in rows]

    def remember_listings(self, channel_id: str, refs: list[tuple[str, str]]) -> None:
        pass

    def acknowledge(self, channel_id, acknowledged, answered_at, drifts=()):
        for answer in acknowledged:
            self.acknowledged.append(answer)
            del self.rows[answer.pending.sku]
        return []

    def shown(self, channel_id, shown, answered_at):
        self.shown_rows += shown
        for row in shown:
            self.rows[row.sku] = replace(row.pending, acknowledged_quantity=row.channel_quantity)

    def refused(self, channel_id, refused):
        self.refusals += refused

    def observe(self, channel_id, seen, reference):
        pass

    def submissions(self, channel_id):
        return []


class Channel:
    """A channel that keeps quantities, logs calls, and fails on demand."""

    channel_id, max_batch = CHANNEL, 2

    def __init__(self) -> None:
        self.shows: dict[str, int] = {}
        self.calls: list[list[Push]] = []
        self.failures: list[Exception] = []  # raised, first first, one per call
        self.moved: dict[str, int] = {}  # what a shopper left on the channel meanwhile
        self.turns: list[int] = []  # the calls the pusher took turns for, as it said each time
        self.arrived: list[float] = []  # when each call came (monotonic)

    def push(self, pushes):
        self.arrived.append(time.monotonic())
        self.calls.append(list(pushes))
        if self.failures:
            raise self.failures.pop(0)
        return [self._one(push) for push in pushes]

    def _one(self, push: Push) -> PushResult:
        if push.sku in self.moved:
            self.shows[push.sku] = self.moved.pop(push.sku)
            return PushResult(push.sku, PushStatus.STALE, self.shows[push.sku])
        self.shows[push.sku] = push.quantity
        return PushResult(push.sku, PushStatus.APPLIED, push.quantity)

    def turn_taken(self, calls: int = 1) -> None:
        self.turns.append(calls)


class Listing(Channel):
    """A channel whose pushes are preceded by a lookup of the SKUs it names by its own ids."""

    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[list[str]] = []
        self.lookup_failures: list[Exception] = []

    def listings(self, skus):
        self.looked_up.append(list(skus))
        if self.lookup_failures:
            raise self.lookup_failures.pop(0)
        return [(f"item:{sku}", sku) for sku in skus]


def pusher(outbox: Outbox, channel: Channel, limits=None, **gate: float) -> Pusher:
    policy = GatePolicy(**{"rate": 1000, **gate})
    made = ChannelGate(limits or MemoryLimits(), CHANNEL, policy, uuid.uuid4().hex)
    return Pusher(channel, outbox, made, PushPolicy(call_timeout=0.5, sku_interval=0.0))


def test_what_is_due_goes_a_batch_a_call_and_is_acknowledged():
    outbox, channel = Outbox(), Channel()
    for sku, quantity in (("A", 1), ("B", 2), ("C", 3)):
        outbox.change(sku, quantity)
    assert pusher(outbox, channel).drain() == 2
    assert [[p.sku for p in call] for call in channel.calls] == [["A", "B"], ["C"]]
    assert channel.shows == {"A": 1, "B": 2, "C": 3}
    assert outbox.rows == {}


def test_a_call_whose_turn_came_during_its_reads_goes_on_the_one_read_of_what_is_due():
    # Turns every millisecond, reads of 2 ms: each call's turn has come when it asks.
    outbox, channel = Outbox(slow_sales=[0.002, 0.002]), Channel()
    for sku, quantity in (("A", 1), ("B", 2), ("C", 3)):
        outbox.change(sku, quantity)
    assert pusher(outbox, channel, rate=100_000).drain() == 2
    assert outbox.reads == 3  # a read a call, and the one that found nothing due


def test_a_call_that_waited_for_its_turn_carries_what_changed_meanwhile():
    outbox, channel = Outbox(), Channel()
    outbox.change("A", 1)
    outbox.after_read = {1: [("B", 2)], 2: [("C", 3)]}  # B during A's call, C after B's read
    assert pusher(outbox, channel, rate=5).drain() == 2  # a turn every 250 ms
    assert [[p.sku for p in call] for call in channel.calls] == [["A"], ["B", "C"]]
    assert channel.shows == {"A": 1, "B": 2, "C": 3}


def test_calls_reach_the_channel_no_closer_than_the_limit_spaces_them_however_slow_the_reads():
    # The reads before the first call take 200 ms, those before the second none: a turn taken
    # before them would let the second call follow the first 50 ms later on a 250 ms spacing.
    outbox, channel = Outbox(slow_sales=[0.2]), Channel()
    for sku, quantity in (("A", 1), ("B", 2), ("C", 3)):
        outbox.change(sku, quantity)
    draining = pusher(outbox, channel, rate=5)  # a turn every 250 ms
    assert draining.drain() == 2
    first, second = channel.arrived
    assert second - first >= call_interval(5) - 0.005  # the clock's and the thread's slack
    assert channel.shows == {"A": 1, "B": 2, "C": 3}


def test_a_turn_no_further_off_than_the_reads_took_is_waited_for_without_reading_again():
    # Reads of 200 ms on a 250 ms spacing: the second call's turn is 50 ms off when it asks.
    outbox, channel = Outbox(slow_sales=[0.2, 0.2]), Channel()
    for sku, quantity in (("A", 1), ("B", 2), ("C", 3)):
        outbox.change(sku, quantity)
    assert pusher(outbox, channel, rate=5).drain() == 2
    assert outbox.reads == 3  # a read a call, and the one that found nothing due
    first, second = channel.arrived
    assert second - first >= call_interval(5) - 0.005


def test_a_call_reads_again_once_then_waits_for_its_turn_though_others_take_the_turns():
    # Another caller of the channel (a lookup, a reconciliation read) takes the next turn at
    # every read of the outbox: a call that slept towards its turn and read again each time
    # would never go within its 500 ms.
    class Contended(Outbox):
        def pending(self, channel_id: str, limit: int) -> list[Pending]:
            draining.gate.take_call(1.0)  # the rival's turn, taken as the pusher reads
            return super().pending(channel_id, limit)

    outbox, channel = Contended(), Channel()
    outbox.change("A", 1)
    draining = pusher(outbox, channel, rate=20)  # a turn every 50 ms or so
    assert draining.drain() == 1
    assert [[p.sku for p in call] for call in channel.calls] == [["A"]]
    assert outbox.reads <= 4  # the read, the one read again, and the one that found nothing


def test_a_channel_that_fails_a_lookup_before_the_turn_is_set_back_and_takes_no_turn():
    outbox, channel = Outbox(), Listing()
    outbox.change("A", 1)
    channel.lookup_failures = [ChannelUnavailable("503")]
    draining = pusher(outbox, channel)
    assert draining.drain() == 0
    assert draining.gate.state()["failures_in_a_row"] == 1
    assert channel.calls == []
    assert channel.turns == []
    assert draining.drain() == 1  # looked up, then pushed
    assert channel.looked_up == [["A"], ["A"]]
    assert channel.shows == {"A": 1}


def test_a_call_whose_turn_does_not_come_within_its_timeout_gives_the_turn_up_keeping_its_rows():
    outbox, channel = Outbox(), Channel()
    outbox.change("A", 1)
    draining = pusher(outbox, channel, rate=2)  # a turn every 625 ms; a call waits 500 ms
    assert draining.gate.take_call(0)  # another worker's call took the turn
    started = time.monotonic()
    assert draining.drain() == 0
    assert time.monotonic() - started >= 0.5
    assert channel.calls == []
    assert list(outbox.rows) == ["A"]


def test_a_throttled_channel_is_paused_and_keeps_its_rows():
    outbox, channel = Outbox(), Channel()
    outbox.change("A", 1)
    channel.failures = [Throttled("slow down", retry_after=30.0)]
    draining = pusher(outbox, channel)
    assert draining.drain() == 1
    assert 29 < draining.gate.closed_for() <= 30
    assert list(outbox.rows) == ["A"]
    assert draining.drain() == 0  # paused: not called


def test_failures_in_a_row_open_the_breaker_and_no_call_goes_while_it_is_open():
    outbox, channel = Outbox(), Channel()
    outbox.change("A", 1)
    channel.failures = [ChannelUnavailable("503")] * 2
    draining = pusher(outbox, channel, failures=2, cooldown=30.0)
    draining.drain()
    draining.drain()
    assert draining.gate.state()["breaker"] == "open"
    assert draining.drain() == 0
    assert len(channel.calls) == 2
    assert list(outbox.rows) == ["A"]


def test_a_channel_another_worker_drains_is_left_alone():
    outbox, channel, limits = Outbox(), Channel(), MemoryLimits()
    outbox.change("A", 1)
    draining = pusher(outbox, channel, limits)
    with draining.gate.draining() as mine:
        assert mine
        assert draining.drain() == 0
    assert draining.drain() == 1


def test_a_stale_answer_keeps_the_row_with_what_the_channel_shows_as_the_next_base():
    outbox, channel = Outbox(), Channel()
    outbox.change("A", 10)
    draining = pusher(outbox, channel)
    assert draining.drain() == 1
    channel.moved["A"] = 7  # a shopper bought 3 there
    outbox.change("A", 6, acknowledged=10)
    assert draining.drain() >= 1
    assert outbox.refusals[0] == ("A", "CHANGE_FROM_QUANTITY_STALE")
    assert outbox.shown_rows[0].channel_quantity == 7
    assert channel.calls[1] == [Push("A", 6, 2, acknowledged=10)]
    assert channel.calls[-1] == [Push("A", 6, 2, acknowledged=7)]  # then from what it shows
    assert channel.shows == {"A": 6}


def test_a_call_goes_on_the_turns_taken_together_for_it_and_those_it_left_lapse_after_it():
    outbox, channel = Outbox(), Channel()
    outbox.change("A", 1)
    channel.failures = [ChannelUnavailable("503")]
    draining = pusher(outbox, channel, calls_per_push=2)  # a read and its write, as WooCommerce's
    draining.drain()  # the call fails
    draining.drain()
    assert channel.turns == [2, 0, 2, 0]
    assert channel.shows == {"A": 1}
