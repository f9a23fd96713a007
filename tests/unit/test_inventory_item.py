import pytest

from domain.errors import (
    DuplicateReservation,
    InsufficientStock,
    UnknownLocation,
    UnknownReservation,
)
from domain.inventory import InventoryItem, inventory_item_id
from domain.stock import ChangeKind, Levels, QuantityState
from tests.helpers import change

K = ChangeKind


def item_with(on_hand: int, sku: str = "A", location: str = "main") -> InventoryItem:
    item = InventoryItem(sku)
    if on_hand:
        item.record(change(K.RECEIPT, sku, on_hand, location=location))
    return item


def last_event(item: InventoryItem):
    return item.pending_events[-1]


def test_the_item_id_is_derived_from_the_sku():
    assert InventoryItem("A").id == inventory_item_id("A") != inventory_item_id("B")


def test_a_receipt_raises_on_hand_and_records_where_it_came_from():
    item = InventoryItem("A")
    item.record(
        change(
            K.RECEIPT,
            "A",
            5,
            business_key="po:7",
            reference="erp://po/7",
            source="erp",
            reason="PO 7",
        )
    )
    event = last_event(item)
    assert isinstance(event, InventoryItem.Received)
    assert (event.business_key, event.reference, event.source, event.reason) == (
        "po:7",
        "erp://po/7",
        "erp",
        "PO 7",
    )
    assert item.levels_at("main") == Levels(on_hand=5)


def test_a_reason_defaults_to_the_kind():
    item = item_with(1)
    assert last_event(item).reason == "receipt"


def test_a_sale_commits_stock_without_shortfall_when_available():
    item = item_with(5)
    item.record(change(K.SALE, "A", 3))
    assert last_event(item).shortfall == 0
    assert item.levels_at("main") == Levels(on_hand=5, committed=3)
    assert item.totals.available == 2


def test_an_oversell_is_recorded_and_flagged_with_its_shortfall():
    item = item_with(2)
    item.record(change(K.SALE, "A", 5))
    assert isinstance(last_event(item), InventoryItem.Sold)
    assert last_event(item).shortfall == 3
    assert item.totals.available == -3
    item.record(change(K.SALE, "A", 1))
    assert last_event(item).shortfall == 1  # already below zero: the whole sale is short


def test_a_cancellation_releases_committed_stock_but_never_below_zero():
    item = item_with(5)
    item.record(change(K.SALE, "A", 2))
    item.record(change(K.SALE_CANCELLATION, "A", 3))
    event = last_event(item)
    assert (event.quantity, event.released) == (3, 2)
    assert item.levels_at("main") == Levels(on_hand=5)


def test_a_shipment_lowers_on_hand_and_committed():
    item = item_with(5)
    item.record(change(K.SALE, "A", 2))
    item.record(change(K.SHIPMENT, "A", 2))
    assert item.levels_at("main") == Levels(on_hand=3)


def test_a_return_restocks_or_holds_the_units_as_unavailable():
    item = item_with(0)
    item.record(change(K.RETURN, "A", 2))
    item.record(change(K.RETURN, "A", 1, restock=False))
    assert item.levels_at("main") == Levels(on_hand=3, unavailable=1)
    assert item.totals.available == 2


def test_an_adjustment_changes_on_hand_by_its_delta():
    item = item_with(5)
    item.record(change(K.ADJUSTMENT, "A", -2, reason="damaged"))
    assert item.levels_at("main").on_hand == 3
    assert last_event(item).reason == "damaged"


def test_an_adjustment_cannot_remove_more_than_is_on_hand():
    item = item_with(1)
    with pytest.raises(InsufficientStock, match="cannot remove 2 of 1"):
        item.record(change(K.ADJUSTMENT, "A", -2, reason="shrinkage"))
    assert len(item.pending_events) == 2  # created + received: nothing triggered


def test_units_can_be_marked_unavailable_within_what_is_on_hand():
    item = item_with(3)
    item.record(
        change(K.ADJUSTMENT, "A", 2, reason="quality_control", state=QuantityState.UNAVAILABLE)
    )
    assert item.levels_at("main") == Levels(on_hand=3, unavailable=2)
    with pytest.raises(InsufficientStock, match="unavailable would become 5"):
        item.record(change(K.ADJUSTMENT, "A", 3, reason="damaged", state=QuantityState.UNAVAILABLE))


def test_a_count_derives_its_delta_from_what_was_expected():
    item = item_with(10)
    item.record(change(K.COUNT, "A", 8))
    event = last_event(item)
    assert (event.counted, event.expected, event.delta) == (8, 10, -2)
    assert item.levels_at("main").on_hand == 8


def test_a_count_keeps_changes_made_after_the_counter_looked():
    item = item_with(10)
    # The counter saw 10 expected and found 9; meanwhile 3 more arrived.
    item.record(change(K.RECEIPT, "A", 3))
    item.record(change(K.COUNT, "A", 9, expected=10))
    assert last_event(item).delta == -1
    assert item.levels_at("main").on_hand == 12


def test_a_transfer_moves_on_hand_between_locations():
    item = item_with(5, location="east")
    item.record(change(K.TRANSFER, "A", 2, location="east", to_location="west"))
    assert item.levels_at("east").on_hand == 3
    assert item.levels_at("west").on_hand == 2
    assert item.totals.on_hand == 5


def test_a_transfer_from_an_unknown_location_is_refused():
    item = item_with(5, location="east")
    with pytest.raises(UnknownLocation, match="no stock record at 'north'"):
        item.record(change(K.TRANSFER, "A", 1, location="north", to_location="east"))


def test_a_transfer_cannot_move_more_than_is_on_hand():
    item = item_with(1, location="east")
    with pytest.raises(InsufficientStock, match="cannot move 2 of 1"):
        item.record(change(K.TRANSFER, "A", 2, location="east", to_location="west"))


def test_reservations_hold_and_release_stock():
    item = item_with(5)
    item.record(change(K.RESERVATION, "A", 3, reservation_id="r1"))
    assert item.levels_at("main").reserved == 3
    assert item.reservation("r1") == 3
    item.record(change(K.RESERVATION_RELEASE, "A", 1, reservation_id="r1"))
    assert item.reservation("r1") == 2
    item.record(change(K.RESERVATION_RELEASE, "A", 2, reservation_id="r1"))
    assert item.reservation("r1") is None
    assert item.levels_at("main") == Levels(on_hand=5)


def test_reservation_errors():
    item = item_with(5)
    item.record(change(K.RESERVATION, "A", 3, reservation_id="r1"))
    with pytest.raises(DuplicateReservation, match="already open"):
        item.record(change(K.RESERVATION, "A", 1, reservation_id="r1"))
    with pytest.raises(UnknownReservation, match="no open reservation 'r2'"):
        item.record(change(K.RESERVATION_RELEASE, "A", 1, reservation_id="r2"))
    with pytest.raises(InsufficientStock, match="holds 3, cannot release 4"):
        item.record(change(K.RESERVATION_RELEASE, "A", 4, reservation_id="r1"))


def test_a_change_for_another_sku_is_a_programming_error():
    with pytest.raises(ValueError, match="sent to item"):
        InventoryItem("A").record(change(K.RECEIPT, "B", 1))


def test_replaying_the_events_rebuilds_the_same_levels():
    item = item_with(5)
    item.record(change(K.SALE, "A", 2))
    item.record(change(K.TRANSFER, "A", 1, to_location="b"))
    copy = None
    for event in item.collect_events():
        copy = event.mutate(copy)
    assert copy.locations == item.locations
    assert copy.version == item.version
