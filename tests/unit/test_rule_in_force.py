"""One look-up of the rule in force for a SKU, whether the rules come from the `ChannelRules`
aggregate or from the projection's rule book."""

from application.availability import RuleBook
from domain.allocation import ChannelRule
from domain.rules import ChannelRules, rule_in_force

DEFAULT = ChannelRule("shop", share_percent=50)


def test_the_configured_rule_holds_until_the_channel_records_one():
    assert rule_in_force(DEFAULT, None, None) == DEFAULT
    assert rule_in_force(DEFAULT, {}, {}) == DEFAULT


def test_a_recorded_rule_replaces_the_configured_one_whole():
    rule = rule_in_force(DEFAULT, {"safety_buffer": 3}, None)
    assert rule == ChannelRule("shop", safety_buffer=3)  # share back to its default 100


def test_a_skus_override_sets_only_its_keys_over_the_rule_in_force():
    assert rule_in_force(DEFAULT, None, {"max_quantity": 2}) == ChannelRule(
        "shop", share_percent=50, max_quantity=2
    )
    assert rule_in_force(DEFAULT, {"safety_buffer": 3}, {"max_quantity": 2}) == ChannelRule(
        "shop", safety_buffer=3, max_quantity=2
    )


def test_the_aggregate_and_the_rule_book_agree():
    rules = ChannelRules("shop")
    rules.change(ChannelRule("shop", share_percent=30, locations=("east",)), "merch", "why")
    rules.override("BIG", {"safety_buffer": 2}, "merch", "bulky")
    book = RuleBook([DEFAULT])
    for event in rules.collect_events()[1:]:
        book.apply(event)
    for sku in ("BIG", "SMALL"):
        assert book.rules_for(sku) == [rules.rule_for(sku, DEFAULT)]
    assert book.rules_for("BIG")[0] == ChannelRule(
        "shop", share_percent=30, locations=("east",), safety_buffer=2
    )
