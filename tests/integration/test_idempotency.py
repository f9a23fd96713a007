"""`Idempotency-Key` on `POST /api/v1/stock-changes` over real HTTP: claimed before the change
runs (a concurrent second use is a 409, another body a 422), bounded, the token's own, and
forgotten after its lifetime."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import psycopg.conninfo
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from starlette.testclient import TestClient

from domain.allocation import ChannelRule
from infrastructure.config import ApiToken
from infrastructure.idempotency import (
    MAX_KEY_LENGTH,
    ClaimState,
    IdempotencyStore,
    request_hash,
)
from interfaces.composition import migrate, open_ledger
from interfaces.http.api import Api
from interfaces.http.app import create_app
from sandboxes.server import SandboxServer
from tests.helpers import assert_problem, empty_database, random_sku

URL = "/api/v1/stock-changes"


def token(name: str) -> ApiToken:
    return ApiToken(name=name, sha256=hashlib.sha256(name.encode()).hexdigest(), scopes=("write",))


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


@contextmanager
def serving(
    ledger: Any, store: IdempotencyStore, tokens: tuple[ApiToken, ...] = ()
) -> Iterator[str]:
    app = create_app(Api(ledger, idempotency=store, tokens=tokens, rules=[ChannelRule("shop")]))
    with SandboxServer(app) as server:
        yield server.url


@pytest.fixture
def store(database_url: str) -> Iterator[IdempotencyStore]:
    kept = IdempotencyStore(database_url)
    yield kept
    kept.close()


def receipt(sku: str, quantity: int) -> dict[str, Any]:
    return {"kind": "receipt", "sku": sku, "quantity": quantity, "business_key": str(uuid.uuid4())}


@contextmanager
def ledger_writes_held(database_url: str) -> Iterator[None]:
    """Every ledger write waits (reads go on) until the block ends: a request stays in flight."""
    with psycopg.connect(database_url) as conn:
        conn.execute("LOCK TABLE ledger_receipts IN SHARE MODE")
        yield
        conn.rollback()


def wait_for_claim(database_url: str, key: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for _ in range(500):
            if conn.execute("SELECT 1 FROM api_idempotency WHERE key = %s", [key]).fetchone():
                return
            time.sleep(0.01)
    raise AssertionError(f"key {key} was never claimed")


def test_concurrent_first_uses_with_different_bodies_apply_one_change(ledger, queries, store):
    # Found: 5 concurrent first uses with 5 different bodies were all applied.
    sku, key = random_sku(), str(uuid.uuid4())
    start = threading.Barrier(5)

    def send(quantity: int) -> httpx.Response:
        start.wait()
        return httpx.post(
            f"{url}{URL}", json=receipt(sku, quantity), headers={"Idempotency-Key": key}
        )

    with serving(ledger, store) as url, ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(send, range(1, 6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 201, statuses
    assert set(statuses[1:]) <= {409, 422}, statuses
    applied = next(a for a in answers if a.status_code == 201)
    assert queries.get_item(sku).totals.on_hand == answers.index(applied) + 1


def test_a_second_use_while_the_first_runs_is_a_409_then_replays_its_answer(
    ledger, queries, store, database_url
):
    sku, key = random_sku(), str(uuid.uuid4())
    body = receipt(sku, 3)
    with serving(ledger, store) as url, ThreadPoolExecutor(1) as pool:
        with ledger_writes_held(database_url):
            first = pool.submit(
                httpx.post, f"{url}{URL}", json=body, headers={"Idempotency-Key": key}
            )
            wait_for_claim(database_url, key)
            second = httpx.post(f"{url}{URL}", json=body, headers={"Idempotency-Key": key})
            other = httpx.post(
                f"{url}{URL}", json=receipt(sku, 4), headers={"Idempotency-Key": key}
            )
        assert first.result().status_code == 201
        replay = httpx.post(f"{url}{URL}", json=body, headers={"Idempotency-Key": key})
    assert "still running" in assert_problem(second, 409)["detail"]
    assert second.headers["retry-after"] == "1"
    assert "another request body" in assert_problem(other, 422)["detail"]
    assert (replay.status_code, replay.json()) == (201, first.result().json())
    assert replay.headers["idempotent-replayed"] == "true"
    assert queries.get_item(sku).totals.on_hand == 3


@pytest.mark.parametrize(
    ("key", "complaint"),
    [
        pytest.param("k" * 6000, "6000 characters long; at most 255", id="6000-characters"),
        pytest.param("k" * (MAX_KEY_LENGTH + 1), "at most 255", id="one-too-many"),
        pytest.param("", "must not be empty", id="empty"),
        pytest.param("caf\u00e9".encode(), "printable ASCII", id="not-ascii"),
    ],
)
def test_an_unfit_key_is_a_400_and_records_nothing(ledger, store, key, complaint):
    # Found: a 6,000-character key applied the change, then answered 500 for ever.
    sku = random_sku()
    with TestClient(create_app(Api(ledger, idempotency=store))) as client:
        answer = client.post(URL, json=receipt(sku, 1), headers={"Idempotency-Key": key})
        assert complaint in assert_problem(answer, 400)["detail"]
        assert client.get(f"/api/v1/skus/{sku}").status_code == 404
        # The same change with a fitting key goes through: nothing was left half-done.
        fits = client.post(URL, json=receipt(sku, 1), headers={"Idempotency-Key": sku})
    assert fits.status_code == 201


def test_the_longest_key_allowed_is_remembered(ledger, queries, store):
    sku, key = random_sku(), uuid.uuid4().hex * 8  # 256 characters: one too many
    with TestClient(create_app(Api(ledger, idempotency=store))) as client:
        too_long = client.post(URL, json=receipt(sku, 1), headers={"Idempotency-Key": key})
        body = receipt(sku, 1)
        first = client.post(URL, json=body, headers={"Idempotency-Key": key[:MAX_KEY_LENGTH]})
        again = client.post(URL, json=body, headers={"Idempotency-Key": key[:MAX_KEY_LENGTH]})
    assert_problem(too_long, 400)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert queries.get_item(sku).totals.on_hand == 1


def test_keys_are_each_tokens_own(ledger, queries, store):
    # Found: two clients choosing the same key got each other's answers.
    sku, key = random_sku(), str(uuid.uuid4())
    with serving(ledger, store, (token("erp"), token("wms"))) as url:
        erp = httpx.post(
            f"{url}{URL}", json=receipt(sku, 2), headers={"Idempotency-Key": key, **bearer("erp")}
        )
        wms = httpx.post(
            f"{url}{URL}", json=receipt(sku, 5), headers={"Idempotency-Key": key, **bearer("wms")}
        )
    assert (erp.status_code, wms.status_code) == (201, 201)
    assert "idempotent-replayed" not in wms.headers
    assert queries.get_item(sku).totals.on_hand == 7


def test_two_tokens_of_the_same_name_keep_their_keys_apart(ledger, queries, store):
    sku, key = random_sku(), str(uuid.uuid4())
    old = ApiToken(name="erp", sha256=hashlib.sha256(b"old").hexdigest(), scopes=("write",))
    new = ApiToken(name="erp", sha256=hashlib.sha256(b"new").hexdigest(), scopes=("write",))
    with serving(ledger, store, (old, new)) as url:
        first = httpx.post(
            f"{url}{URL}", json=receipt(sku, 2), headers={"Idempotency-Key": key, **bearer("old")}
        )
        second = httpx.post(
            f"{url}{URL}", json=receipt(sku, 5), headers={"Idempotency-Key": key, **bearer("new")}
        )
    assert (first.status_code, second.status_code) == (201, 201)
    assert queries.get_item(sku).totals.on_hand == 7


def test_a_key_is_forgotten_after_its_lifetime_and_swept_on_a_later_write(
    ledger, queries, database_url
):
    brief = IdempotencyStore(database_url, lifetime=timedelta(seconds=1))
    sku, key = random_sku(), str(uuid.uuid4())
    try:
        with TestClient(create_app(Api(ledger, idempotency=brief))) as client:
            first = client.post(URL, json=receipt(sku, 1), headers={"Idempotency-Key": key})
            time.sleep(1.1)
            later = client.post(URL, json=receipt(sku, 2), headers={"Idempotency-Key": key})
            assert (first.status_code, later.status_code) == (201, 201)
            assert "idempotent-replayed" not in later.headers
            other = str(uuid.uuid4())
            client.post(URL, json=receipt(sku, 4), headers={"Idempotency-Key": other})
            time.sleep(1.1)
            # Any write sweeps what has expired, whoever's it was.
            client.post(URL, json=receipt(sku, 8), headers={"Idempotency-Key": str(uuid.uuid4())})
        with psycopg.connect(database_url) as conn:
            left = conn.execute(
                "SELECT count(*) FROM api_idempotency WHERE key = ANY(%s)", [[key, other]]
            ).fetchone()
        assert left == (0,)
        assert queries.get_item(sku).totals.on_hand == 15
    finally:
        brief.close()


def test_purge_deletes_every_expired_key(store, database_url):
    keys = [str(uuid.uuid4()) for _ in range(3)]
    for key in keys:
        assert store.claim("t", key, "h").state is ClaimState.CLAIMED
    assert store.purge_expired() == 0  # a day has not passed
    time.sleep(0.01)
    brief = IdempotencyStore(database_url, lifetime=timedelta(milliseconds=1))
    try:
        assert brief.purge_expired() >= 3
    finally:
        brief.close()
    for key in keys:  # gone: a fresh first use
        assert store.claim("t", key, "other").state is ClaimState.CLAIMED


def test_a_request_that_fails_lets_its_key_go_so_the_retry_runs(
    ledger, queries, store, database_url
):
    sku, key = random_sku(), str(uuid.uuid4())
    body = receipt(sku, 6)
    broken = open_ledger(database_url)
    broken.close()  # its connections are gone: recording fails
    with TestClient(create_app(Api(broken, idempotency=store)), raise_server_exceptions=False) as c:
        failed = c.post(URL, json=body, headers={"Idempotency-Key": key})
    assert failed.status_code >= 500
    with TestClient(create_app(Api(ledger, idempotency=store))) as client:
        retried = client.post(URL, json=body, headers={"Idempotency-Key": key})
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert queries.get_item(sku).totals.on_hand == 6


def test_a_claim_whose_process_died_is_taken_over_after_its_lease(ledger, database_url):
    short = IdempotencyStore(database_url, lease=timedelta(seconds=0.5))
    sku, key = random_sku(), str(uuid.uuid4())
    body = receipt(sku, 2)
    try:
        with TestClient(create_app(Api(ledger, idempotency=short))) as client:
            raw = client.build_request("POST", URL, json=body).read()
            # A request claimed the key, then its process was killed: no answer, no release.
            dead = short.claim("", key, request_hash("POST", URL, raw))
            assert dead.state is ClaimState.CLAIMED
            during = client.post(URL, content=raw, headers={"Idempotency-Key": key})
            time.sleep(0.6)
            after = client.post(URL, content=raw, headers={"Idempotency-Key": key})
            assert dead.token is not None
            short.complete("", key, dead.token, 500, {"late": True})  # too late: ignored
            replay = client.post(URL, content=raw, headers={"Idempotency-Key": key})
    finally:
        short.close()
    assert_problem(during, 409)
    assert after.status_code == 201
    assert (replay.status_code, replay.json()) == (201, after.json())


def test_without_the_database_a_keyed_request_is_a_503(ledger):
    unreachable = IdempotencyStore("postgresql://postgres@127.0.0.1:1/none", timeout=0.2)
    try:
        with TestClient(create_app(Api(ledger, idempotency=unreachable))) as client:
            answer = client.post(
                URL, json=receipt(random_sku(), 1), headers={"Idempotency-Key": "k"}
            )
    finally:
        unreachable.close()
    assert_problem(answer, 503)


# Any interleaving of uses of one key ---------------------------------------------------------


class OneKey(RuleBasedStateMachine):
    """Requests with one of two bodies claim, answer or fail on one key in any order: at most
    one claim is live, a replay is always the answer given, another body always a mismatch."""

    def __init__(self, store: IdempotencyStore) -> None:
        super().__init__()
        self.store = store
        self.key = str(uuid.uuid4())
        self.live: dict[str, uuid.UUID] = {}  # hash -> the token of the live claim
        self.answered: tuple[str, int] | None = None  # hash, status

    @rule(body=st.sampled_from(["a", "b"]))
    def use(self, body: str) -> None:
        claim = self.store.claim("prop", self.key, body)
        if self.answered is not None:
            answered_body, status = self.answered
            expected = ClaimState.REPLAY if body == answered_body else ClaimState.MISMATCH
            assert claim.state is expected
            if expected is ClaimState.REPLAY:
                assert claim.status == status
        elif self.live:
            [(held_body, _)] = self.live.items()
            expected = ClaimState.IN_FLIGHT if body == held_body else ClaimState.MISMATCH
            assert claim.state is expected
        else:
            assert claim.state is ClaimState.CLAIMED
            assert claim.token is not None
            self.live[body] = claim.token

    @precondition(lambda self: bool(self.live))
    @rule(status=st.sampled_from([200, 201, 422]))
    def answer(self, status: int) -> None:
        [(body, claim)] = self.live.items()
        self.store.complete("prop", self.key, claim, status, {"status": status})
        self.live.clear()
        self.answered = (body, status)

    @precondition(lambda self: bool(self.live))
    @rule()
    def fail(self) -> None:
        [(_, claim)] = self.live.items()
        self.store.abandon("prop", self.key, claim)
        self.live.clear()

    @invariant()
    def at_most_one_claim(self) -> None:
        assert len(self.live) <= 1


def test_any_interleaving_of_uses_of_one_key_keeps_one_answer(store):
    run_state_machine_as_test(
        lambda: OneKey(store),
        settings=settings(
            max_examples=40,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_a_table_of_the_earlier_version_is_migrated_keeping_its_keys(server_url):
    old = """CREATE TABLE api_idempotency (key text PRIMARY KEY, request_hash text NOT NULL,
        status integer NOT NULL, body jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())"""
    with empty_database(server_url, "invsync_idem") as url:
        with psycopg.connect(url) as conn:
            conn.execute(old)
            conn.execute("INSERT INTO api_idempotency VALUES ('k', 'h', 201, '{}')")
        migrate(url)
        migrate(url)  # safe to run again
        store = IdempotencyStore(url)
        try:
            assert store.claim("", "k", "h").state is ClaimState.REPLAY
            assert store.claim("erp", "k", "other").state is ClaimState.CLAIMED
        finally:
            store.close()
