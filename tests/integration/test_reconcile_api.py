"""`POST|GET /api/v1/channels/{id}/reconcile`: start a run, answer 202, follow its progress."""

from __future__ import annotations

import hashlib

import pytest
from starlette.testclient import TestClient

from infrastructure.config import ApiToken
from interfaces.http.api import Api
from interfaces.http.app import create_app
from interfaces.http.schemas import ReconcileRun, ReconcileRuns
from tests.helpers import assert_problem
from tests.integration.reconcile_fixtures import (
    CountingSteps,
    reconciled_channel,
    reconciliation,
    working,
)
from tests.integration.test_reconcile_actors import finished

SHOP = reconciled_channel()
OFF = reconciled_channel(enabled=False)
ADMIN = {"Authorization": "Bearer ops-secret"}


@pytest.fixture(scope="module")
def served(ledger, database_url, redis_url):
    ops = ApiToken(name="ops", sha256=hashlib.sha256(b"ops-secret").hexdigest(), scopes=("admin",))
    steps = CountingSteps()
    with reconciliation(database_url, redis_url, [SHOP, OFF]) as runs, working(runs, steps):
        app = create_app(Api(ledger, tokens=[ops], reconciliation=runs))
        with TestClient(app) as client:
            yield client, runs


def test_a_run_started_by_an_operator_is_accepted_then_followed_to_its_counts(served):
    client, runs = served
    answer = client.post(
        f"/api/v1/channels/{SHOP.id}/reconcile", json={"skus": ["b", "a"]}, headers=ADMIN
    )

    assert answer.status_code == 202, answer.text
    started = ReconcileRun.model_validate(answer.json())
    assert answer.headers["location"] == f"/api/v1/channels/{SHOP.id}/reconcile"
    assert (started.what, started.skus, started.requested_by) == ("both", ["a", "b"], "ops")
    finished(runs, started.id)
    listed = ReconcileRuns.model_validate(
        client.get(answer.headers["location"], headers=ADMIN).json()
    )
    run = next(run for run in listed.runs if run.id == started.id)
    assert (run.state, run.progress.step, run.progress.steps) == ("done", 2, 2)
    assert (run.counts.orders_found, run.counts.skus_read, run.counts.corrected) == (2, 2, 1)


def test_an_empty_body_starts_a_run_of_orders_and_every_sku(served):
    client, _ = served
    answer = client.post(f"/api/v1/channels/{SHOP.id}/reconcile", headers=ADMIN)

    assert answer.status_code == 202, answer.text
    assert (answer.json()["what"], answer.json()["skus"]) == ("both", None)


def test_a_channel_not_reconciled_is_a_404_problem(served):
    client, _ = served
    for channel_id in (OFF.id, "nobody"):
        assert_problem(client.post(f"/api/v1/channels/{channel_id}/reconcile", headers=ADMIN), 404)
        assert_problem(client.get(f"/api/v1/channels/{channel_id}/reconcile", headers=ADMIN), 404)


@pytest.mark.parametrize(
    "body",
    [{"skus": []}, {"what": "everything"}, {"skus": ["a"], "extra": 1}, {"skus": [""]}],
)
def test_a_body_it_cannot_read_is_a_422_problem_naming_the_field(served, body):
    client, _ = served
    answer = client.post(f"/api/v1/channels/{SHOP.id}/reconcile", json=body, headers=ADMIN)

    assert_problem(answer, 422)
