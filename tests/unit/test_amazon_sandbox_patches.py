"""How the Amazon sandbox applies JSON Patch operations to `fulfillment_availability`, as Amazon
does: `merge` sets only the fields given, `replace` sets the whole attribute."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandboxes.amazon.feeds import FULFILLMENT, check_patches, patched

SELLERS = {
    "fulfillment_channel_code": "DEFAULT",
    "quantity": 4,
    "lead_time_to_ship_max_days": 3,
    "restock_date": "2027-03-01",
}


def patch(op: str, quantity: int, code: str = "DEFAULT") -> dict:
    value = [{"fulfillment_channel_code": code, "quantity": quantity}]
    return {"op": op, "path": FULFILLMENT, "value": value}


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=20), st.data())
def test_merges_in_any_number_and_repeated_keep_the_sellers_fields_and_end_at_the_last(
    quantities, data
):
    merges = [patch("merge", q) for q in quantities]
    repeated = [p for p in merges for _ in range(data.draw(st.integers(1, 3)))]
    assert patched([SELLERS], check_patches(repeated)) == [{**SELLERS, "quantity": quantities[-1]}]


@given(st.integers(0, 10_000))
def test_a_replace_drops_the_fields_it_does_not_give(quantity):
    assert patched([SELLERS], [patch("replace", quantity)]) == [
        {"fulfillment_channel_code": "DEFAULT", "quantity": quantity}
    ]


def test_a_merge_of_another_channel_adds_its_entry_and_a_delete_removes_it():
    merged = patched([SELLERS], [patch("merge", 2, "AMAZON_NA")])
    assert merged == [SELLERS, {"fulfillment_channel_code": "AMAZON_NA", "quantity": 2}]
    assert patched(merged, [patch("delete", 0, "AMAZON_NA")]) == [SELLERS]
    assert patched(merged, [{"op": "delete", "path": FULFILLMENT}]) == []


def test_patches_of_other_attributes_leave_it_alone():
    other = {"op": "replace", "path": "/attributes/item_name", "value": [{"value": "x"}]}
    assert patched([SELLERS], [other]) == [SELLERS]


@given(st.sampled_from([-1, 1.5, "3", True, None]))
def test_a_quantity_that_is_no_whole_number_of_units_is_refused(quantity):
    entry = {"fulfillment_channel_code": "DEFAULT", "quantity": quantity}
    with pytest.raises(ValueError, match="quantity"):
        check_patches([{"op": "merge", "path": FULFILLMENT, "value": [entry]}])


@pytest.mark.parametrize(
    "patches", [[], None, [{"op": "upsert", "path": FULFILLMENT}], ["merge"]], ids=repr
)
def test_patches_that_are_not_a_list_of_json_patch_operations_are_refused(patches):
    with pytest.raises(ValueError, match=r"(?i)patch"):
        check_patches(patches)
