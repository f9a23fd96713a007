from datetime import datetime

import pytest

from domain.errors import InvalidChange, InvalidQuantity, SameLocationTransfer
from domain.stock import ChangeKind, Levels, QuantityState
from tests.helpers import change


def test_available_is_on_hand_less_committed_reserved_and_unavailable():
    assert Levels(on_hand=10, committed=3, reserved=2, unavailable=1).available == 4
    assert Levels(on_hand=1, committed=3).available == -2


@pytest.mark.parametrize("quantity", [0, -1])
@pytest.mark.parametrize(
    "kind", [ChangeKind.RECEIPT, ChangeKind.SALE, ChangeKind.SHIPMENT, ChangeKind.RETURN]
)
def test_counted_kinds_refuse_zero_and_negative_quantities(kind, quantity):
    with pytest.raises(InvalidQuantity, match="positive quantity"):
        change(kind, "A", quantity)


def test_quantity_must_be_a_whole_number():
    with pytest.raises(InvalidQuantity, match="whole number"):
        change(ChangeKind.RECEIPT, "A", 1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuantity, match="whole number"):
        change(ChangeKind.RECEIPT, "A", True)


def test_an_adjustment_of_zero_changes_nothing_and_is_refused():
    with pytest.raises(InvalidQuantity, match="zero"):
        change(ChangeKind.ADJUSTMENT, "A", 0, reason="found")


def test_an_adjustment_may_be_negative_with_a_listed_reason():
    assert change(ChangeKind.ADJUSTMENT, "A", -2, reason="damaged").quantity == -2


def test_an_adjustment_reason_must_come_from_the_fixed_list():
    with pytest.raises(InvalidChange, match="not one of: damaged"):
        change(ChangeKind.ADJUSTMENT, "A", 1, reason="because")


def test_a_count_may_be_zero_but_not_negative():
    assert change(ChangeKind.COUNT, "A", 0).quantity == 0
    with pytest.raises(InvalidQuantity, match="cannot be negative"):
        change(ChangeKind.COUNT, "A", -1)
    with pytest.raises(InvalidQuantity, match="expected quantity cannot be negative"):
        change(ChangeKind.COUNT, "A", 1, expected=-1)


def test_a_transfer_needs_a_different_destination():
    with pytest.raises(InvalidChange, match="needs a to_location"):
        change(ChangeKind.TRANSFER, "A", 1)
    with pytest.raises(SameLocationTransfer, match="to itself"):
        change(ChangeKind.TRANSFER, "A", 1, to_location="main")


def test_kind_specific_fields_are_refused_on_other_kinds():
    with pytest.raises(InvalidChange, match="only a transfer"):
        change(ChangeKind.RECEIPT, "A", 1, to_location="b")
    with pytest.raises(InvalidChange, match="only a count"):
        change(ChangeKind.RECEIPT, "A", 1, expected=3)
    with pytest.raises(InvalidChange, match="only an adjustment takes a state"):
        change(ChangeKind.RECEIPT, "A", 1, state=QuantityState.UNAVAILABLE)
    with pytest.raises(InvalidChange, match="on_hand or unavailable"):
        change(ChangeKind.ADJUSTMENT, "A", 1, reason="found", state=QuantityState.COMMITTED)


def test_reservations_need_an_id():
    with pytest.raises(InvalidChange, match="needs a reservation_id"):
        change(ChangeKind.RESERVATION, "A", 1)


@pytest.mark.parametrize("field", ["sku", "location", "business_key", "source"])
def test_identifying_fields_must_not_be_blank(field):
    arguments = {"sku": "A", field: "  "}
    with pytest.raises(InvalidChange, match=f"non-empty {field}"):
        change(ChangeKind.RECEIPT, quantity=1, **arguments)


def test_the_source_time_must_carry_a_zone():
    with pytest.raises(InvalidChange, match="time zone"):
        change(ChangeKind.RECEIPT, "A", 1, occurred_at=datetime(2026, 1, 1))
