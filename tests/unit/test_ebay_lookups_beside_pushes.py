"""Which new SKUs an eBay call looks up before it goes: a few beside pushes that are ready (each
lookup is a turn they wait), all when nothing else is ready, the longest left first."""

from __future__ import annotations

import pytest

from infrastructure.channels.ebay.offers import OVERDUE_SECONDS, to_look_up_now

NOW = 1_000.0


def test_a_call_with_pushes_ready_looks_up_only_the_first_new_skus_in_their_order():
    assert to_look_up_now(["C", "A", "B", "D"], True, {}, NOW, most=2) == ["C", "A"]
    assert to_look_up_now(["C"], True, {}, NOW, most=2) == ["C"]


def test_a_call_with_no_push_ready_looks_up_every_new_sku():
    # Nothing waits on the lookups but the SKUs themselves: a first sync goes at full speed.
    assert to_look_up_now(["C", "A", "B", "D"], False, {}, NOW, most=2) == ["C", "A", "B", "D"]


def test_a_sku_left_for_later_calls_too_long_is_looked_up_before_newer_higher_ranked_ones():
    left_since = {"D": NOW - OVERDUE_SECONDS, "B": NOW - OVERDUE_SECONDS + 1, "E": NOW - 60}
    chosen = to_look_up_now(["A", "B", "C", "D", "E"], True, left_since, NOW, most=2)
    assert chosen == ["D", "E"]  # overdue, in the pusher's order; B not yet


def test_a_call_must_be_able_to_look_up_one_sku_at_least():
    with pytest.raises(ValueError, match="at least one"):
        to_look_up_now(["A"], True, {}, NOW, most=0)
