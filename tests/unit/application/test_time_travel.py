"""Answers about the past on the in-memory store: stock at a moment, each channel's ATS under
the rules in force then, and an oversell with what surrounded it."""

import time
from datetime import UTC, datetime

import pytest

from application.errors import UnknownSku
from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from tests import ledger_scenarios as scenarios
from tests.helpers import change, random_sku

K = ChangeKind


def _moment() -> datetime:
    """Now, kept apart from what is recorded just before and after it."""
    time.sleep(0.002)
    moment = datetime.now(UTC)
    time.sleep(0.002)
    return moment


def test_stock_at_a_moment_is_what_had_been_recorded_by_then(ledger, time_travel):
    sku = random_sku()
    before_any = _moment()
    marks = []
    for quantity in (5, 7, 11):
        ledger.record(change(K.RECEIPT, sku, quantity))
        marks.append(_moment())
    assert [time_travel.item_at(sku, mark).totals.on_hand for mark in marks] == [5, 12, 23]
    with pytest.raises(UnknownSku, match="no stock had been recorded"):
        time_travel.item_at(sku, before_any)


def test_each_channels_ats_at_a_moment_follows_the_rules_in_force_then(ledger, time_travel):
    sku = random_sku()
    shop = ChannelRule(random_sku("shop"), share_percent=50)
    ledger.record(change(K.RECEIPT, sku, 10))
    before_change = _moment()
    ledger.change_channel_rules(ChannelRule(shop.channel_id, share_percent=20), "merch", "why")
    ledger.override_sku_rules(shop.channel_id, sku, {"max_quantity": 1}, "merch", "scarce")
    after_change = _moment()

    def ats(at: datetime) -> int:
        return (
            time_travel.availability_at(sku, at, [shop])
            .allocations[shop.channel_id]
            .available_to_sell
        )

    assert (ats(before_change), ats(after_change)) == (5, 1)


def test_velocity_of_a_backfilled_sale_is_that_of_the_week_it_occurred(ledger, time_travel):
    scenarios.velocity_of_a_backfilled_sale_is_that_of_the_week_it_occurred(ledger, time_travel)


def test_an_oversell_comes_with_its_neighbouring_events_and_the_ats_either_side(
    ledger, time_travel
):
    sku = random_sku()
    shop = ChannelRule(random_sku("shop"))
    ledger.record(change(K.RECEIPT, sku, 2))  # v1 created, v2
    ledger.record(change(K.SALE, sku, 1))  # v3
    oversold = ledger.record(change(K.SALE, sku, 4))  # v4
    ledger.record(change(K.RECEIPT, sku, 9))  # v5

    [found] = time_travel.oversells_in_context([shop], context=1)

    assert found.receipt == oversold.receipt
    assert [e.originator_version for e in found.events_before] == [3]
    assert [e.originator_version for e in found.events_after] == [5]
    assert found.before.allocations[shop.channel_id].available_to_sell == 1
    assert found.after.allocations[shop.channel_id].available_to_sell == 0
