"""One computation of available-to-sell, one answer: with velocity-weighted rules, what the
projection stores and puts in the outbox (what the channel is sent), what `GET /skus/{sku}`
shows and explains, and what `GET /skus/{sku}/at` answers for the same moment are the same
number, even when the sales that weigh the channels occurred days before "today"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from eventsourcing.application import AggregateNotFoundError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from domain.allocation import ChannelRule
from domain.rules import ChannelRules, channel_rules_id
from domain.stock import ChangeKind
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner, Rebuild
from infrastructure.push.store import Acknowledged, PushStore
from interfaces.http.api import Api
from interfaces.http.app import create_app
from interfaces.http.schemas import SkuStock
from interfaces.presenters import item_document, sent_channels_document
from tests.helpers import change, random_sku

K = ChangeKind
SHOP, MARKET, WOO = "shop", "market", "woo"
RULES = (
    ChannelRule(SHOP, share_percent=60, velocity_weighted=True, min_share_percent=10),
    ChannelRule(MARKET, share_percent=40, velocity_weighted=True),
    ChannelRule(WOO, share_percent=100, safety_buffer=3),
)


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@pytest.fixture
def runner(scratch_database):
    with AvailabilityRunner(eventsourcing_env(scratch_database), RULES) as running:
        yield running


@pytest.fixture
def client(scratch_ledger, runner):
    app = create_app(Api(scratch_ledger, rules=RULES, velocities=runner.view.velocities))
    with TestClient(app) as test_client:
        yield test_client


def caught_up(ledger: Ledger, runner: AvailabilityRunner) -> None:
    assert runner.wait(ledger.recorder.max_notification_id() or 0, timeout=30)


def outbox(database: str, sku: str) -> dict[str, int]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT channel_id, quantity FROM availability_outbox WHERE sku = %s", [sku]
        ).fetchall()
    return dict(rows)


def answers(client: TestClient, sku: str, path: str = "", **params: str) -> dict[str, int]:
    response = client.get(f"/api/v1/skus/{sku}{path}", params=params)
    assert response.status_code == 200, response.text
    return {c: ats["available_to_sell"] for c, ats in response.json()["channels"].items()}


def record_backfilled_sales(ledger: Ledger, sku: str) -> None:
    """Sales that occurred 9 to 12 days ago, recorded now (an import, a late channel): the
    projection weighs them by the week up to the day the last one occurred, in which they
    fall, whereas the week up to today holds none of them."""
    ledger.record(change(K.RECEIPT, sku, 100, occurred_at=days_ago(13)))
    ledger.record(change(K.SALE, sku, 4, source=SHOP, occurred_at=days_ago(12)))
    ledger.record(change(K.SALE, sku, 10, source=MARKET, occurred_at=days_ago(9)))


def test_the_outbox_the_sku_api_and_the_as_of_answer_agree_on_backfilled_sales(
    scratch_ledger, scratch_database, runner, client
):
    sku = random_sku()
    record_backfilled_sales(scratch_ledger, sku)
    caught_up(scratch_ledger, runner)

    sent = outbox(scratch_database, sku)
    # 86 available; the weighted channels split their 100 %: 10 % floor to the shop, and the
    # other 90 % by 4 : 10 units sold in the week up to the market's sale.
    assert sent == {SHOP: 30, MARKET: 55, WOO: 83}
    assert runner.view.available_to_sell(sku) == sent
    assert answers(client, sku) == sent
    now = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    assert answers(client, sku, "/at", time=now) == sent


def test_the_explanation_is_that_of_the_number_sent_with_the_inputs_it_was_computed_from(
    scratch_ledger, scratch_database, runner, client
):
    sku = random_sku()
    record_backfilled_sales(scratch_ledger, sku)
    caught_up(scratch_ledger, runner)

    held = runner.view.channels(sku, RULES)
    explained = client.get(f"/api/v1/skus/{sku}", params={"explain": "true"}).json()["channels"]
    now = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    as_of = client.get(f"/api/v1/skus/{sku}/at", params={"time": now, "explain": "true"})

    sent = outbox(scratch_database, sku)
    assert {c: h.available_to_sell for c, h in held.items()} == sent
    assert {c: h.allocation.available_to_sell for c, h in held.items()} == sent
    document = sent_channels_document(held, explain=True)
    for channel_id in sent:
        assert explained[channel_id]["steps"] == document[channel_id]["steps"]
        assert as_of.json()["channels"][channel_id]["steps"] == document[channel_id]["steps"]
    assert document[MARKET]["steps"][1]["rule"] == (
        "64.2857% (floor 0% + velocity 1.42857 of 2 of 90%)"
    )
    assert runner.view.velocities(sku) == {SHOP: 4 / 7, MARKET: 10 / 7}


def test_the_sku_answer_says_whether_the_channel_was_sent_it_and_what_it_acknowledged(
    scratch_ledger, scratch_database, runner
):
    sku = random_sku()
    record_backfilled_sales(scratch_ledger, sku)
    caught_up(scratch_ledger, runner)
    before = runner.view.channels(sku, RULES)
    store = PushStore(scratch_database)
    try:
        [pending] = [p for p in store.pending(MARKET, 1000) if p.sku == sku]
        store.acknowledge(MARKET, [Acknowledged(pending, 60)], datetime.now(UTC))
    finally:
        store.close()

    after = runner.view.channels(sku, RULES)
    document = {
        **item_document(LedgerQueries(scratch_ledger).get_item(sku)),
        "channels": sent_channels_document(after),
    }

    assert (before[MARKET].pending, before[MARKET].acknowledged_quantity) == (True, None)
    market = document["channels"][MARKET]
    assert (market["available_to_sell"], market["pending"]) == (55, False)
    assert (market["pushed_version"], market["acknowledged_quantity"]) == (pending.version, 60)
    assert document["channels"][SHOP]["pending"] is True
    SkuStock.model_validate(document)  # the shape the OpenAPI document promises


def test_a_rebuild_from_the_whole_ledger_finds_every_number_and_velocity_as_the_live_fold_left_it(
    scratch_ledger, scratch_database, runner
):
    skus = [random_sku() for _ in range(3)]
    for sku in skus:
        record_backfilled_sales(scratch_ledger, sku)
    scratch_ledger.record(change(K.SALE, skus[0], 2, source=SHOP, occurred_at=days_ago(1)))
    caught_up(scratch_ledger, runner)
    live = {sku: (outbox(scratch_database, sku), runner.view.velocities(sku)) for sku in skus}

    report = Rebuild(scratch_database, RULES).run()

    assert report.differences == []
    assert {sku: (outbox(scratch_database, sku), runner.view.velocities(sku)) for sku in skus} == (
        live
    )


def test_a_number_computed_under_configured_rules_since_changed_says_so_in_its_explanation(
    scratch_ledger, runner
):
    sku = random_sku()
    record_backfilled_sales(scratch_ledger, sku)
    caught_up(scratch_ledger, runner)
    reconfigured = (*RULES[:2], ChannelRule(WOO, share_percent=50))

    held = runner.view.channels(sku, reconfigured)

    assert held[WOO].available_to_sell == held[WOO].allocation.available_to_sell == 83
    assert [(s.name, s.quantity) for s in held[WOO].allocation.steps[-2:]] == [
        ("rounding", 43),
        ("held", 83),
    ]
    assert held[SHOP].allocation == runner.view.channels(sku, RULES)[SHOP].allocation


def test_a_sku_the_projection_has_not_folded_has_no_channels_held(runner):
    assert runner.view.channels(random_sku(), RULES) == {}
    assert runner.view.velocities(random_sku()) == {}


def test_a_rule_change_of_a_channel_not_configured_leaves_the_velocity_day_alone(
    scratch_ledger, scratch_database, runner, client
):
    sku = random_sku()
    record_backfilled_sales(scratch_ledger, sku)
    scratch_ledger.change_channel_rules(ChannelRule(f"elsewhere-{uuid.uuid4().hex[:6]}"), "t", "")
    caught_up(scratch_ledger, runner)

    now = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    assert answers(client, sku, "/at", time=now) == outbox(scratch_database, sku)
    assert outbox(scratch_database, sku)[MARKET] == 55


# Any history, in any batches ------------------------------------------------------------------


@st.composite
def histories(draw):
    """Stock changes through the channels that occurred up to twelve days back, and changes of
    the channels' rules and of their overrides for the SKU, in any order."""
    steps = []
    for _ in range(draw(st.integers(1, 10))):
        roll = draw(st.integers(0, 6))
        channel = draw(st.sampled_from([SHOP, MARKET, WOO]))
        if roll == 0:
            share = draw(st.sampled_from([40.0, 60.0, 100.0]))
            steps.append(
                ChannelRule(
                    channel,
                    share_percent=share,
                    safety_buffer=draw(st.integers(0, 3)),
                    velocity_weighted=draw(st.booleans()),
                    min_share_percent=share * draw(st.sampled_from([0.0, 0.25])),
                )
            )
        elif roll == 1:
            keys = draw(st.sampled_from([{}, {"stop_at": 2}, {"share_percent": 30}]))
            steps.append((channel, keys))
        else:
            steps.append(
                {
                    "kind": draw(st.sampled_from([K.RECEIPT, K.SALE, K.SALE, K.SALE_CANCELLATION])),
                    "quantity": draw(st.integers(1, 9)),
                    "source": draw(st.sampled_from([SHOP, MARKET, WOO, "wms"])),
                    "occurred_at": days_ago(draw(st.integers(0, 288)) / 24),
                }
            )
    return steps


def _override(ledger: Ledger, channel_id: str, keys: dict, sku: str) -> None:
    try:
        rules = ledger.repository.get(channel_rules_id(channel_id))
    except AggregateNotFoundError:
        rules = ChannelRules(channel_id)
    rules.override(sku, keys, "test", "property")
    ledger.save(rules)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(history=histories())
def test_after_any_history_the_three_answers_are_what_the_outbox_holds(
    scratch_ledger, scratch_database, runner, client, history
):
    sku = random_sku()
    scratch_ledger.record(change(K.RECEIPT, sku, 50, occurred_at=days_ago(12)))
    for step in history:
        if isinstance(step, ChannelRule):
            scratch_ledger.change_channel_rules(step, "test", "property")
        elif isinstance(step, tuple):
            _override(scratch_ledger, *step, sku)
        else:
            scratch_ledger.record(change(sku=sku, **step))
    caught_up(scratch_ledger, runner)

    sent = outbox(scratch_database, sku)
    held = runner.view.channels(sku, RULES)
    assert {c: h.available_to_sell for c, h in held.items()} == sent
    assert {c: h.allocation.available_to_sell for c, h in held.items()} == sent
    assert answers(client, sku) == sent
    now = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    assert answers(client, sku, "/at", time=now) == sent
