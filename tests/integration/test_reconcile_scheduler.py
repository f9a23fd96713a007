"""Several schedulers at once: each due run is made once, and worked once however often its
messages arrive."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.reconcile_plan import cadences, slot_start
from tests.integration.reconcile_fixtures import CountingSteps, reconciled_channel, reconciliation

START = datetime(2026, 12, 2, tzinfo=UTC)
EVERY = {"orders_every_seconds": 60, "active_every_seconds": 600, "catalog_every_seconds": 1800}


def expected_runs(channel_id: str, moments: list[datetime]) -> Counter[str]:
    """The runs each schedule makes at the moments, the runs of each finished before the next
    moment: one per slot a moment enters, but none of the active SKUs when the catalogue's run
    starts at the same moment (it reads them too)."""
    made: Counter[str] = Counter()
    last: dict[str, datetime] = {}
    for moment in moments:
        new = {}
        for cadence in cadences(*EVERY.values()):
            slot = slot_start(channel_id, cadence.every, moment)
            new[cadence.scope] = last.get(cadence.scope) != slot
            last[cadence.scope] = slot
        new["active"] = new["active"] and not new["catalog"]
        made.update(scope for scope, fresh in new.items() if fresh)
    return made


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    schedulers=st.integers(2, 4),
    offsets=st.lists(st.integers(0, 3600), min_size=1, max_size=6, unique=True),
    delivery=st.tuples(st.integers(1, 3), st.integers(0, 2**16)),
)
def test_schedulers_at_once_run_each_due_run_once(
    database_url, redis_url, schedulers, offsets, delivery
):
    repeats, seed = delivery  # each message arrives this many times, shuffled by the seed
    shop = reconciled_channel(**EVERY)
    steps = CountingSteps(orders=1)
    moments = [START + timedelta(seconds=s) for s in sorted(offsets)]
    with reconciliation(database_url, redis_url, [shop]) as runs:
        sent: list[tuple[int, int]] = []
        # Messages are kept here and delivered by the test, in any order, more than once.
        runs.queue.send = lambda run_id, step: sent.append((run_id, step))
        worker = runs.serve(steps.reconcilers())
        ticking = [runs.scheduler() for _ in range(schedulers)]
        for moment in moments:
            _all_at_once([lambda s=s, m=moment: s.schedule(m) for s in ticking])
            while sent:
                batch = sent * repeats
                random.Random(seed).shuffle(batch)
                sent.clear()
                for run_id, step in batch:
                    worker.work(run_id, step)
        made = runs.latest(shop.id, 100)

    expected = expected_runs(shop.id, moments)
    assert Counter(run.scope for run in made) == expected
    assert all(run.state == "done" for run in made)
    assert steps.calls[(shop.id, "orders")] == sum(expected.values())  # each run polls once
    assert steps.calls[(shop.id, "levels")] == expected["catalog"]  # no SKU active: no read
    assert sum((r.counts.orders_found for r in made), 0) == sum(expected.values())


def _all_at_once(tasks):
    ready = threading.Barrier(len(tasks))
    errors = []

    def run(task):
        ready.wait()
        try:
            task()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
