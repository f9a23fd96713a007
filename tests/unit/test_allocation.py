import pytest

from domain.allocation import ChannelRule, InvalidRule, allocate
from domain.stock import Levels

STOCK = {"main": Levels(on_hand=100)}


def ats(rules, locations=STOCK, velocities=None):
    return {k: v.available_to_sell for k, v in allocate(locations, rules, velocities).items()}


def test_the_seeds_example_of_shares_and_buffers():
    rules = [
        ChannelRule("shopify", share_percent=40, safety_buffer=2),
        ChannelRule("amazon", share_percent=30, safety_buffer=2),
        ChannelRule("ebay", share_percent=20, safety_buffer=2),
        ChannelRule("woo", share_percent=10, safety_buffer=1),
    ]
    assert ats(rules) == {"shopify": 38, "amazon": 28, "ebay": 18, "woo": 9}


def test_a_shared_pool_gives_every_channel_all_available_stock():
    stock = {"main": Levels(on_hand=10, committed=3, reserved=1, unavailable=1)}
    assert ats([ChannelRule("a"), ChannelRule("b")], stock) == {"a": 5, "b": 5}


def test_only_the_locations_feeding_a_channel_count_and_oversold_ones_count_as_zero():
    stock = {"east": Levels(on_hand=7), "west": Levels(on_hand=1, committed=4)}
    assert ats(
        [
            ChannelRule("a", locations=("east",)),
            ChannelRule("b", locations=("west",)),
            ChannelRule("c"),
            ChannelRule("d", locations=("nowhere",)),
        ],
        stock,
    ) == {"a": 7, "b": 0, "c": 7, "d": 0}


def test_a_cap_a_fixed_quantity_and_a_stop_threshold():
    assert ats([ChannelRule("capped", max_quantity=25)]) == {"capped": 25}
    assert ats([ChannelRule("fixed", fixed_quantity=5)]) == {"fixed": 5}
    assert ats([ChannelRule("fixed", fixed_quantity=500)]) == {"fixed": 100}  # never above pool
    low = {"main": Levels(on_hand=3)}
    assert ats([ChannelRule("stop", stop_at=3)], low) == {"stop": 0}
    assert ats([ChannelRule("stop", stop_at=2)], low) == {"stop": 3}


def test_available_to_sell_rounds_down_and_is_never_negative():
    assert ats([ChannelRule("a", share_percent=33.3)]) == {"a": 33}
    assert ats([ChannelRule("a", safety_buffer=150)]) == {"a": 0}


def test_velocity_weighting_splits_the_weighted_shares_by_trailing_sales_with_a_floor():
    rules = [
        ChannelRule("fast", share_percent=50, velocity_weighted=True, min_share_percent=10),
        ChannelRule("slow", share_percent=50, velocity_weighted=True, min_share_percent=10),
        ChannelRule("fixed-share", share_percent=20),
    ]
    # Each gets its 10 % floor, and the other 80 % in proportion to its sales.
    assert ats(rules, velocities={"fast": 9, "slow": 1}) == {
        "fast": 82,
        "slow": 18,
        "fixed-share": 20,
    }
    assert ats(rules, velocities={"fast": 99, "slow": 0}) == {
        "fast": 90,
        "slow": 10,
        "fixed-share": 20,
    }
    # No sales yet: the static shares stand.
    assert ats(rules, velocities={}) == {"fast": 50, "slow": 50, "fixed-share": 20}


def test_every_step_is_explained_with_its_rule():
    steps = allocate(STOCK, [ChannelRule("a", share_percent=40, safety_buffer=2, max_quantity=30)])[
        "a"
    ].steps
    assert [(s.name, s.quantity) for s in steps] == [
        ("pool", 100),
        ("share", 40),
        ("safety_buffer", 38),
        ("cap", 30),
        ("rounding", 30),
    ]
    assert "max_quantity 30" in steps[3].rule


@pytest.mark.parametrize(
    "field",
    [
        {"share_percent": 120},
        {"safety_buffer": -1},
        {"max_quantity": -5},
        {"min_share_percent": -1},
    ],
)
def test_rules_that_cannot_apply_are_refused(field):
    with pytest.raises(InvalidRule):
        ChannelRule("a", **field)
