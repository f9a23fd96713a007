"""Adoption: what a store shows of SKUs new to the ledger becomes their opening count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from application.adoption import latest_shown, opening_counts
from domain.stock import ChangeKind

AT = datetime(2026, 12, 2, tzinfo=UTC)


def test_only_skus_the_ledger_does_not_know_are_counted_at_the_channels_location():
    counts = opening_counts(
        {"b": 4, "a": 2, "known": 9}, {"known"}, channel_id="woo", location="eu", at=AT
    )

    assert [(c.kind, c.sku, c.quantity, c.location) for c in counts] == [
        (ChangeKind.COUNT, "a", 2, "eu"),
        (ChangeKind.COUNT, "b", 4, "eu"),
    ]
    assert {c.business_key for c in counts} == {"adopt:woo:a", "adopt:woo:b"}
    assert all("woo" in c.reason and c.source == "adopt:woo" for c in counts)


def test_a_channel_showing_less_than_nothing_opens_at_zero():
    (count,) = opening_counts({"a": -3}, set(), channel_id="woo", location="eu", at=AT)

    assert count.quantity == 0


def test_of_several_readings_of_a_sku_the_latest_is_taken():
    later = AT + timedelta(seconds=1)

    assert latest_shown([("a", 1, later), ("a", 5, AT), ("b", 2, AT)]) == {"a": 1, "b": 2}
