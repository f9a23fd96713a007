"""The pusher against a hand-written fake channel (the sandboxes test the real wire formats):
what is due goes out coalesced and in scratch_ledger order, throttling and outages pause the channel
without losing anything, stale answers are never overwritten."""

import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import redis

from application.availability import VELOCITY_DAYS
from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.channels.gateway import (
    ChannelError,
    ChannelUnavailable,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from infrastructure.push.gate import ChannelGate, GatePolicy
from infrastructure.push.pusher import Pusher, PushPolicy
from infrastructure.push.redis_limits import RedisLimits
from infrastructure.push.store import PushStore
from tests.helpers import change, random_sku

K = ChangeKind
CHANNEL = "fake"
RULES = (ChannelRule(CHANNEL),)


class FakeChannel:
    """A channel that keeps quantities, logs calls, and fails on demand."""

    channel_id = CHANNEL
    max_batch = 50

    def __init__(self):
        self.shows: dict[str, int] = {}
        self.calls: list[list[Push]] = []
        self.failures: list[Exception] = []  # raised, first first, one per call
        self.moved: dict[str, int] = {}  # SKUs a shopper changed on the channel meanwhile

    def push(self, pushes):
        self.calls.append(list(pushes))
        if self.failures:
            raise self.failures.pop(0)
        results = []
        for push in pushes:
            if push.sku in self.moved:
                self.shows[push.sku] = self.moved.pop(push.sku)
                results.append(PushResult(push.sku, PushStatus.STALE, self.shows[push.sku]))
                continue
            self.shows[push.sku] = push.quantity
            results.append(PushResult(push.sku, PushStatus.APPLIED, push.quantity))
        return results

    def read(self, skus):
        return {sku: self.shows.get(sku) for sku in skus}

    def turn_taken(self, calls=1):
        pass

    def close(self):
        pass


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def store(scratch_database):
    store = PushStore(scratch_database)
    yield store
    store.close()


@pytest.fixture
def runner(scratch_database):
    with AvailabilityRunner(eventsourcing_env(scratch_database), RULES) as runner:
        yield runner


def pusher_for(
    channel, store, client, *, hot=frozenset(), window=60.0, interval=0.0, quiet=0.0, **policy
):
    """A pusher whose long tail waits `window` (always, unless `quiet`: see `PushPolicy`)."""
    gate = ChannelGate(
        RedisLimits(client), CHANNEL, GatePolicy(**policy), namespace=uuid.uuid4().hex
    )
    push_policy = PushPolicy(
        batch_window=window, call_timeout=1.0, sku_interval=interval, quiet_share=quiet
    )
    return Pusher(channel, store, gate, push_policy, hot=lambda: set(hot))


def settle(runner, scratch_ledger):
    assert runner.wait(scratch_ledger.recorder.max_notification_id(), timeout=10)


def test_a_hot_sku_goes_out_at_once_and_its_sales_coalesce_into_one_call(
    runner, scratch_ledger, store, client
):
    sku, channel = random_sku(), FakeChannel()
    scratch_ledger.record(change(K.RECEIPT, sku, 500))
    scratch_ledger.record_batch([change(K.SALE, sku, 1) for _ in range(100)])
    settle(runner, scratch_ledger)
    pusher = pusher_for(channel, store, client, hot={sku}, rate=50)
    assert pusher.drain() == 1
    assert channel.shows == {sku: 400}
    assert store.pending(CHANNEL, 10) == []
    assert pusher.drain() == 0  # nothing pending: no call
    assert set(store.windows(CHANNEL)) <= {"sale", "receipt"}


def test_the_long_tail_waits_for_the_batch_window_then_shares_one_call(
    runner, scratch_ledger, store, client
):
    skus, channel = [random_sku() for _ in range(30)], FakeChannel()
    scratch_ledger.record_batch([change(K.RECEIPT, sku, 5) for sku in skus])
    settle(runner, scratch_ledger)
    waiting = pusher_for(channel, store, client, window=60.0, rate=50)
    assert waiting.drain() == 0  # none hot, none old enough
    assert channel.calls == []
    due = pusher_for(channel, store, client, window=0.0, rate=50)
    assert due.drain() == 1
    assert channel.shows == dict.fromkeys(skus, 5)


def test_in_a_quiet_store_a_slow_movers_change_goes_at_once_not_after_the_batch_window(
    runner, scratch_ledger, store, client
):
    sku, channel = random_sku(), FakeChannel()
    scratch_ledger.record(change(K.RECEIPT, sku, 50))
    settle(runner, scratch_ledger)
    pusher = pusher_for(channel, store, client, window=60.0, quiet=0.5, rate=10)
    assert pusher.drain() == 1  # nothing else called: no company to wait for
    assert channel.shows == {sku: 50}
    scratch_ledger.record(change(K.SALE, sku, 1))
    settle(runner, scratch_ledger)
    assert pusher.drain() == 0  # it called within the window: it sells on, and waits the window
    assert channel.shows == {sku: 50}


def test_a_slow_mover_at_risk_goes_at_once_while_the_rest_of_the_long_tail_waits(
    runner, scratch_ledger, store, client
):
    low, plenty, gone, channel = random_sku(), random_sku(), random_sku(), FakeChannel()
    scratch_ledger.record_batch([change(K.RECEIPT, sku, 50) for sku in (low, plenty, gone)])
    settle(runner, scratch_ledger)
    assert pusher_for(channel, store, client, window=0.0, rate=50).drain() == 1
    scratch_ledger.record_batch([change(K.SALE, low, 48), change(K.SALE, plenty, 1)])
    settle(runner, scratch_ledger)
    waiting = pusher_for(channel, store, client, window=60.0, rate=50)
    assert waiting.drain() == 0  # 2 left is more than the buffer of 0 and its sales in the window
    buffered = pusher_for(channel, store, client, window=60.0, rate=50)
    buffered.policy = replace(buffered.policy, buffer=2)
    assert buffered.drain() == 1  # at the buffer: at risk, and the rest rides along
    assert channel.shows == {low: 2, plenty: 49, gone: 50}
    scratch_ledger.record(change(K.SALE, gone, 50))
    settle(runner, scratch_ledger)
    assert waiting.drain() == 1  # a move to zero goes at once
    assert channel.shows[gone] == 0


def test_a_throttled_channel_is_paused_for_its_retry_after_and_keeps_its_rows(
    runner, scratch_ledger, store, client
):
    sku, channel = random_sku(), FakeChannel()
    scratch_ledger.record(change(K.RECEIPT, sku, 3))
    settle(runner, scratch_ledger)
    channel.failures = [Throttled("slow down", retry_after=0.4)]
    pusher = pusher_for(channel, store, client, hot={sku}, rate=50)
    assert pusher.drain() == 1
    assert 0.1 < pusher.gate.closed_for() <= 0.4
    assert [p.sku for p in store.pending(CHANNEL, 10)] == [sku]
    assert pusher.drain() == 0  # paused: not called
    threading.Event().wait(0.45)
    assert pusher.drain() == 1
    assert channel.shows == {sku: 3}


def test_an_outage_opens_the_breaker_and_the_backlog_drains_in_ledger_order_after(
    runner, scratch_ledger, store, client
):
    skus, channel = [random_sku() for _ in range(5)], FakeChannel()
    pusher = pusher_for(channel, store, client, hot=set(skus), rate=50, failures=2, cooldown=0.3)
    for n, sku in enumerate(skus):
        scratch_ledger.record(change(K.RECEIPT, sku, n + 1))
    settle(runner, scratch_ledger)
    channel.failures = [ChannelUnavailable("503")] * 2
    pusher.drain()
    pusher.drain()
    assert pusher.gate.state()["breaker"] == "open"
    assert len(store.pending(CHANNEL, 10)) == 5
    calls_while_open = len(channel.calls)
    assert pusher.drain() == 0
    assert len(channel.calls) == calls_while_open
    threading.Event().wait(0.35)
    assert pusher.drain() == 1
    assert [p.sku for p in channel.calls[-1]] == skus  # in scratch_ledger order
    assert channel.shows == {sku: n + 1 for n, sku in enumerate(skus)}
    assert pusher.gate.state()["breaker"] == "closed"


def test_a_stale_answer_is_not_overwritten_and_becomes_an_observation(
    runner, scratch_ledger, store, client, scratch_database
):
    sku, channel = random_sku(), FakeChannel()
    scratch_ledger.record(change(K.RECEIPT, sku, 10))
    settle(runner, scratch_ledger)
    pusher = pusher_for(channel, store, client, hot={sku}, rate=50)
    assert pusher.drain() == 1
    channel.moved[sku] = 7  # a shopper bought 3 there; its webhook has not arrived
    scratch_ledger.record(change(K.SALE, sku, 1))  # ATS 9, truly 6: no raise over 7 may go
    settle(runner, scratch_ledger)
    assert pusher.drain() == 1
    assert channel.shows == {sku: 7}
    with psycopg.connect(scratch_database) as conn:
        seen = conn.execute(
            "SELECT quantity, reference FROM channel_observations WHERE sku = %s", [sku]
        ).fetchall()
        acknowledged = conn.execute(
            "SELECT acknowledged_quantity FROM availability_outbox WHERE sku = %s", [sku]
        ).fetchone()
    assert seen == [(7, "push:stale")]
    assert acknowledged == (7,)  # the base of the next push's compare-and-set
    assert [p.sku for p in store.pending(CHANNEL, 10)] == [sku]  # still to push
    scratch_ledger.record(change(K.SALE, sku, 3, source=CHANNEL))  # the webhook arrives
    settle(runner, scratch_ledger)
    assert pusher.drain() == 1
    assert channel.calls[-1] == [Push(sku, 6, 4, acknowledged=7, urgent=True)]
    assert store.pending(CHANNEL, 10) == []


def test_only_one_worker_drains_a_channel_at_a_time(runner, scratch_ledger, store, client):
    sku, channel = random_sku(), FakeChannel()
    scratch_ledger.record(change(K.RECEIPT, sku, 4))
    settle(runner, scratch_ledger)
    pusher = pusher_for(channel, store, client, hot={sku}, rate=50)
    with pusher.gate.draining() as mine:
        assert mine
        assert pusher.drain() == 0  # the other worker holds the channel
    assert pusher.drain() == 1


def test_every_event_a_push_carries_gets_its_own_consistency_window(
    runner, scratch_ledger, store, client
):
    sku, channel = random_sku(), FakeChannel()
    started = datetime.now(UTC)
    scratch_ledger.record(change(K.RECEIPT, sku, 9))
    settle(runner, scratch_ledger)
    threading.Event().wait(0.3)
    scratch_ledger.record(change(K.SALE, sku, 1))
    settle(runner, scratch_ledger)
    [pending] = store.pending(CHANNEL, 10)
    assert pending.kind == "sale"
    assert started <= pending.first_changed_at < started + timedelta(seconds=0.3)  # the receipt
    pusher = pusher_for(channel, store, client, hot={sku}, rate=50)
    pusher.drain()
    windows = store.windows(CHANNEL)
    assert windows["receipt"]["pushes"] == windows["sale"]["pushes"] == 1
    assert windows["receipt"]["p50"] >= 0.3  # recorded before the wait
    assert windows["sale"]["p50"] < 0.3  # recorded after it


def test_a_sku_pushed_a_moment_ago_makes_no_call_of_its_own_but_rides_along_others(
    runner, scratch_ledger, store, client
):
    busy, quiet, channel = random_sku(), random_sku(), FakeChannel()
    scratch_ledger.record(change(K.RECEIPT, busy, 50))
    settle(runner, scratch_ledger)
    pusher = pusher_for(channel, store, client, hot={busy, quiet}, interval=0.5, rate=50)
    assert pusher.drain() == 1
    scratch_ledger.record(change(K.SALE, busy, 1))
    settle(runner, scratch_ledger)
    assert pusher.drain() == 0  # within its interval: no call for it alone
    scratch_ledger.record(change(K.RECEIPT, quiet, 9))
    settle(runner, scratch_ledger)
    assert pusher.drain() == 1
    assert channel.calls[-1] == [
        Push(quiet, 9, 2, urgent=True),
        Push(busy, 49, 3, acknowledged=50, urgent=True),  # hot, riding along: urgent still
    ]
    scratch_ledger.record(change(K.SALE, busy, 1))
    settle(runner, scratch_ledger)
    threading.Event().wait(0.5)
    assert pusher.drain() == 1  # its interval is over
    assert channel.calls[-1] == [Push(busy, 48, 4, acknowledged=49, urgent=True)]


def test_a_lingering_drain_takes_changes_that_arrive_while_it_waits(
    runner, scratch_ledger, store, client
):
    sku, channel = random_sku(), FakeChannel()
    scratch_ledger.record(change(K.RECEIPT, sku, 8))
    settle(runner, scratch_ledger)
    pusher = pusher_for(channel, store, client, hot={sku}, rate=50)
    pusher.policy = replace(pusher.policy, linger=0.6)
    later = threading.Timer(0.2, lambda: scratch_ledger.record(change(K.SALE, sku, 3)))
    later.start()
    started = time.monotonic()
    calls = pusher.drain()
    later.join()
    assert calls == 2  # one drain, two calls: no nudge needed for the second
    assert channel.calls[-1] == [Push(sku, 5, 3, acknowledged=8, urgent=True)]
    assert time.monotonic() - started >= 0.6  # it left only after lingering with nothing due
    assert not pusher.gate.busy()


def test_consistency_windows_older_than_an_hour_are_forgotten(store, scratch_database):
    with psycopg.connect(scratch_database) as conn:
        conn.execute(
            "INSERT INTO push_windows (channel_id, kind, seconds, acknowledged_at) VALUES "
            "(%s, 'sale', 9, now() - interval '2 hours'), (%s, 'sale', 0.1, now())",
            [CHANNEL, CHANNEL],
        )
    assert store.windows(CHANNEL)["sale"]["pushes"] == 1  # the old one is not read back
    store.forget_old_windows()
    with psycopg.connect(scratch_database) as conn:
        kept = conn.execute("SELECT seconds FROM push_windows").fetchall()
    assert kept == [(0.1,)]


class FeedChannel(FakeChannel):
    """A channel that takes more than one push for processing later, as Amazon's feeds do."""

    def __init__(self):
        super().__init__()
        self.feeds: dict[str, list[Push]] = {}
        self.processed: set[str] = set()

    def push(self, pushes):
        if len(pushes) == 1:
            return super().push(pushes)
        self.calls.append(list(pushes))
        ticket = f"feed-{len(self.feeds) + 1}"
        self.feeds[ticket] = list(pushes)
        return [PushResult(p.sku, PushStatus.SUBMITTED, ticket=ticket) for p in pushes]

    def settle(self, ticket, skus):
        if ticket not in self.processed:
            return None
        pushes = self.feeds[ticket]
        assert [p.sku for p in pushes] == list(skus)
        self.shows.update({p.sku: p.quantity for p in pushes})
        return [PushResult(p.sku, PushStatus.APPLIED) for p in pushes]


def feed_of_two(runner, scratch_ledger, store, client, *quantities, **policy):
    """Two hot SKUs received, and a drain that sent them in one feed."""
    one, two, channel = random_sku(), random_sku(), FeedChannel()
    scratch_ledger.record_batch(
        [change(K.RECEIPT, s, q) for s, q in zip((one, two), quantities, strict=True)]
    )
    settle(runner, scratch_ledger)
    pusher = pusher_for(channel, store, client, hot={one, two}, rate=50)
    pusher.policy = replace(pusher.policy, settle_every=0.0, **policy)
    assert pusher.drain() == 1
    return one, two, channel, pusher


def test_a_submitted_feed_holds_its_skus_until_settled_then_a_newer_quantity_goes(
    runner, scratch_ledger, store, client
):
    one, two, channel, pusher = feed_of_two(runner, scratch_ledger, store, client, 10, 20)
    assert list(channel.feeds) == ["feed-1"]
    scratch_ledger.record(change(K.SALE, one, 1))  # changes while the feed is processed
    settle(runner, scratch_ledger)
    assert pusher.drain() == 0  # in flight: an older quantity must not land after a newer one
    assert len(store.pending(CHANNEL, 10)) == 0
    channel.processed.add("feed-1")
    assert pusher.drain() == 1  # settled, then the newer quantity of `one` goes
    assert channel.shows == {one: 9, two: 20}
    assert channel.calls[-1] == [Push(one, 9, 3, acknowledged=10, urgent=True)]
    assert store.submissions(CHANNEL) == []
    assert set(store.windows(CHANNEL)) == {"receipt", "sale"}


def test_a_submission_the_channel_never_answers_for_is_given_up_and_its_rows_go_again(
    runner, scratch_ledger, store, client
):
    one, two, channel, pusher = feed_of_two(
        runner, scratch_ledger, store, client, 1, 2, submission_timeout=0.3
    )
    threading.Event().wait(0.35)
    assert pusher.drain() == 1  # given up: both went again, in a feed of their own
    assert list(channel.feeds) == ["feed-1", "feed-2"]
    assert {p.sku for p in channel.feeds["feed-2"]} == {one, two}


def test_a_call_the_channel_refuses_as_a_whole_keeps_its_rows_and_counts_against_the_breaker(
    runner, scratch_ledger, store, client
):
    sku, channel = random_sku(), FakeChannel()
    pusher = pusher_for(channel, store, client, hot={sku}, rate=50, failures=1, cooldown=0.3)
    scratch_ledger.record(change(K.RECEIPT, sku, 4))
    settle(runner, scratch_ledger)
    channel.failures = [ChannelError("400: the feed document is invalid")]
    pusher.drain()  # no exception: Dramatiq would only retry what can never succeed
    assert pusher.gate.state()["breaker"] == "open"
    assert [p.sku for p in store.pending(CHANNEL, 10)] == [sku]
    threading.Event().wait(0.35)
    assert pusher.drain() == 1
    assert channel.shows == {sku: 4}


def test_the_drain_lock_outlasts_the_slowest_drain_a_channel_allows(client):
    from infrastructure.config import PushConfig
    from infrastructure.push.service import longest_drain

    slowest = longest_drain(PushConfig(timeout_seconds=120))
    assert slowest >= PushPolicy.turn + 3 * 120  # a lookup, a push and a re-read, each timing out
    namespace = uuid.uuid4().hex
    gate = ChannelGate(RedisLimits(client), CHANNEL, GatePolicy(hold=slowest), namespace=namespace)
    with gate.draining() as mine:
        assert mine
        left = client.pttl(f"{namespace}:push:{CHANNEL}:drain")
        assert slowest * 1000 - 5000 < left <= slowest * 1000


def test_the_channels_waiting_are_those_with_a_pending_row(runner, scratch_ledger, store, client):
    sku = random_sku()
    assert store.waiting([CHANNEL, "nobody"]) == []
    scratch_ledger.record(change(K.RECEIPT, sku, 2))
    settle(runner, scratch_ledger)
    assert store.waiting([CHANNEL, "nobody"]) == [CHANNEL]
    channel = FakeChannel()
    assert pusher_for(channel, store, client, hot={sku}, rate=50).drain() == 1
    assert store.waiting([CHANNEL]) == []


def test_the_pushers_read_each_sold_skus_units_a_day_over_the_velocity_window(
    runner, scratch_ledger, store
):
    sold, unsold = random_sku(), random_sku()
    scratch_ledger.record_batch([change(K.RECEIPT, sold, 50), change(K.RECEIPT, unsold, 50)])
    scratch_ledger.record_batch([change(K.SALE, sold, 1) for _ in range(14)])
    settle(runner, scratch_ledger)
    velocity = store.velocities()
    assert velocity[sold] == 14 / VELOCITY_DAYS
    assert unsold not in velocity
