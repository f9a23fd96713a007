"""Scenarios the application tests run on the in-memory store and the integration tests on
PostgreSQL: the same steps and assertions, so both stores are held to one behaviour."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.outcomes import OutcomeStatus
from application.receipts import HistoryFilter
from application.time_travel import TimeTravel
from domain.allocation import ChannelRule
from domain.errors import InsufficientStock
from domain.inventory import InventoryItem
from domain.stock import ChangeKind, Levels
from tests.helpers import change, random_sku

K = ChangeKind


def a_rule_breaker_is_rejected_alone_in_a_batch(ledger: Ledger, queries: LedgerQueries) -> None:
    sku = random_sku()
    outcomes = ledger.record_batch(
        [
            change(K.RECEIPT, sku, 2),
            change(K.ADJUSTMENT, sku, -5, reason="damaged"),
            change(K.SALE, sku, 1),
        ]
    )
    assert [o.status for o in outcomes] == [
        OutcomeStatus.APPLIED,
        OutcomeStatus.REJECTED,
        OutcomeStatus.APPLIED,
    ]
    assert isinstance(outcomes[1].error, InsufficientStock)
    assert queries.get_item(sku).levels_at("main") == Levels(on_hand=2, committed=1)


def history_pages_newest_first_and_filters_by_kind_and_time(
    ledger: Ledger, queries: LedgerQueries
) -> None:
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 10))
    time.sleep(0.001)  # a clock's resolution apart from the first receipt
    start = datetime.now(UTC)
    for _ in range(5):
        ledger.record(change(K.SALE, sku, 1))
    ledger.record(change(K.ADJUSTMENT, sku, 2, reason="found"))

    page = queries.history(sku, HistoryFilter(), limit=4)
    assert [e.originator_version for e in page.events] == [8, 7, 6, 5]
    rest = queries.history(sku, HistoryFilter(cursor=page.next_cursor), limit=4)
    assert [e.originator_version for e in rest.events] == [4, 3, 2]
    assert rest.next_cursor is None

    oldest = queries.history(sku, HistoryFilter(newest_first=False), limit=2)
    assert [e.originator_version for e in oldest.events] == [2, 3]
    sales = queries.history(sku, HistoryFilter(kinds=frozenset({K.SALE})), limit=50)
    assert {type(e) for e in sales.events} == {InventoryItem.Sold}
    assert len(sales.events) == 5
    recent = queries.history(sku, HistoryFilter(since=start), limit=50)
    assert [e.originator_version for e in recent.events] == [8, 7, 6, 5, 4, 3]
    assert queries.history(sku, HistoryFilter(until=start), limit=50).events[0].quantity == 10


def velocity_of_a_backfilled_sale_is_that_of_the_week_it_occurred(
    ledger: Ledger, time_travel: TimeTravel
) -> None:
    sku = random_sku()
    shop, market = random_sku("shop"), random_sku("market")
    rules = [
        ChannelRule(shop, share_percent=50, velocity_weighted=True),
        ChannelRule(market, share_percent=50, velocity_weighted=True),
    ]
    days_ago = [datetime.now(UTC) - timedelta(days=n) for n in range(13)]
    ledger.record(change(K.RECEIPT, sku, 100, occurred_at=days_ago[12]))
    ledger.record(change(K.SALE, sku, 4, source=shop, occurred_at=days_ago[11]))
    ledger.record(change(K.SALE, sku, 10, source=market, occurred_at=days_ago[9]))

    _, allocations = time_travel.availability_at(sku, datetime.now(UTC) + timedelta(days=1), rules)

    # The projection computed the SKU when the market's sale came in, with the week up to the
    # day it occurred: 86 available, 10 : 4. No sale in the week before "now" changes that.
    assert {c: a.available_to_sell for c, a in allocations.items()} == {shop: 24, market: 61}
    assert allocations[market].steps[1].rule.startswith("71.4286% (floor 0% + velocity")
