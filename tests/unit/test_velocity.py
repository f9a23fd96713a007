from datetime import UTC, datetime, timedelta

from domain.inventory import InventoryItem
from domain.stock import ChangeKind
from domain.velocity import VELOCITY_WINDOW, units_sold_per_channel, velocities
from tests.helpers import change

K = ChangeKind
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WEEK_AGO = NOW - VELOCITY_WINDOW


def events(*changes):
    item = InventoryItem("sku-1")
    for stock_change in changes:
        item.record(stock_change)
    return [e for e in item.collect_events() if isinstance(e, InventoryItem.StockEvent)]


def at(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


def sale(quantity: int, channel: str, occurred_at: datetime):
    return change(K.SALE, "sku-1", quantity, source=channel, occurred_at=occurred_at)


def test_sales_count_per_channel_by_their_source():
    history = events(
        change(K.RECEIPT, "sku-1", 50, occurred_at=at(3)),
        sale(2, "shopify", at(2)),
        sale(3, "amazon", at(1)),
        sale(4, "shopify", at(0)),
    )
    assert units_sold_per_channel(history, WEEK_AGO) == {"shopify": 6, "amazon": 3}


def test_only_sales_that_occurred_inside_the_window_count():
    history = events(
        sale(5, "shopify", at(8)),
        sale(1, "shopify", WEEK_AGO),
        sale(2, "shopify", at(1)),
        sale(7, "shopify", NOW),
    )
    assert units_sold_per_channel(history, WEEK_AGO) == {"shopify": 10}
    assert units_sold_per_channel(history, WEEK_AGO, until=NOW) == {"shopify": 3}


def test_a_cancellation_takes_back_only_the_units_it_released():
    history = events(
        change(K.RECEIPT, "sku-1", 10, occurred_at=at(2)),
        sale(4, "ebay", at(2)),
        change(K.SHIPMENT, "sku-1", 3, source="wms", occurred_at=at(1)),
        # 4 cancelled, 1 still committed: only that one comes back off the sales.
        change(K.SALE_CANCELLATION, "sku-1", 4, source="ebay", occurred_at=at(1)),
    )
    assert units_sold_per_channel(history, WEEK_AGO) == {"ebay": 3}


def test_channels_that_only_received_or_moved_stock_sold_nothing():
    history = events(
        change(K.RECEIPT, "sku-1", 10, source="erp", occurred_at=at(1)),
        change(K.ADJUSTMENT, "sku-1", -1, reason="damaged", source="wms", occurred_at=at(1)),
    )
    assert units_sold_per_channel(history, WEEK_AGO) == {}


def test_velocity_is_units_per_day_of_the_window_and_never_negative():
    assert velocities({"shopify": 14, "amazon": -3}) == {"shopify": 2.0, "amazon": 0.0}
    assert velocities({"shopify": 6}, timedelta(days=3)) == {"shopify": 2.0}
