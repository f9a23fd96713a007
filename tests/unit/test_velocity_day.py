"""Which day's velocity window an ATS was computed with: the projection's rule, as the answers
about the past apply it."""

from datetime import UTC, datetime, timedelta

from application.as_of import velocity_day, window_opens
from application.availability import explaining
from domain.allocation import ChannelRule, allocate
from domain.inventory import InventoryItem
from domain.stock import ChangeKind, Levels
from tests.helpers import change

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def recorded(occurred_at: datetime):
    item = InventoryItem("sku-1")
    item.record(change(ChangeKind.RECEIPT, "sku-1", 5, occurred_at=occurred_at))
    created, received = item.collect_events()
    return created, received


def test_the_window_ends_on_the_day_the_last_event_occurred_not_the_day_it_was_recorded():
    _, received = recorded(NOW - timedelta(days=9))
    assert velocity_day(received, None) == (NOW - timedelta(days=9)).date()


def test_a_rule_change_recorded_after_the_last_event_moves_the_window_to_its_own_day():
    _, received = recorded(NOW - timedelta(days=9))
    later = received.timestamp + timedelta(days=2)
    assert velocity_day(received, later) == later.date()
    assert velocity_day(received, received.timestamp - timedelta(seconds=1)) == (
        (NOW - timedelta(days=9)).date()
    )


def test_a_sku_with_no_stock_event_yet_weighs_no_velocity():
    created, _ = recorded(NOW)
    assert velocity_day(created, None) is None


def test_the_window_is_read_from_a_day_before_its_first_midnight():
    assert window_opens(NOW.date()) == datetime(2026, 11, 21, tzinfo=UTC)


def test_an_explanation_ends_on_the_number_held_even_when_the_rules_moved_since():
    [allocation] = allocate({"main": Levels(on_hand=10)}, [ChannelRule("shop")]).values()
    assert explaining(allocation, 10) is allocation
    held = explaining(allocation, 7)
    assert (held.available_to_sell, held.steps[-1].name, held.steps[-1].quantity) == (7, "held", 7)
    assert held.steps[:-1] == allocation.steps
