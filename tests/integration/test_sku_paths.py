"""SKUs whose names hold a "/" ("TEE/RED/L"): created through the API, read back through every
SKU route with the slash percent-encoded, over the test client and over real HTTP (uvicorn)."""

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from domain.allocation import ChannelRule
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.helpers import assert_problem


def slashed() -> str:
    return f"TEE/{uuid.uuid4().hex[:8]}/L"


def receive(client, sku: str, quantity: int = 5) -> httpx.Response:
    return client.post(
        "/api/v1/stock-changes",
        json={
            "kind": "receipt",
            "sku": sku,
            "quantity": quantity,
            "business_key": str(uuid.uuid4()),
        },
    )


@pytest.fixture(scope="module")
def channel_id() -> str:
    return f"shop-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def client(ledger, channel_id) -> Iterator[TestClient]:
    app = create_app(Api(ledger, rules=[ChannelRule(channel_id, share_percent=50)]))
    with TestClient(app) as test_client:
        yield test_client


def test_a_sku_with_slashes_is_created_and_read_back_percent_encoded(client, channel_id):
    sku = slashed()
    assert receive(client, sku).status_code == 201
    path = f"/api/v1/skus/{quote(sku, safe='')}"
    item = client.get(path)
    assert item.status_code == 200
    assert item.json()["sku"] == sku
    assert item.json()["totals"]["on_hand"] == 5
    history = client.get(f"{path}/history")
    assert history.status_code == 200
    assert history.json()["sku"] == sku
    assert [e["kind"] for e in history.json()["events"]] == ["receipt"]
    at = client.get(f"{path}/at", params={"time": datetime.now(UTC).isoformat()})
    assert at.status_code == 200
    assert at.json()["sku"] == sku
    assert sku in client.get("/api/v1/skus", params={"search": sku}).json()["skus"]


def test_a_sku_rule_override_for_a_slashed_sku(client, channel_id):
    sku = slashed()
    assert receive(client, sku, 100).status_code == 201
    path = f"/api/v1/channels/{channel_id}/rules/skus/{quote(sku, safe='')}"
    put = client.put(f"{path}?reason=launch", json={"share_percent": 20})
    assert put.status_code == 200, put.text
    assert put.json()["sku"] == sku
    assert client.get(path).json()["override"] == {"share_percent": 20}
    item = client.get(f"/api/v1/skus/{quote(sku, safe='')}").json()
    assert item["channels"][channel_id]["available_to_sell"] == 20
    assert client.delete(f"{path}?reason=done").json()["override"] == {}


def test_a_sku_named_like_a_sub_resource_is_unambiguous(client):
    base = f"x{uuid.uuid4().hex[:8]}"
    assert receive(client, base, 1).status_code == 201
    assert receive(client, f"{base}/history", 2).status_code == 201
    literal = client.get(f"/api/v1/skus/{base}%2Fhistory")
    assert literal.json()["sku"] == f"{base}/history"
    assert literal.json()["totals"]["on_hand"] == 2
    sub = client.get(f"/api/v1/skus/{base}/history")
    assert sub.json()["sku"] == base
    assert "events" in sub.json()
    # Its own history, encoded, is the history of "x/history".
    assert client.get(f"/api/v1/skus/{base}%2Fhistory/history").json()["sku"] == f"{base}/history"


def test_an_unencoded_slash_is_a_missing_route_and_an_unknown_one_a_404(client):
    assert_problem(client.get("/api/v1/skus/TEE/RED/L"), 404)
    unknown = client.get(f"/api/v1/skus/{uuid.uuid4().hex}%2Fnone")
    assert assert_problem(unknown, 404)["title"] == "Unknown SKU"


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_are_still_refused_at_creation(client, name):
    refused = receive(client, name)
    assert "cannot be" in str(assert_problem(refused, 422))


def test_percent_and_unicode_survive_encoding(client):
    sku = f"50%/off/é/{uuid.uuid4().hex[:6]}%2F"
    assert receive(client, sku).status_code == 201
    assert client.get(f"/api/v1/skus/{quote(sku, safe='')}").json()["sku"] == sku


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
        lambda s: s not in (".", "..") and s.strip() == s
    )
)
def test_any_sku_the_api_accepts_reads_back(client, name):
    sku = f"{uuid.uuid4().hex[:6]}{name}"
    created = receive(client, sku)
    assert created.status_code == 201, created.text
    read = client.get(f"/api/v1/skus/{quote(sku, safe='')}")
    assert read.status_code == 200
    assert read.json()["sku"] == sku


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_over_real_http_the_raw_path_keeps_the_slash(ledger):
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(Api(ledger)), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            sku = slashed()
            assert receive(http, sku).status_code == 201
            read = http.get(f"/api/v1/skus/{quote(sku, safe='')}/history")
            assert read.status_code == 200
            assert read.json()["sku"] == sku
            assert http.get(f"/api/v1/skus/{quote(sku, safe='')}").json()["sku"] == sku
    finally:
        server.should_exit = True
        thread.join(10)
