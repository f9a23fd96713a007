"""The orders poll's pure parts: a polled order's delivery key, where a poll starts, and how the
WooCommerce listing asks for its next page."""

from datetime import UTC, datetime, timedelta, timezone

from infrastructure.channels.base import PolledOrder
from infrastructure.channels.woocommerce.order_listing import _next
from infrastructure.reconcile.orders import _start, delivery_key

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def polled(modified_at: datetime) -> PolledOrder:
    return PolledOrder("1001", modified_at, "order.updated", b"{}")


def test_the_same_order_modified_at_the_same_moment_has_one_key_whatever_the_time_zone():
    paris = NOON.astimezone(timezone(timedelta(hours=1)))
    assert delivery_key(polled(NOON)) == delivery_key(polled(paris))
    assert delivery_key(polled(NOON)).startswith("poll:1001:2026-12-01T12:00:00+00:00:")


def test_another_modification_of_the_order_is_another_delivery_even_within_its_second():
    assert delivery_key(polled(NOON)) != delivery_key(polled(NOON + timedelta(seconds=1)))
    changed = PolledOrder("1001", NOON, "order.updated", b'{"status":"cancelled"}')
    assert delivery_key(polled(NOON)) != delivery_key(changed)


def test_a_poll_starts_the_overlap_before_the_watermark_or_before_now_at_first():
    overlap = timedelta(seconds=120)
    assert _start(NOON, NOON + timedelta(hours=1), overlap) == NOON - overlap
    assert _start(None, NOON, overlap) == NOON - overlap


def test_the_next_page_is_asked_from_the_last_orders_second_on():
    last = NOON + timedelta(minutes=5)
    assert _next(NOON, 3, last) == (last - timedelta(seconds=1), 1)


def test_a_page_whose_orders_all_share_a_second_goes_on_to_the_next_page_number():
    assert _next(NOON, 1, NOON + timedelta(seconds=1)) == (NOON, 2)
