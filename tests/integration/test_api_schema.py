"""The OpenAPI document at /api/v1/openapi.json, and a schemathesis run against it: a real
uvicorn server on a database of its own, every /api/v1 operation fuzzed with valid and invalid
input. No answer may be a 5xx, and every answer must match the document."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hypothesis.strategies as st
import psycopg
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from application.reservations import Reservations
from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.channels.gateway import Gate
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.config import ApiToken, PushConfig
from infrastructure.idempotency import IdempotencyStore
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from infrastructure.projections.jobs import RebuildJobs
from infrastructure.push.redis_limits import RedisLimits
from infrastructure.push.service import Propagation, build_propagation
from infrastructure.queue import make_broker
from infrastructure.reconcile.review import Review
from infrastructure.reservation_store import PostgresReservations
from infrastructure.settings import HttpLimits
from interfaces.composition import open_ledger
from interfaces.http.api import Api
from interfaces.http.app import create_app
from interfaces.http.catalogue import OPENAPI_PATH, OPERATIONS
from interfaces.http.discrepancies import discrepancy_routes
from interfaces.http.openapi import op_key, undocumented
from interfaces.http.operations import operations_routes
from interfaces.http.projections import Projections, projection_routes
from interfaces.http.reconcile import reconcile_routes
from interfaces.http.reservations import reservation_routes
from interfaces.http.sync import sync_routes
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.helpers import assert_problem, change, migrated_database, random_sku
from tests.integration.intake_fixtures import channel_config, running_intake
from tests.integration.reconcile_fixtures import reconciled_channel, reconciliation

ADMIN_SECRET = "fuzz-admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_SECRET}"}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
# The values that reach a stored record, so that the fuzzer sees 200s as well as 404s.
EXAMPLES = 50  # per operation: the whole run stays under a minute on two cores
KNOWN = {"sku": random_sku("fuzz"), "channel_id": "shopify-us"}


@contextmanager
def propagating_to(database_url: str, redis_url: str, shop_url: str) -> Iterator[Propagation]:
    """Pushers for "woo-eu" (a WooCommerce sandbox), so the channel sync route has a channel."""
    broker = make_broker(redis_url, database_url, f"fuzz-{random_sku()}")
    client = redis.Redis.from_url(redis_url)

    def gateway(gate: Gate) -> WooCommerceGateway:
        return WooCommerceGateway(shop_url, "ck_fuzz", "cs_fuzz", channel_id="woo-eu", gate=gate)

    propagation = build_propagation(
        database_url, broker, RedisLimits(client), {"woo-eu": (gateway, PushConfig())}
    )
    try:
        yield propagation
    finally:
        propagation.stop()
        broker.close()
        client.close()


@pytest.fixture(scope="module")
def api_url(server_url: str, redis_url: str) -> Iterator[str]:
    """The whole app, with intake, rules, reservations and tokens, on a database of its own:
    the fuzzer changes rules and retries dead letters, which other tests must not see."""
    with migrated_database(server_url, "invsync_fuzz") as database_url:
        ledger = open_ledger(database_url)
        ledger.record(change(ChangeKind.RECEIPT, KNOWN["sku"], 10))
        store = PostgresReservations(database_url)
        idempotency = IdempotencyStore(database_url)
        digest = hashlib.sha256(ADMIN_SECRET.encode()).hexdigest()
        token = ApiToken(name="fuzzer", sha256=digest, scopes=("admin",))
        rules = [ChannelRule("shopify-us", share_percent=50), ChannelRule("woo-eu")]
        runner = AvailabilityRunner(eventsourcing_env(database_url), rules)
        woo = WooCommerceSandbox("ck_fuzz", "cs_fuzz", auto_deliver=False)
        try:
            with (
                runner,
                SandboxServer(woo.app) as shop,
                propagating_to(database_url, redis_url, shop.url) as propagation,
                reconciliation(database_url, redis_url, [reconciled_channel("shopify-us")]) as runs,
                running_intake(
                    ledger,
                    database_url,
                    redis_url,
                    channel_config(),
                    workers=False,
                    rules=rules,
                    reservations=Reservations(ledger, store),
                    projections=Projections(runner, RebuildJobs(database_url, rules)),
                    idempotency=idempotency,
                    tokens=[token],
                    sync=propagation.status,
                    reconciliation=runs,  # runs are asked for and listed, not worked
                    review=Review(lambda: psycopg.connect(database_url), ledger, {}),
                ) as running,
            ):
                yield running.url
        finally:
            woo.close()
            idempotency.close()
            store.close()
            ledger.close()


@pytest.fixture(scope="module")
def api_schema(api_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api_url}{OPENAPI_PATH}")


@pytest.mark.parametrize(
    ("method", "path"),
    [pytest.param(*op_key(op), id=f"{op.method} {op.path}") for op in OPERATIONS],
)
def test_no_answer_is_a_server_error_or_breaks_the_document(
    api_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    if path not in api_schema.raw_schema["paths"]:
        pytest.skip("the app in api_url does not serve it: give it the service this route needs")
    operation = api_schema[path][method]
    # Half the cases name a SKU or channel that exists, so the fuzzer gets past the 404.
    known = {name: value for name, value in KNOWN.items() if f"{{{name}}}" in path}
    cases = st.one_of(
        operation.as_strategy(mode, path_parameters=fixed)
        for mode in GenerationMode
        for fixed in ({}, known)
    )

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases)
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=ADMIN, checks=CHECKS)

    answers_as_documented()


# The document itself ------------------------------------------------------------------------


def test_the_document_is_openapi_3_1_and_needs_no_token(api_url: str) -> None:
    loaded = schemathesis.openapi.from_url(f"{api_url}{OPENAPI_PATH}")
    loaded.validate()  # against the OpenAPI 3.1 meta-schema
    raw = loaded.raw_schema
    assert raw["openapi"] == "3.1.0"
    served = {(method.upper(), path) for path, item in raw["paths"].items() for method in item}
    assert served <= {op_key(op) for op in OPERATIONS}
    assert {("GET", "/api/v1/dead-letters"), ("POST", "/api/v1/reservations")} <= served


def test_the_document_says_what_a_sku_answers_and_how_it_fails(api_url: str) -> None:
    raw = schemathesis.openapi.from_url(f"{api_url}{OPENAPI_PATH}").raw_schema
    sku = raw["paths"]["/api/v1/skus/{sku}"]["get"]
    assert sku["security"] == [{"bearer": ["read"]}]
    assert set(sku["responses"]) == {"200", "400", "401", "403", "404", "503"}
    assert sku["responses"]["404"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    components = raw["components"]["schemas"]
    assert set(components["Levels"]["required"]) == {
        "on_hand",
        "committed",
        "reserved",
        "unavailable",
        "available",
    }
    assert components["ChannelStock"]["required"] == ["available_to_sell"]
    assert components["Problem"]["required"] == ["type", "title", "status", "detail"]
    post = raw["paths"]["/api/v1/stock-changes"]["post"]
    assert {"name": "Idempotency-Key", "in": "header"}.items() <= post["parameters"][0].items()
    assert post["security"] == [{"bearer": ["write"]}]
    dead = raw["paths"]["/api/v1/dead-letters/{dead_id}"]["delete"]
    assert dead["security"] == [{"bearer": ["admin"]}]


def test_every_api_route_of_the_app_is_in_the_document(ledger: Any) -> None:
    # The operator and reservation routes only need their service when called.
    routes = [
        *create_app(Api(ledger)).routes,
        *operations_routes(None),
        *reservation_routes(None),
        *projection_routes(None),
        *sync_routes(None),
        *reconcile_routes(None),
        *discrepancy_routes(None),
    ]
    assert undocumented(routes) == set()


def test_a_document_lists_only_the_routes_its_app_serves(ledger: Any) -> None:
    with TestClient(create_app(Api(ledger))) as client:
        paths = client.get(OPENAPI_PATH).json()["paths"]
    assert "/api/v1/skus/{sku}" in paths
    assert "/api/v1/reservations" not in paths
    assert "/api/v1/dead-letters" not in paths


# Bad input the fuzzer found ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/skus?search=%00",
        "/api/v1/history?reference=a%00b",
        "/api/v1/skus/%00/history",
    ],
)
def test_a_nul_in_a_path_or_query_is_a_400_problem(ledger: Any, url: str) -> None:
    # PostgreSQL refuses NUL in text: these answered 500.
    with TestClient(create_app(Api(ledger)), raise_server_exceptions=False) as client:
        answer = client.get(url)
    assert "NUL" in assert_problem(answer, 400)["detail"]


def test_an_audit_cursor_hiding_a_nul_is_a_400_problem(ledger: Any) -> None:
    cursor = base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|\x00").decode()
    with TestClient(create_app(Api(ledger)), raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/history", params={"cursor": cursor})
    assert "cursor" in assert_problem(answer, 400)["detail"]


def test_no_such_route_and_a_wrong_method_are_problem_documents(ledger: Any) -> None:
    with TestClient(create_app(Api(ledger))) as client:
        missing = client.get("/api/v1/skus/a/b/c")
        unknown = client.get("/api/v1/skus/a%2Fb")  # the SKU "a/b", percent-encoded
        wrong = client.delete("/api/v1/skus")
    assert assert_problem(missing, 404)["detail"] == "GET /api/v1/skus/a/b/c: not found"
    assert assert_problem(unknown, 404)["title"] == "Unknown SKU"
    assert "'a/b'" in unknown.json()["detail"] or "a/b" in unknown.json()["detail"]
    assert assert_problem(wrong, 405)["title"] == "Method Not Allowed"
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_routes_with_a_body_document_408_and_413_and_every_route_503(ledger: Any) -> None:
    # Found: the body limits answer 413 and 408 problems, which the document never listed.
    with TestClient(create_app(Api(ledger))) as client:
        raw = client.get(OPENAPI_PATH).json()
    operations = [op for item in raw["paths"].values() for op in item.values()]
    assert operations
    problem = {"$ref": "#/components/schemas/Problem"}
    for operation in operations:
        responses = operation["responses"]
        assert "503" in responses, operation["operationId"]
        if "requestBody" in operation:
            for status in ("408", "413"):
                schema = responses[status]["content"]["application/problem+json"]["schema"]
                assert schema == problem, (operation["operationId"], status)
    post = raw["paths"]["/api/v1/stock-changes"]["post"]["responses"]
    assert "INVSYNC_MAX_API_BODY_BYTES" in post["413"]["description"]
    sku = raw["paths"]["/api/v1/skus/{sku}"]["get"]
    assert "%2F" in sku["parameters"][0]["description"]


def test_a_declared_413_is_the_problem_the_document_lists(ledger: Any) -> None:
    limits = HttpLimits(max_api_body_bytes=100)
    with TestClient(create_app(Api(ledger, limits=limits))) as client:
        raw = client.get(OPENAPI_PATH).json()
        answer = client.post("/api/v1/stock-changes", content=b"[" + b" " * 200 + b"]")
    assert "413" in raw["paths"]["/api/v1/stock-changes"]["post"]["responses"]
    assert assert_problem(answer, 413)["title"] == "Payload too large"


def test_metrics_is_documented_public_or_with_the_scope_it_needs(ledger: Any) -> None:
    digest = hashlib.sha256(b"metrics-reader").hexdigest()
    token = ApiToken(name="reader", sha256=digest, scopes=("read",))
    with TestClient(create_app(Api(ledger))) as client:
        public = client.get(OPENAPI_PATH).json()["paths"]["/metrics"]["get"]
    assert public["security"] == []
    assert not {"401", "403"} & set(public["responses"])
    assert "INVSYNC_METRICS_SCOPE" in public["summary"]
    scoped = create_app(Api(ledger, tokens=[token], limits=HttpLimits(metrics_scope="admin")))
    with TestClient(scoped) as client:
        guarded = client.get(OPENAPI_PATH).json()["paths"]["/metrics"]["get"]
        unauthorized = client.get("/metrics")
        forbidden = client.get("/metrics", headers={"Authorization": "Bearer metrics-reader"})
    assert guarded["security"] == [{"bearer": ["admin"]}]
    assert {"401", "403"} <= set(guarded["responses"])
    assert_problem(unauthorized, 401)
    assert_problem(forbidden, 403)
