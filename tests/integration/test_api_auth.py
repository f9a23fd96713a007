"""Bearer tokens with scopes on the internal API."""

import hashlib

import pytest
from starlette.testclient import TestClient

from infrastructure.config import ApiToken
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.helpers import random_sku


def token(name: str, value: str, *scopes: str) -> ApiToken:
    return ApiToken(name=name, sha256=hashlib.sha256(value.encode()).hexdigest(), scopes=scopes)


@pytest.fixture(scope="module")
def client(ledger):
    tokens = [
        token("reader", "r-secret", "read"),
        token("writer", "w-secret", "read", "write"),
        token("ops", "a-secret", "admin"),
    ]
    with TestClient(create_app(Api(ledger, tokens=tokens))) as test_client:
        yield test_client


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def receipt() -> dict:
    return {"kind": "receipt", "sku": random_sku(), "quantity": 1, "business_key": random_sku()}


def test_without_a_valid_token_the_api_answers_401(client):
    for headers in ({}, bearer("wrong"), {"Authorization": "Basic abc"}):
        answer = client.get("/api/v1/oversells", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.headers["content-type"] == "application/problem+json"


def test_scopes_decide_what_a_token_may_do(client):
    assert client.get("/api/v1/oversells", headers=bearer("r-secret")).status_code == 200
    refused = client.post("/api/v1/stock-changes", json=receipt(), headers=bearer("r-secret"))
    assert refused.status_code == 403
    assert "'write'" in refused.json()["detail"]
    assert (
        client.post("/api/v1/stock-changes", json=receipt(), headers=bearer("w-secret")).status_code
        == 201
    )
    assert (
        client.post("/api/v1/stock-changes", json=receipt(), headers=bearer("a-secret")).status_code
        == 201
    )  # admin may do all


def test_probes_and_metrics_need_no_token(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_operating_the_intake_needs_the_admin_scope(client):
    assert client.get("/api/v1/dead-letters", headers=bearer("w-secret")).status_code == 403
