"""The shared spacing limiter against a real Redis: calls from any number of workers are
spaced at least its interval apart, by Redis's clock."""

import itertools
import threading
import time
import uuid

import pytest
import redis

from infrastructure.push.spacing import Spacing


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_calls_from_many_workers_are_spaced_at_least_the_interval_apart(client):
    key, admitted, lock = f"test:{uuid.uuid4().hex}", [], threading.Lock()

    def worker():
        limiter = Spacing(client, key, 0.05)
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


def test_a_turn_not_due_within_the_wait_is_refused_and_books_nothing(client):
    limiter = Spacing(client, f"test:{uuid.uuid4().hex}", 0.5)
    assert limiter.take(wait=0)
    started = time.monotonic()
    assert not limiter.take(wait=0.1)
    assert time.monotonic() - started < 0.3
    assert limiter.take(wait=0.5)  # the refusal did not push the next turn back
    assert time.monotonic() - started < 0.6


def test_the_first_call_after_a_quiet_spell_goes_at_once(client):
    limiter = Spacing(client, f"test:{uuid.uuid4().hex}", 0.2)
    assert limiter.take(wait=0)
    time.sleep(0.25)
    started = time.monotonic()
    assert limiter.take(wait=0)
    assert time.monotonic() - started < 0.05
