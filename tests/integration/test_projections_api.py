"""`/api/v1/projections`: positions, and rebuilds started and followed over HTTP."""

import hashlib
import threading
import time

import pytest
from starlette.testclient import TestClient

from application.ledger import Ledger
from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.config import ApiToken
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner, Rebuild
from infrastructure.projections.jobs import RebuildJobs
from interfaces.http.api import Api
from interfaces.http.app import create_app
from interfaces.http.projections import Projections
from tests.helpers import change, migrated_database, random_sku

RULES = (ChannelRule("shop", share_percent=50),)


@pytest.fixture(scope="module")
def database(server_url):
    with migrated_database(server_url, "invsync_projapi") as url:
        yield url


@pytest.fixture
def ledger(database):
    ledger = Ledger(env=eventsourcing_env(database))
    yield ledger
    ledger.close()


class HeldRebuild(Rebuild):
    """A real rebuild that starts only when the test lets it, to catch it running."""

    go = threading.Event()

    def run(self, progress=None):
        assert self.go.wait(timeout=30)
        return super().run(progress)


def client_for(ledger, database, jobs, tokens=()):
    runner = AvailabilityRunner(eventsourcing_env(database), RULES)
    app = create_app(Api(ledger, rules=RULES, projections=Projections(runner, jobs), tokens=tokens))
    return runner, TestClient(app)


def follow(client, headers=None):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.get("/api/v1/projections/availability/rebuild", headers=headers).json()
        if job["state"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError("the rebuild did not finish")


def test_a_rebuild_is_started_followed_and_reported_over_http(ledger, database):
    sku = random_sku()
    ledger.record(change(ChangeKind.RECEIPT, sku, 8))
    HeldRebuild.go.clear()
    runner, client = client_for(ledger, database, RebuildJobs(database, RULES, HeldRebuild))
    with runner, client:
        assert client.get("/api/v1/projections/availability/rebuild").status_code == 404
        started = client.post("/api/v1/projections/availability/rebuild")
        assert started.status_code == 202
        assert started.headers["location"] == "/api/v1/projections/availability/rebuild"
        again = client.post("/api/v1/projections/availability/rebuild")
        assert again.status_code == 409
        assert again.json()["title"] == "Rebuild running"
        HeldRebuild.go.set()
        job = follow(client)
        assert job["state"] == "done"
        assert job["report"]["events"] >= 2
        assert job["report"]["differences"] == []
        assert job["progress"]["position"] == job["progress"]["of"]
        assert runner.wait(ledger.recorder.max_notification_id(), timeout=10)
        where = client.get("/api/v1/projections").json()["projections"]["availability"]
        assert where["lag"] == 0
        assert where["position"] == ledger.recorder.max_notification_id()
        assert client.post("/api/v1/projections/nope/rebuild").status_code == 404
        assert client.get("/api/v1/projections/nope/rebuild").status_code == 404


def test_rebuilds_need_the_admin_scope(ledger, database):
    reader = ApiToken(name="r", sha256=hashlib.sha256(b"r").hexdigest(), scopes=("read",))
    admin = ApiToken(name="a", sha256=hashlib.sha256(b"a").hexdigest(), scopes=("admin",))
    runner, client = client_for(ledger, database, RebuildJobs(database, RULES), [reader, admin])
    with runner, client:
        path = "/api/v1/projections/availability/rebuild"
        assert client.post(path).status_code == 401
        assert client.post(path, headers={"Authorization": "Bearer r"}).status_code == 403
        answer = client.post(path, headers={"Authorization": "Bearer a"})
        assert answer.status_code == 202
        assert follow(client, {"Authorization": "Bearer a"})["state"] == "done"


def test_a_change_posted_with_wait_is_in_the_view_when_answered(ledger, database):
    sku = random_sku()
    runner, client = client_for(ledger, database, RebuildJobs(database, RULES))
    with runner, client:
        body = {"kind": "receipt", "sku": sku, "quantity": 12, "business_key": sku}
        answer = client.post("/api/v1/stock-changes?wait=true", json=body)
        assert answer.status_code == 201
        assert answer.headers["projections-caught-up"] == "true"
        assert runner.view.available_to_sell(sku) == {"shop": 6}  # no polling, no sleep
        plain = client.post("/api/v1/stock-changes", json={**body, "business_key": f"{sku}-2"})
        assert "projections-caught-up" not in plain.headers
        bad = client.post("/api/v1/stock-changes?wait=perhaps", json=body)
        assert bad.status_code == 400
