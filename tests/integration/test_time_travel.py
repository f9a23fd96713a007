"""Stock and available-to-sell as of a past moment, and oversells in their context, on a real
ledger: the answers must be those the availability projection's fold held after the events
recorded up to that moment (what the channels were sent)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import chain, pairwise

import pytest
from eventsourcing.application import AggregateNotFoundError, project_aggregate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from application.availability import AvailabilityFold, RuleBook
from application.errors import UnknownSku
from domain.allocation import ChannelRule
from domain.inventory import InventoryItem, inventory_item_id
from domain.rules import ChannelRules, channel_rules_id
from domain.stock import ChangeKind
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests import ledger_scenarios as scenarios
from tests.helpers import change, random_sku

K = ChangeKind
PROBLEM = "application/problem+json"


def _unique(name: str) -> str:
    # Rule changes are stored per channel id: each test gets channels nobody else changed.
    return f"{name}-{uuid.uuid4().hex[:8]}"


# Agreement with a replay ---------------------------------------------------------------------


@st.composite
def steps(draw, channels):
    """One step of a history: a stock change through a channel, a change of a channel's rules,
    or of its override for the SKU. Sales occurred up to ten days back, so the velocity window
    cuts through them."""
    roll = draw(st.integers(0, 5))
    if roll == 1:
        keys = draw(st.sampled_from([{}, {"safety_buffer": 2}, {"stop_at": 3}]))
        return draw(st.sampled_from(channels)), keys
    if roll == 0:
        share = draw(st.sampled_from([20.0, 50.0, 100.0]))
        return ChannelRule(
            draw(st.sampled_from(channels)),
            share_percent=share,
            safety_buffer=draw(st.integers(0, 3)),
            velocity_weighted=draw(st.booleans()),
            min_share_percent=share * draw(st.sampled_from([0.0, 0.25])),
            locations=draw(st.sampled_from([None, ("east",)])),
        )
    kind = draw(st.sampled_from([K.RECEIPT, K.SALE, K.SALE, K.SALE_CANCELLATION, K.SHIPMENT]))
    return {
        "kind": kind,
        "quantity": draw(st.integers(1, 8)),
        "location": draw(st.sampled_from(["east", "west"])),
        "source": draw(st.sampled_from([*channels, "wms"])),
        "occurred_at": datetime.now(UTC) - timedelta(hours=draw(st.integers(0, 240))),
    }


def _override(ledger, channel_id, keys, sku):
    try:
        rules = ledger.repository.get(channel_rules_id(channel_id))
    except AggregateNotFoundError:
        rules = ChannelRules(channel_id)
    rules.override(sku, keys, "test", "property")
    ledger.save(rules)


def _replay(sku, stock_events, rule_events, defaults, at):
    """What the projection held by `at`: the item, and the allocations of its fold (the one the
    live projection and a rebuild run) of the events recorded by then, in the order recorded."""
    recorded = sorted(
        (e for e in chain(stock_events, *rule_events.values()) if e.timestamp <= at),
        key=lambda e: e.timestamp,
    )
    item_events = [e for e in recorded if e.originator_id == inventory_item_id(sku)]
    if not any(isinstance(e, InventoryItem.StockEvent) for e in item_events):
        return None
    fold = AvailabilityFold(RuleBook(defaults))
    fold.fold(recorded)
    return project_aggregate(None, item_events), fold.computation(fold.skus[sku]).allocations


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_stock_and_ats_as_of_any_time_equal_the_projections_fold_of_the_events_by_then(
    ledger, time_travel, data
):
    sku = random_sku("asof")
    defaults = [
        ChannelRule(_unique("shop"), share_percent=60, velocity_weighted=True),
        ChannelRule(_unique("market"), share_percent=40, velocity_weighted=True),
    ]
    channel_ids = [rule.channel_id for rule in defaults]
    for step in data.draw(st.lists(steps(channel_ids), min_size=1, max_size=12)):
        if isinstance(step, ChannelRule):
            ledger.change_channel_rules(step, "test", "property")
        elif isinstance(step, tuple):
            _override(ledger, *step, sku)
        else:
            ledger.record(change(sku=sku, **step))

    stock_events = list(ledger.events.get(inventory_item_id(sku)))
    rule_events = {c: list(ledger.events.get(channel_rules_id(c))) for c in channel_ids}
    stamps = sorted(
        e.timestamp for e in [*stock_events, *(e for es in rule_events.values() for e in es)]
    )
    moments = stamps + [a + (b - a) / 2 for a, b in pairwise(stamps)]
    moments += [stamps[0] - timedelta(seconds=1), stamps[-1] + timedelta(days=8)]
    for at in data.draw(st.lists(st.sampled_from(moments), min_size=1, max_size=6)):
        expected = _replay(sku, stock_events, rule_events, defaults, at)
        if expected is None:
            with pytest.raises(UnknownSku):
                time_travel.availability_at(sku, at, defaults)
            continue
        item, allocations = time_travel.availability_at(sku, at, defaults)
        assert (item.version, item.locations) == (expected[0].version, expected[0].locations)
        assert allocations == expected[1]


def test_rules_changed_between_two_times_give_each_time_its_own_ats(ledger):
    sku = random_sku()
    channel = ChannelRule(_unique("shop"), share_percent=50)
    ledger.record(change(K.RECEIPT, sku, 100))
    before_change = datetime.now(UTC)
    ledger.change_channel_rules(
        ChannelRule(channel.channel_id, share_percent=80, safety_buffer=5), "merch", "peak"
    )
    after_change = datetime.now(UTC)

    with TestClient(create_app(Api(ledger, rules=[channel]))) as client:
        then = client.get(f"/api/v1/skus/{sku}/at", params={"time": before_change.isoformat()})
        now = client.get(
            f"/api/v1/skus/{sku}/at", params={"time": after_change.isoformat(), "explain": "true"}
        )

    assert then.status_code == 200, then.text
    assert then.json()["channels"] == {channel.channel_id: {"available_to_sell": 50}}
    assert then.json()["as_of"] == before_change.isoformat()
    shown = now.json()["channels"][channel.channel_id]
    assert shown["available_to_sell"] == 75
    assert [s["step"] for s in shown["steps"]] == ["pool", "share", "safety_buffer", "rounding"]


def test_a_skus_override_applies_to_it_from_the_time_it_was_recorded(ledger, time_travel):
    sku, other = random_sku(), random_sku()
    channel = ChannelRule(_unique("shop"))
    ledger.record_batch([change(K.RECEIPT, sku, 10), change(K.RECEIPT, other, 10)])
    before_override = datetime.now(UTC)
    _override(ledger, channel.channel_id, {"safety_buffer": 4}, sku)
    after_override = datetime.now(UTC)

    def ats(name, at):
        _, allocations = time_travel.availability_at(name, at, [channel])
        return allocations[channel.channel_id].available_to_sell

    assert (ats(sku, before_override), ats(sku, after_override)) == (10, 6)
    assert ats(other, after_override) == 10


def test_velocity_weighs_the_channels_by_the_week_up_to_the_day_the_last_event_occurred(
    ledger, time_travel
):
    sku = random_sku()
    shop, market = _unique("shop"), _unique("market")
    rules = [
        ChannelRule(shop, share_percent=50, velocity_weighted=True),
        ChannelRule(market, share_percent=50, velocity_weighted=True),
    ]
    ledger.record(change(K.RECEIPT, sku, 100))
    long_ago = datetime.now(UTC) - timedelta(days=9)
    ledger.record(change(K.SALE, sku, 10, source=market, occurred_at=long_ago))
    ledger.record(change(K.SALE, sku, 10, source=shop))
    at = datetime.now(UTC)

    _, allocations = time_travel.availability_at(sku, at, rules)

    # 80 available, split by the last week's sales: the market's sold before it.
    assert {c: a.available_to_sell for c, a in allocations.items()} == {shop: 80, market: 0}


def test_velocity_of_a_backfilled_sale_is_that_of_the_week_it_occurred_not_of_the_time_asked(
    ledger,
    time_travel,
):
    scenarios.velocity_of_a_backfilled_sale_is_that_of_the_week_it_occurred(ledger, time_travel)


# Oversells in context ------------------------------------------------------------------------


def test_an_oversell_shows_its_neighbouring_events_and_each_channels_ats_either_side(
    ledger, time_travel
):
    sku = random_sku()
    shop = ChannelRule(_unique("shop"))
    capped = ChannelRule(_unique("capped"), max_quantity=1)
    ledger.record(change(K.RECEIPT, sku, 2))  # v1 created, v2
    ledger.record(change(K.SALE, sku, 1))  # v3
    ledger.record(change(K.RECEIPT, sku, 1))  # v4: 2 available
    oversold = ledger.record(change(K.SALE, sku, 5, business_key=f"order:{sku}"))  # v5
    ledger.record(change(K.RECEIPT, sku, 4))  # v6
    ledger.record(change(K.SHIPMENT, sku, 1))  # v7
    ledger.record(change(K.RECEIPT, sku, 9))  # v8: beyond the context asked for
    before = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()

    with TestClient(create_app(Api(ledger, rules=[shop, capped]))) as client:
        response = client.get(
            "/api/v1/oversells", params={"before": before, "limit": 1000, "context": 2}
        )

    assert response.status_code == 200, response.text
    [found] = [o for o in response.json()["oversells"] if o["sku"] == sku]
    assert found["business_key"] == f"order:{sku}"
    assert found["shortfall"] == 3
    assert [(e["version"], e["kind"]) for e in found["events_before"]] == [
        (3, "sale"),
        (4, "receipt"),
    ]
    assert [(e["version"], e["kind"]) for e in found["events_after"]] == [
        (6, "receipt"),
        (7, "shipment"),
    ]
    assert found["channels"] == {
        "before": {
            shop.channel_id: {"available_to_sell": 2},
            capped.channel_id: {"available_to_sell": 1},
        },
        "after": {
            shop.channel_id: {"available_to_sell": 0},
            capped.channel_id: {"available_to_sell": 0},
        },
    }
    # "After" is the ledger as of the moment the sale was recorded.
    _, allocations = time_travel.availability_at(sku, oversold.receipt.recorded_at, [shop, capped])
    assert {c: a.available_to_sell for c, a in allocations.items()} == {
        c: ats["available_to_sell"] for c, ats in found["channels"]["after"].items()
    }


def test_an_oversell_by_a_new_skus_first_sale_has_nothing_before_it(ledger, time_travel):
    sku = random_sku()
    shop = ChannelRule(_unique("shop"))
    ledger.record(change(K.SALE, sku, 2))  # v1 created, v2 sold from nothing

    [found] = [
        o for o in time_travel.oversells_in_context([shop], limit=1000) if o.receipt.sku == sku
    ]

    assert found.events_before == []
    assert found.before.item.version == 1
    assert found.before.allocations[shop.channel_id].available_to_sell == 0
    assert found.after.item.totals.committed == 2


def test_an_oversells_channels_either_side_are_what_the_projection_held_with_backfilled_sales(
    ledger,
    time_travel,
):
    sku = random_sku()
    shop, market = _unique("shop"), _unique("market")
    defaults = [
        ChannelRule(shop, share_percent=50, velocity_weighted=True),
        ChannelRule(market, share_percent=50, velocity_weighted=True),
    ]
    days_ago = [datetime.now(UTC) - timedelta(days=n) for n in range(13)]
    ledger.record(change(K.RECEIPT, sku, 30, occurred_at=days_ago[12]))
    ledger.record(change(K.SALE, sku, 20, source=shop, occurred_at=days_ago[11]))
    ledger.record(change(K.SALE, sku, 16, source=market, occurred_at=days_ago[1]))  # oversold

    [found] = [
        o for o in time_travel.oversells_in_context(defaults, limit=1000) if o.receipt.sku == sku
    ]

    stock_events = list(ledger.events.get(inventory_item_id(sku)))
    rule_events = {r.channel_id: [] for r in defaults}
    sale = stock_events[-1]
    before = _replay(sku, stock_events[:-1], rule_events, defaults, sale.timestamp)
    after = _replay(sku, stock_events, rule_events, defaults, sale.timestamp)
    assert before is not None
    assert after is not None
    assert found.before.allocations == before[1]
    assert found.after.allocations == after[1]
    # Before the sale the projection weighed by the shop's week: it had all of the 10 left.
    assert {c: a.available_to_sell for c, a in found.before.allocations.items()} == {
        shop: 10,
        market: 0,
    }


def test_the_channels_of_an_oversell_are_those_of_the_rules_in_force_at_the_sale(
    ledger, time_travel
):
    sku = random_sku()
    channel_id = _unique("shop")
    defaults = [ChannelRule(channel_id, share_percent=50)]
    ledger.record(change(K.RECEIPT, sku, 10))
    ledger.record(change(K.SALE, sku, 12))  # oversold with the default rules in force
    ledger.change_channel_rules(ChannelRule(channel_id, share_percent=100), "merch", "later")

    [found] = [
        o for o in time_travel.oversells_in_context(defaults, limit=1000) if o.receipt.sku == sku
    ]

    assert found.before.allocations[channel_id].available_to_sell == 5


# Refusals ------------------------------------------------------------------------------------


@pytest.fixture
def client(ledger):
    with TestClient(create_app(Api(ledger, rules=[ChannelRule(_unique("shop"))]))) as test_client:
        yield test_client


def _assert_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


def test_a_sku_never_recorded_is_404_at_any_time(client):
    sku = random_sku()
    response = client.get(f"/api/v1/skus/{sku}/at", params={"time": datetime.now(UTC).isoformat()})
    assert sku in _assert_problem(response, 404)["detail"]


def test_a_sku_not_yet_recorded_at_the_time_is_404(client, ledger):
    sku = random_sku()
    before = datetime.now(UTC)
    ledger.record(change(K.RECEIPT, sku, 3))
    response = client.get(f"/api/v1/skus/{sku}/at", params={"time": before.isoformat()})
    assert before.isoformat() in _assert_problem(response, 404)["detail"]


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        pytest.param({"time": "last tuesday"}, "not an ISO 8601 time", id="time"),
        pytest.param({"time": "2026-01-01T00:00:00Z", "explain": "maybe"}, "explain", id="explain"),
    ],
)
def test_an_unreadable_time_or_flag_is_a_400_problem(client, ledger, query, complaint):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    response = client.get(f"/api/v1/skus/{sku}/at", params=query)
    body = _assert_problem(response, 400)
    assert complaint in body["detail"]


@pytest.mark.parametrize("context", ["21", "-1", "some"])
def test_oversell_context_beyond_twenty_or_not_a_number_is_a_400_problem(client, context):
    response = client.get("/api/v1/oversells", params={"context": context})
    assert "context" in _assert_problem(response, 400)["detail"]
