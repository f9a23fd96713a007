"""The HTTP API through Starlette's test client, on a real ledger, PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from domain.stock import ChangeKind
from infrastructure.postgres import check_database
from infrastructure.redis import check_redis
from interfaces.http.api import Api, Probe
from interfaces.http.app import create_app
from tests.helpers import change, random_sku

K = ChangeKind
PROBLEM = "application/problem+json"
CLOSED_REDIS = "redis://127.0.0.1:1/0"  # loopback, a port nothing listens on
CLOSED_DATABASE = "postgresql://postgres@127.0.0.1:1/postgres"
LEVELS = ("on_hand", "committed", "reserved", "unavailable", "available")


def _client(ledger: Any, probes: dict[str, Probe] | None = None) -> TestClient:
    # Server errors come back as 500 answers, so a failing test shows the status it got.
    return TestClient(create_app(Api(ledger, probes=probes or {})), raise_server_exceptions=False)


@pytest.fixture
def client(ledger: Any) -> Iterator[TestClient]:
    with _client(ledger) as test_client:
        yield test_client


def _levels(on_hand: int = 0, committed: int = 0, reserved: int = 0, unavailable: int = 0):
    return {
        "on_hand": on_hand,
        "committed": committed,
        "reserved": reserved,
        "unavailable": unavailable,
        "available": on_hand - committed - reserved - unavailable,
    }


def _assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["detail"]
    return body


# Health -------------------------------------------------------------------------------------


def test_healthz_answers_200_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_200_when_the_database_and_redis_both_answer(
    ledger, database_url, redis_url
):
    probes = {
        "database": lambda: check_database(database_url),
        "redis": lambda: check_redis(redis_url),
    }
    with _client(ledger, probes) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_answers_503_with_a_problem_naming_redis_when_redis_is_unreachable(
    ledger, database_url
):
    probes = {
        "database": lambda: check_database(database_url),
        "redis": lambda: check_redis(CLOSED_REDIS, timeout=0.5),
    }
    with _client(ledger, probes) as client:
        response = client.get("/readyz")
    body = _assert_problem(response, 503)
    assert body["title"] == "Not ready"
    assert body["checks"]["database"] == "ok"
    assert "Redis is unreachable" in body["checks"]["redis"]
    assert "Redis is unreachable" in body["detail"]


def test_readyz_answers_503_with_a_problem_naming_the_database_when_it_is_unreachable(
    ledger, redis_url
):
    probes = {
        "database": lambda: check_database(CLOSED_DATABASE, timeout=1),
        "redis": lambda: check_redis(redis_url),
    }
    with _client(ledger, probes) as client:
        response = client.get("/readyz")
    body = _assert_problem(response, 503)
    assert body["checks"]["redis"] == "ok"
    assert "\n" not in body["checks"]["database"]
    assert "PostgreSQL is unreachable" in body["checks"]["database"]
    assert "PostgreSQL is unreachable" in body["detail"]


# Current stock ------------------------------------------------------------------------------


def test_a_sku_answers_exactly_the_documented_shape_with_levels_per_location_and_totals(
    client, ledger
):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 10, location="east"))
    ledger.record(change(K.RECEIPT, sku, 4, location="west"))
    ledger.record(change(K.SALE, sku, 3, location="east"))
    ledger.record(change(K.SALE, sku, 6, location="west"))  # two more than west has

    response = client.get(f"/api/v1/skus/{sku}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "sku": sku,
        "version": 5,  # created, then four changes
        "locations": {
            "east": _levels(on_hand=10, committed=3),
            "west": _levels(on_hand=4, committed=6),
        },
        "totals": _levels(on_hand=14, committed=9),
        "channels": {},  # no channel configured in this app
    }
    document = response.json()
    assert document["locations"]["west"]["available"] == -2
    assert all(list(levels) == list(LEVELS) for levels in document["locations"].values())
    assert list(document["totals"]) == list(LEVELS)


def test_an_unknown_sku_answers_404_with_a_problem_document(client):
    sku = random_sku()
    body = _assert_problem(client.get(f"/api/v1/skus/{sku}"), 404)
    assert body["title"] == "Unknown SKU"
    assert sku in body["detail"]


# Stock as of a time -------------------------------------------------------------------------


def test_stock_at_a_past_time_is_what_had_been_recorded_by_then(client, ledger):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 10, location="east"))
    then = datetime.now(UTC)
    ledger.record(change(K.SALE, sku, 4, location="east"))
    ledger.record(change(K.RECEIPT, sku, 2, location="west"))

    past = client.get(f"/api/v1/skus/{sku}/at", params={"time": then.isoformat()})
    now = client.get(f"/api/v1/skus/{sku}/at", params={"time": datetime.now(UTC).isoformat()})

    assert past.status_code == 200, past.text
    assert past.json() == {
        "sku": sku,
        "version": 2,
        "locations": {"east": _levels(on_hand=10)},
        "totals": _levels(on_hand=10),
        "channels": {},  # no channels configured
        "as_of": then.isoformat(),
    }
    assert now.status_code == 200, now.text
    assert now.json()["version"] == 4
    assert now.json()["totals"] == _levels(on_hand=12, committed=4)


@pytest.mark.parametrize(
    "time_text",
    [
        pytest.param("{date}T{clock}Z", id="Z"),
        pytest.param("{date}T{clock}%2B00:00", id="encoded-plus"),
        pytest.param("{date}T{clock}+00:00", id="unencoded-plus-read-as-a-space"),
    ],
)
def test_a_time_in_utc_is_understood_however_its_zone_is_written(client, ledger, time_text):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 3))
    later = datetime.now(UTC) + timedelta(seconds=1)
    query = time_text.format(date=later.date().isoformat(), clock=later.strftime("%H:%M:%S"))

    response = client.get(f"/api/v1/skus/{sku}/at?time={query}")

    assert response.status_code == 200, response.text
    assert response.json()["totals"]["on_hand"] == 3
    assert datetime.fromisoformat(response.json()["as_of"]) == later.replace(microsecond=0)


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        pytest.param("", "time is required", id="missing"),
        pytest.param("?time=yesterday", "is not an ISO 8601 time", id="not-iso"),
        pytest.param("?time=2026-01-01T12:00:00", "needs a time zone", id="no-zone"),
    ],
)
def test_stock_at_a_time_answers_400_for_a_missing_or_unreadable_time(
    client, ledger, query, complaint
):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    body = _assert_problem(client.get(f"/api/v1/skus/{sku}/at{query}"), 400)
    assert body["title"] == "Bad query parameter"
    assert complaint in body["detail"]


def test_stock_at_a_time_before_the_sku_existed_answers_404(client, ledger):
    sku = random_sku()
    before = datetime.now(UTC) - timedelta(minutes=1)
    ledger.record(change(K.RECEIPT, sku, 5))
    response = client.get(f"/api/v1/skus/{sku}/at", params={"time": before.isoformat()})
    body = _assert_problem(response, 404)
    assert sku in body["detail"]


# History ------------------------------------------------------------------------------------


def _history(client: TestClient, sku: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/v1/skus/{sku}/history", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_history_pages_newest_first_through_next_cursor(client, ledger):
    sku = random_sku()
    for quantity in range(1, 6):  # versions 2..6
        ledger.record(change(K.RECEIPT, sku, quantity))

    pages = [_history(client, sku, limit=2)]
    while pages[-1]["next_cursor"] is not None:
        pages.append(_history(client, sku, limit=2, cursor=pages[-1]["next_cursor"]))

    assert [[e["version"] for e in page["events"]] for page in pages] == [[6, 5], [4, 3], [2]]
    assert pages[-1]["next_cursor"] is None
    assert all(page["sku"] == sku for page in pages)
    first = pages[0]["events"][0]
    assert first["kind"] == "receipt"
    assert first["event"] == "Received"
    assert first["details"] == {"quantity": 5}
    assert first["deltas"] == [{"location": "main", "state": "on_hand", "units": 5}]


def test_history_in_oldest_order_pages_forward(client, ledger):
    sku = random_sku()
    for quantity in range(1, 6):
        ledger.record(change(K.RECEIPT, sku, quantity))

    first = _history(client, sku, order="oldest", limit=3)
    second = _history(client, sku, order="oldest", limit=3, cursor=first["next_cursor"])

    assert [e["version"] for e in first["events"]] == [2, 3, 4]
    assert first["next_cursor"] is not None
    assert [e["version"] for e in second["events"]] == [5, 6]
    assert second["next_cursor"] is None
    quantities = [e["details"]["quantity"] for e in first["events"] + second["events"]]
    assert quantities == [1, 2, 3, 4, 5]


def test_history_filtered_by_kind_shows_only_that_kind(client, ledger):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 10))
    ledger.record(change(K.SALE, sku, 2))
    ledger.record(change(K.RECEIPT, sku, 1))
    ledger.record(change(K.SALE, sku, 3))

    sales = _history(client, sku, kind="sale")
    both = _history(client, sku, kind=["sale", "receipt"])

    assert [(e["kind"], e["details"]["quantity"]) for e in sales["events"]] == [
        ("sale", 3),
        ("sale", 2),
    ]
    assert sales["next_cursor"] is None
    assert [e["version"] for e in both["events"]] == [5, 4, 3, 2]


def test_history_answers_400_for_an_unknown_kind(client, ledger):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    body = _assert_problem(client.get(f"/api/v1/skus/{sku}/history?kind=theft"), 400)
    assert "kind must be one of" in body["detail"]
    assert "sale" in body["detail"]


@pytest.mark.parametrize(
    "limit",
    [
        pytest.param("0", id="zero"),
        pytest.param("5000", id="too-many"),
        pytest.param("abc", id="not-a-number"),
        pytest.param("-1", id="negative"),
        pytest.param("\u00b2", id="superscript-two"),
        pytest.param("9" * 5000, id="past-the-int-parsing-limit"),
    ],
)
def test_history_answers_400_for_a_limit_outside_1_to_1000(client, ledger, limit):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    response = client.get(f"/api/v1/skus/{sku}/history", params={"limit": limit})
    body = _assert_problem(response, 400)
    assert "limit" in body["detail"]


def test_history_answers_400_for_a_cursor_that_is_not_a_whole_number(client, ledger):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    body = _assert_problem(client.get(f"/api/v1/skus/{sku}/history?cursor=abc"), 400)
    assert "cursor" in body["detail"]


@pytest.mark.parametrize("digits", [20, 4301, 50_000])
def test_a_cursor_or_limit_too_long_for_a_number_answers_400_not_500(client, ledger, digits):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 1))
    for query, name in ((f"cursor={'9' * digits}", "cursor"), (f"limit={'9' * digits}", "limit")):
        body = _assert_problem(client.get(f"/api/v1/skus/{sku}/history?{query}"), 400)
        assert name in body["detail"]
        assert len(body["detail"]) < 200
    body = _assert_problem(client.get(f"/api/v1/skus?limit={'1' * digits}"), 400)
    assert "limit" in body["detail"]


def test_history_of_an_unknown_sku_answers_404(client):
    sku = random_sku()
    body = _assert_problem(client.get(f"/api/v1/skus/{sku}/history"), 404)
    assert sku in body["detail"]


# Oversells ----------------------------------------------------------------------------------


def test_oversells_list_a_sale_beyond_available_stock_with_its_shortfall(client, ledger):
    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 2, location="east"))
    covered = ledger.record(change(K.SALE, sku, 1, location="east"))
    oversold = ledger.record(change(K.SALE, sku, 4, location="east"))  # 1 available: 3 short
    before = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()

    response = client.get("/api/v1/oversells", params={"limit": 1000, "before": before})

    assert response.status_code == 200, response.text
    mine = {o["business_key"]: o for o in response.json()["oversells"] if o["sku"] == sku}
    assert covered.change.business_key not in mine
    found = mine[oversold.change.business_key]
    assert {k: v for k, v in found.items() if k not in ("events_before", "events_after")} == {
        "business_key": oversold.change.business_key,
        "sku": sku,
        "kind": "sale",
        "versions": [4, 4],
        "recorded_at": oversold.receipt.recorded_at.isoformat(),
        "occurred_at": oversold.change.occurred_at.isoformat(),
        "source": "test",
        "shortfall": 3,
        "location": "east",
        "reference": "",
        "reason": "sale",  # none given: the kind
        "channels": {"before": {}, "after": {}},  # no channels configured
    }
    assert [e["version"] for e in found["events_before"]] == [2, 3]
    assert found["events_after"] == []


def test_each_channel_gets_its_available_to_sell_and_can_explain_it(ledger):
    from domain.allocation import ChannelRule

    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 100, location="east"))
    ledger.record(change(K.RECEIPT, sku, 50, location="west"))
    rules = [
        ChannelRule("shopify-us", share_percent=40, safety_buffer=2, locations=("east",)),
        ChannelRule("amazon-us", share_percent=30, safety_buffer=2, locations=("east",)),
        ChannelRule("woo-eu", locations=("west",), max_quantity=20),
    ]
    with TestClient(create_app(Api(ledger, rules=rules))) as client:
        plain = client.get(f"/api/v1/skus/{sku}").json()["channels"]
        explained = client.get(f"/api/v1/skus/{sku}?explain=true").json()["channels"]
        bad = client.get(f"/api/v1/skus/{sku}?explain=maybe")
    assert plain == {
        "shopify-us": {"available_to_sell": 38},
        "amazon-us": {"available_to_sell": 28},
        "woo-eu": {"available_to_sell": 20},
    }
    assert [s["step"] for s in explained["shopify-us"]["steps"]] == [
        "pool",
        "share",
        "safety_buffer",
        "rounding",
    ]
    assert explained["woo-eu"]["steps"][-2] == {
        "step": "cap",
        "quantity": 20,
        "rule": "max_quantity 20",
    }
    assert bad.status_code == 400


def test_history_across_skus_filters_pages_and_exports_csv(client, ledger):
    order = f"shopify://shop/orders/{random_sku()}"
    skus = [random_sku(), random_sku()]
    ledger.record(change(K.RECEIPT, skus[0], 5, location="east"))
    for sku in skus:
        ledger.record(change(K.RECEIPT, sku, 3))
        ledger.record(change(K.SALE, sku, 1, reference=order, source="shop-us"))

    by_order = client.get("/api/v1/history", params={"reference": order}).json()
    assert sorted(c["sku"] for c in by_order["changes"]) == sorted(skus)
    assert {c["kind"] for c in by_order["changes"]} == {"sale"}
    assert all(c["source"] == "shop-us" for c in by_order["changes"])

    first = client.get("/api/v1/history", params={"sku": skus[0], "limit": 2}).json()
    assert len(first["changes"]) == 2
    rest = client.get(
        "/api/v1/history", params={"sku": skus[0], "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [c["kind"] for c in first["changes"] + rest["changes"]] == ["sale", "receipt", "receipt"]
    assert rest["changes"][-1]["location"] == "east"
    east = client.get("/api/v1/history", params={"location": "east", "sku": skus[0]}).json()
    assert len(east["changes"]) == 1

    csv_answer = client.get("/api/v1/history", params={"reference": order, "format": "csv"})
    assert csv_answer.headers["content-type"].startswith("text/csv")
    lines = csv_answer.text.strip().splitlines()
    assert lines[0].startswith("recorded_at,occurred_at,sku,kind")
    assert len(lines) == 3
    assert client.get("/api/v1/history", params={"cursor": "!!"}).status_code == 400


# Tabs and carriage returns, also formula leads, cannot be recorded at all (control characters).
@pytest.mark.parametrize("lead", ["=", "+", "-", "@"])
def test_the_csv_export_escapes_cells_a_spreadsheet_would_run_as_formulas(client, ledger, lead):
    import csv
    import io

    sku = lead + random_sku()
    formula = f'{lead}HYPERLINK("http://evil.example","x")'
    reference = f"erp://po/{random_sku()}"
    ledger.record(
        change(K.RECEIPT, sku, 3, reason=formula, business_key=lead + sku, reference=reference)
    )
    answer = client.get("/api/v1/history", params={"reference": reference, "format": "csv"})
    (row,) = list(csv.DictReader(io.StringIO(answer.text)))
    assert row["reason"] == "'" + formula
    assert row["sku"] == "'" + sku
    assert row["business_key"] == "'" + lead + sku
    assert row["reference"] == reference
    json_answer = client.get("/api/v1/history", params={"reference": reference}).json()
    assert json_answer["changes"][0]["sku"] == sku  # JSON is data, left as it is


def test_skus_can_be_searched_and_paged(client, ledger):
    prefix = random_sku("searchable")
    for n in range(3):
        ledger.record(change(K.RECEIPT, f"{prefix}-{n}", 1))
    first = client.get("/api/v1/skus", params={"search": prefix, "limit": 2}).json()
    assert first["skus"] == [f"{prefix}-0", f"{prefix}-1"]
    rest = client.get("/api/v1/skus", params={"search": prefix, "after": first["next_after"]})
    assert rest.json() == {"skus": [f"{prefix}-2"], "next_after": None}
    assert client.get("/api/v1/skus", params={"search": "%"}).status_code == 200
    assert (
        client.get("/api/v1/skus", params={"search": "no-such-sku-%-at-all"}).json()["skus"] == []
    )


def test_velocity_weighted_channels_use_the_sales_velocity_given(ledger):
    from domain.allocation import ChannelRule

    sku = random_sku()
    ledger.record(change(K.RECEIPT, sku, 100))
    rules = [
        ChannelRule("fast", share_percent=50, velocity_weighted=True),
        ChannelRule("slow", share_percent=50, velocity_weighted=True),
    ]
    app = create_app(Api(ledger, rules=rules, velocities=lambda _: {"fast": 3.0, "slow": 1.0}))
    with TestClient(app) as client:
        channels = client.get(f"/api/v1/skus/{sku}").json()["channels"]
    assert channels == {"fast": {"available_to_sell": 75}, "slow": {"available_to_sell": 25}}
