import threading
import time
from datetime import UTC, datetime

import pytest

from application.errors import LedgerBusy, UnknownSku
from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.outcomes import OutcomeStatus
from domain.inventory import inventory_item_id
from domain.stock import ChangeKind, Levels
from infrastructure.postgres import eventsourcing_env
from tests import ledger_scenarios as scenarios
from tests.helpers import change, random_sku

K = ChangeKind


def test_recorded_changes_are_stored_and_read_back(ledger, database_url):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 10, location="east"))
    ledger.record(change(K.SALE, sku, 3, location="east"))
    fresh = Ledger(env=eventsourcing_env(database_url))  # another process, in effect
    try:
        item = LedgerQueries(fresh).get_item(sku)
    finally:
        fresh.close()
    assert item.locations == {"east": Levels(on_hand=10, committed=3)}
    assert item.version == 3


def test_the_same_business_key_counts_once_and_returns_the_first_outcome(ledger, queries):
    sku = random_sku()
    first = ledger.record(change(K.RECEIPT, sku, 4, business_key=f"po:{sku}"))
    again = ledger.record(change(K.RECEIPT, sku, 9, business_key=f"po:{sku}"))
    assert first.status is OutcomeStatus.APPLIED
    assert again.status is OutcomeStatus.DUPLICATE
    assert again.receipt == first.receipt
    assert queries.get_item(sku).totals.on_hand == 4


def test_a_rule_breaking_change_is_rejected_alone_in_a_batch(ledger, queries):
    scenarios.a_rule_breaker_is_rejected_alone_in_a_batch(ledger, queries)


def test_a_batch_applies_changes_of_many_skus_in_one_transaction(ledger, queries):
    skus = [random_sku() for _ in range(5)]
    changes = [change(K.RECEIPT, sku, n + 1) for n, sku in enumerate(skus)]
    changes.append(changes[0])  # the same fact twice in one batch
    outcomes = ledger.record_batch(changes)
    assert outcomes[-1].status is OutcomeStatus.DUPLICATE
    assert outcomes[-1].receipt == outcomes[0].receipt
    assert [queries.get_item(sku).totals.on_hand for sku in skus] == [1, 2, 3, 4, 5]
    notifications = {o.receipt.last_version for o in outcomes}
    assert notifications == {2}


def test_a_batch_with_a_key_recorded_earlier_applies_only_the_new_ones(ledger, queries):
    sku = random_sku()
    old = change(K.RECEIPT, sku, 1)
    ledger.record(old)
    outcomes = ledger.record_batch([old, change(K.RECEIPT, sku, 2)])
    assert [o.status for o in outcomes] == [OutcomeStatus.DUPLICATE, OutcomeStatus.APPLIED]
    assert queries.get_item(sku).totals.on_hand == 3


def test_an_unknown_sku_is_reported(ledger, queries):
    with pytest.raises(UnknownSku, match="no stock has been recorded"):
        queries.get_item(random_sku())


def test_a_long_history_loads_from_a_snapshot(ledger):
    sku = random_sku()
    ledger.record_batch([change(K.RECEIPT, sku, 1) for _ in range(250)])
    snapshots = list(ledger.snapshots.get(inventory_item_id(sku), desc=True, limit=1))
    assert snapshots
    assert snapshots[0].originator_version == 251
    ledger.record(change(K.SALE, sku, 1))
    reloaded = Ledger(env=ledger.env.copy())
    try:
        item = LedgerQueries(reloaded).get_item(sku)
    finally:
        reloaded.close()
    assert item.levels_at("main") == Levels(on_hand=250, committed=1)


def test_oversells_are_listed_newest_first(ledger, queries):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    short = ledger.record(change(K.SALE, sku, 3, business_key=f"order:{sku}:1"))
    ledger.record(change(K.SALE, sku, 0 + 1, business_key=f"order:{sku}:2"))
    found = [r for r in queries.oversells(limit=1000) if r.sku == sku]
    assert [(r.business_key, r.shortfall) for r in found] == [
        (f"order:{sku}:2", 1),
        (f"order:{sku}:1", 2),
    ]
    assert found[1] == short.receipt
    before = queries.oversells(limit=1000, before=found[0].recorded_at)
    assert f"order:{sku}:2" not in {r.business_key for r in before}


def test_stock_as_of_a_time(ledger, time_travel):
    sku = random_sku()
    before_any = datetime.now(UTC)
    marks = []
    for quantity in (5, 7, 11):
        ledger.record(change(K.RECEIPT, sku, quantity))
        marks.append(datetime.now(UTC))
        time.sleep(0.01)
    assert [time_travel.item_at(sku, mark).totals.on_hand for mark in marks] == [5, 12, 23]
    with pytest.raises(UnknownSku, match="no stock had been recorded"):
        time_travel.item_at(sku, before_any)


def test_history_pages_newest_first_and_filters_by_kind_and_time(ledger, queries):
    scenarios.history_pages_newest_first_and_filters_by_kind_and_time(ledger, queries)


def test_eight_threads_lose_no_update_on_one_sku(ledger, queries):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 10_000))
    errors = []

    def worker(n):
        try:
            for i in range(250):
                kind = K.SALE if (n + i) % 2 else K.RECEIPT
                ledger.record(change(kind, sku, 1))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    levels = queries.get_item(sku).levels_at("main")
    assert levels == Levels(on_hand=11_000, committed=1_000)
    assert queries.get_item(sku).version == 2 + 2_000


def test_writers_with_separate_caches_resolve_version_conflicts(ledger, queries, database_url):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    other = Ledger(env=eventsourcing_env(database_url))
    errors = []

    def worker(app):
        try:
            for _ in range(60):
                app.record(change(K.RECEIPT, sku, 1))
        except Exception as error:
            errors.append(error)

    try:
        threads = [threading.Thread(target=worker, args=(app,)) for app in (ledger, other) * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    assert errors == []
    assert queries.get_item(sku).totals.on_hand == 1 + 240


def test_the_same_business_key_from_four_threads_is_applied_once(ledger, queries, database_url):
    sku = random_sku()
    apps = [Ledger(env=eventsourcing_env(database_url)) for _ in range(4)]
    barrier = threading.Barrier(4)
    outcomes = []

    def worker(app):
        barrier.wait()
        outcomes.append(app.record(change(K.RECEIPT, sku, 7, business_key=f"po:{sku}")))

    try:
        threads = [threading.Thread(target=worker, args=(app,)) for app in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for app in apps:
            app.close()
    assert sorted(o.status for o in outcomes) == ["applied", "duplicate", "duplicate", "duplicate"]
    assert len({o.receipt for o in outcomes}) == 1
    assert queries.get_item(sku).totals.on_hand == 7


def test_a_writer_that_keeps_losing_the_race_gives_up_with_ledger_busy(
    ledger, queries, database_url
):
    sku = random_sku()
    stale = Ledger(env=eventsourcing_env(database_url))
    stale.max_attempts = 1
    try:
        stale.record(change(K.RECEIPT, sku, 1))  # caches the item at version 2
        ledger.record(change(K.RECEIPT, sku, 1))  # another process moves it to version 3
        with pytest.raises(LedgerBusy, match="gave up after 1 conflicting attempts"):
            stale.record(change(K.RECEIPT, sku, 5))
        stale.max_attempts = 2  # the retry reloads the item and succeeds
        assert stale.record(change(K.RECEIPT, sku, 5)).status is OutcomeStatus.APPLIED
    finally:
        stale.close()
    assert queries.get_item(sku).totals.on_hand == 7


def test_refused_duplicates_never_break_the_connection_for_later_writes(database_url):
    # psycopg prepares a statement on its fifth run; if that run sat in a pipeline already
    # aborted by a refused duplicate, a later write would find no such prepared statement.
    single = Ledger(
        env={
            **eventsourcing_env(database_url),
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "0",
        }
    )
    sku = random_sku()
    try:
        first = change(K.RECEIPT, sku, 1)
        single.record(first)
        for _ in range(12):
            assert single.record(first).status is OutcomeStatus.DUPLICATE
            assert single.record(change(K.RECEIPT, sku, 1)).status is OutcomeStatus.APPLIED
    finally:
        single.close()


def test_the_notification_log_holds_a_batch_in_order_for_projections(ledger):
    sku = random_sku()
    before = ledger.recorder.max_notification_id() or 0
    ledger.record_batch([change(K.RECEIPT, sku, n) for n in (1, 2, 3)])
    notifications = ledger.recorder.select_notifications(start=before + 1, limit=100)
    mine = [n for n in notifications if n.originator_id == inventory_item_id(sku)]
    assert [n.originator_version for n in mine] == [1, 2, 3, 4]
    assert [n.id for n in mine] == sorted(n.id for n in mine)
    events = [ledger.mapper.to_domain_event(n) for n in mine]
    assert [type(e).__name__ for e in events] == ["Created", "Received", "Received", "Received"]
    assert [e.quantity for e in events[1:]] == [1, 2, 3]


def test_a_repeated_fact_that_would_now_break_a_rule_is_still_a_duplicate(ledger):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 5))
    hold = change(K.RESERVATION, sku, 2, reservation_id="r1", business_key=f"hold:{sku}")
    first = ledger.record(hold)
    again = ledger.record(hold)  # reservation r1 is open: the rule alone would refuse it
    assert again.status is OutcomeStatus.DUPLICATE
    assert again.receipt == first.receipt
