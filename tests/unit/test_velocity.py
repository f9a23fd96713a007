from datetime import UTC, datetime, timedelta

from domain.inventory import InventoryItem
from domain.stock import ChangeKind
from domain.velocity import VELOCITY_DAYS, daily_sales, velocities_on, window_start
from tests.helpers import change

K = ChangeKind
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def events(*changes):
    item = InventoryItem("sku-1")
    for stock_change in changes:
        item.record(stock_change)
    return [e for e in item.collect_events() if isinstance(e, InventoryItem.StockEvent)]


def at(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


def day(days_ago: int):
    return TODAY - timedelta(days=days_ago)


def sale(quantity: int, channel: str, occurred_at: datetime):
    return change(K.SALE, "sku-1", quantity, source=channel, occurred_at=occurred_at)


def test_sales_count_per_channel_by_their_source_and_the_day_they_occurred():
    history = events(
        change(K.RECEIPT, "sku-1", 50, occurred_at=at(3)),
        sale(2, "shopify", at(2)),
        sale(3, "amazon", at(1)),
        sale(4, "shopify", at(0)),
        sale(1, "shopify", at(0)),
    )
    assert daily_sales(history) == {
        ("shopify", day(2)): 2,
        ("amazon", day(1)): 3,
        ("shopify", day(0)): 5,
    }


def test_a_cancellation_takes_back_only_the_units_it_released_on_the_day_it_occurred():
    history = events(
        change(K.RECEIPT, "sku-1", 10, occurred_at=at(2)),
        sale(4, "ebay", at(2)),
        change(K.SHIPMENT, "sku-1", 3, source="wms", occurred_at=at(1)),
        # 4 cancelled, 1 still committed: only that one comes back off the sales.
        change(K.SALE_CANCELLATION, "sku-1", 4, source="ebay", occurred_at=at(1)),
    )
    assert daily_sales(history) == {("ebay", day(2)): 4, ("ebay", day(1)): -1}


def test_sales_taken_back_the_same_day_leave_the_channel_at_zero():
    history = events(
        sale(4, "ebay", at(0)),
        change(K.SALE_CANCELLATION, "sku-1", 4, source="ebay", occurred_at=at(0)),
    )
    assert daily_sales(history) == {("ebay", day(0)): 0}
    assert velocities_on(daily_sales(history), TODAY) == {"ebay": 0.0}


def test_channels_that_only_received_or_moved_stock_sold_nothing():
    history = events(
        change(K.RECEIPT, "sku-1", 10, source="erp", occurred_at=at(1)),
        change(K.ADJUSTMENT, "sku-1", -1, reason="damaged", source="wms", occurred_at=at(1)),
    )
    assert daily_sales(history) == {}


def test_the_window_is_the_seven_days_up_to_the_day_given_both_included():
    assert window_start(TODAY) == day(VELOCITY_DAYS - 1)
    sales = {
        ("shopify", day(7)): 50,  # the day before the window
        ("shopify", day(6)): 7,
        ("shopify", day(0)): 7,
        ("shopify", day(-1)): 70,  # after the day asked about
    }
    assert velocities_on(sales, TODAY) == {"shopify": 2.0}
    assert velocities_on(sales, day(7)) == {"shopify": 50 / 7}


def test_velocity_is_units_per_day_and_never_negative():
    sales = {("shopify", day(1)): 14, ("amazon", day(1)): -3}
    assert velocities_on(sales, TODAY) == {"shopify": 2.0, "amazon": 0.0}


def test_the_projections_fold_counts_the_very_units_daily_sales_counts():
    from application.availability import AvailabilityFold, RuleBook

    item = InventoryItem("sku-1")
    for stock_change in (
        change(K.RECEIPT, "sku-1", 50, occurred_at=at(3)),
        sale(2, "shopify", at(2)),
        sale(3, "amazon", at(1)),
        change(K.SALE_CANCELLATION, "sku-1", 1, source="amazon", occurred_at=at(1)),
        sale(4, "shopify", at(0)),
    ):
        item.record(stock_change)
    history = item.collect_events()  # its creation, then its stock events
    fold = AvailabilityFold(RuleBook([]))
    fold.fold(history)
    counted = daily_sales(e for e in history if isinstance(e, InventoryItem.StockEvent))
    assert (
        fold.sales["sku-1"]
        == counted
        == {
            ("shopify", day(2)): 2,
            ("amazon", day(1)): 2,
            ("shopify", day(0)): 4,
        }
    )
    assert fold.sales_changed == {("sku-1", channel, sold_on) for channel, sold_on in counted}
