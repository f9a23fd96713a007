"""Which offers a gateway may take as known: a lookup under the hour old, in memory or on file;
a SKU without one, or with an older one, is looked for further."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infrastructure.channels.offer_file import Lookup, in_force

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
HOUR = 3600.0


def looked_up(minutes_ago: float) -> Lookup:
    return Lookup((("O1", "L1"),), NOW - timedelta(minutes=minutes_ago))


def test_a_lookup_under_the_hour_old_is_in_force_and_the_rest_are_looked_for_in_order():
    kept = {"A": looked_up(59), "B": looked_up(60), "C": looked_up(61), "E": looked_up(0)}
    found, unknown = in_force(["D", "C", "B", "A", "E"], kept, NOW, HOUR)
    assert found == {"A": kept["A"], "E": kept["E"]}
    assert unknown == ["D", "C", "B"]  # none kept; kept too long; exactly an hour old


def test_a_sku_found_to_have_no_offers_is_known_as_such_for_the_hour():
    kept = {"A": Lookup((), NOW - timedelta(minutes=5))}
    assert in_force(["A"], kept, NOW, HOUR) == (kept, [])


def test_nothing_kept_leaves_every_sku_to_look_for():
    assert in_force(["A", "B"], {}, NOW, HOUR) == ({}, ["A", "B"])
    assert in_force([], {"A": looked_up(1)}, NOW, HOUR) == ({}, [])
