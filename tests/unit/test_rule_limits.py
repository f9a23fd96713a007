"""A channel's rules record only what the ledger's limits allow, whoever records them."""

import pytest

from domain.allocation import ChannelRule, InvalidRule
from domain.rules import MAX_LOCATIONS, ChannelRules, rule_from


def test_a_location_beyond_its_limit_is_refused_naming_it():
    with pytest.raises(InvalidRule, match="location is 256 characters long; at most 255"):
        rule_from("shop", {"locations": ["east", "L" * 256]})


def test_more_locations_than_allowed_are_refused():
    many = [f"l{n}" for n in range(MAX_LOCATIONS + 1)]
    with pytest.raises(InvalidRule, match=f"at most {MAX_LOCATIONS} locations"):
        rule_from("shop", {"locations": many})
    assert rule_from("shop", {"locations": many[:MAX_LOCATIONS]}).locations == tuple(many[:-1])


def test_an_override_of_an_overlong_or_unprintable_sku_records_nothing():
    rules = ChannelRules("shop")
    with pytest.raises(InvalidRule, match="sku is 256 characters long"):
        rules.override("S" * 256, {"stop_at": 1}, "ops", "")
    with pytest.raises(InvalidRule, match="control character"):
        rules.override("A\nB", {"stop_at": 1}, "ops", "")
    assert rules.overrides == {}
    assert len(rules.collect_events()) == 1  # Created only


def test_a_change_with_an_overlong_reason_records_nothing():
    rules = ChannelRules("shop")
    with pytest.raises(InvalidRule, match="reason is 513 characters long; at most 512"):
        rules.change(ChannelRule("shop", stop_at=1), "ops", "r" * 513)
    with pytest.raises(InvalidRule, match="location is 300 characters long"):
        rules.change(ChannelRule("shop", locations=("L" * 300,)), "ops", "")
    assert rules.rules == {}
