"""The webhook edge under hostile input: one absurd delivery never fails the others it shares a
commit with, and a header's size never decides whether a delivery can be stored."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infrastructure.inbox import IncomingDelivery
from infrastructure.intake_writer import GroupCommitWriter, InboxUnavailable, RowRefused
from tests.channels import shopify_headers, shopify_order
from tests.integration.intake_fixtures import SHOPIFY_SECRET, running_intake


def _delivery(key: str, topic: str = "orders/create") -> IncomingDelivery:
    return IncomingDelivery("shopify-us", key, topic, "intake.decrements", {}, b"{}")


def _stored_keys(database_url: str, keys: list[str]) -> set[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT delivery_key FROM inbox_deliveries WHERE delivery_key = ANY(%s)", [keys]
        ).fetchall()
    return {key for (key,) in rows}


def test_a_row_the_database_refuses_fails_alone_and_its_commit_partners_are_stored(
    database_url,
):
    # Random hex does not compress: 6,000 characters pass PostgreSQL's index-entry limit.
    bad = _delivery(secrets.token_hex(3000))
    good = [_delivery(f"good-{uuid.uuid4()}") for _ in range(40)]

    async def store_all():
        writer = GroupCommitWriter(database_url)
        await writer.start()
        try:
            return await asyncio.gather(
                *(writer.store(d) for d in [*good[:20], bad, *good[20:]]), return_exceptions=True
            )
        finally:
            await writer.stop()

    outcomes = asyncio.run(store_all())
    refused = outcomes.pop(20)
    assert isinstance(refused, RowRefused)
    assert all(not isinstance(outcome, BaseException) for outcome in outcomes), outcomes
    assert all(outcome.id is not None for outcome in outcomes)
    assert _stored_keys(database_url, [d.delivery_key for d in good]) == {
        d.delivery_key for d in good
    }


def _post(url: str, order_id: int, webhook_id: str) -> httpx.Response:
    body = shopify_order(order_id, [(1, "SKU-EDGE", 1)])
    headers = shopify_headers(SHOPIFY_SECRET, body, "orders/create", webhook_id)
    return httpx.post(f"{url}/webhooks/shopify-us", content=body, headers=headers, timeout=30)


def test_a_6000_character_webhook_id_among_40_good_webhooks_fails_none_and_is_stored_hashed(
    ledger, database_url, redis_url
):
    huge_id = secrets.token_hex(3000)
    ids = [f"edge-{uuid.uuid4()}" for _ in range(40)]
    with running_intake(ledger, database_url, redis_url, workers=False) as running:
        with ThreadPoolExecutor(41) as pool:
            answers = list(
                pool.map(
                    lambda pair: _post(running.url, *pair),
                    [(n, webhook_id) for n, webhook_id in enumerate([*ids, huge_id])],
                )
            )
        replay = _post(running.url, 40, huge_id)
    assert [a.status_code for a in answers] == [200] * 41, [a.text for a in answers]
    assert _stored_keys(database_url, ids) == set(ids)
    stored_as = answers[-1].json()["delivery_key"]
    assert stored_as.startswith("sha256:")
    assert len(stored_as) < 100
    assert replay.status_code == 200
    assert replay.json() == {
        "status": "duplicate",
        "delivery_key": stored_as,
    }


@pytest.mark.parametrize(
    "topic", ["orders/create" + "x" * 5000, "orders/\x00create", "orders/\ud800create"]
)
def test_an_absurd_topic_is_stored_bounded_and_clean(database_url, topic):
    from interfaces.http.webhooks import storable

    delivery = storable(_delivery(f"topic-{uuid.uuid4()}", topic))

    async def store():
        writer = GroupCommitWriter(database_url)
        await writer.start()
        try:
            return await writer.store(delivery)
        finally:
            await writer.stop()

    stored = asyncio.run(store())
    assert stored.id is not None
    assert len(delivery.topic) <= 255
    assert "\x00" not in delivery.topic


def test_a_row_the_inbox_refuses_is_answered_422_and_its_partners_200(
    ledger, scratch_database, redis_url
):
    # A real refusal by PostgreSQL: this inbox takes no body over 2,000 bytes.
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE inbox_deliveries ADD CONSTRAINT small_bodies "
            "CHECK (octet_length(body) < 2000)"
        )
    ids = [f"partner-{uuid.uuid4()}" for _ in range(10)]
    big = shopify_order(99, [(n, f"SKU-{n}-{'x' * 40}", 1) for n in range(60)])
    big_headers = shopify_headers(SHOPIFY_SECRET, big, "orders/create", f"big-{uuid.uuid4()}")
    with running_intake(ledger, scratch_database, redis_url, workers=False) as running:
        with ThreadPoolExecutor(11) as pool:
            refused = pool.submit(
                httpx.post, f"{running.url}/webhooks/shopify-us", content=big, headers=big_headers
            )
            partners = list(pool.map(lambda pair: _post(running.url, *pair), enumerate(ids)))
        answer = refused.result()
    assert answer.status_code == 422, answer.text
    assert "small_bodies" in answer.json()["detail"]
    assert [p.status_code for p in partners] == [200] * 10
    assert _stored_keys(scratch_database, ids) == set(ids)


class _Silent:
    """A TCP server that accepts connections and never answers: a frozen database, as a client
    sees one."""

    def __enter__(self) -> str:
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        return f"postgresql://postgres@127.0.0.1:{self.listener.getsockname()[1]}/x"

    def __exit__(self, *exc: object) -> None:
        self.listener.close()


def test_beyond_the_waiting_list_a_delivery_is_refused_at_once_and_the_rest_in_time():
    import time

    async def store_all(url: str):
        writer = GroupCommitWriter(url, max_waiting=5)
        await writer.start()
        try:

            async def timed(delivery):
                started = time.monotonic()
                try:
                    await writer.store(delivery)
                except InboxUnavailable as error:
                    return str(error), time.monotonic() - started
                return "stored", time.monotonic() - started

            return await asyncio.gather(*(timed(_delivery(f"w-{n}")) for n in range(12)))
        finally:
            await writer.stop()

    with _Silent() as url:
        outcomes = asyncio.run(store_all(url))
    at_once = [took for reason, took in outcomes if "wait for the inbox already" in reason]
    in_time = [took for reason, took in outcomes if "did not commit within" in reason]
    assert len(at_once) == 7
    assert max(at_once) < 0.1
    assert len(in_time) == 5
    assert max(in_time) < 3


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(arrivals=st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=30))
def test_in_any_order_with_repeats_each_good_key_is_stored_once_and_bad_rows_fail_alone(
    database_url, arrivals
):
    run = uuid.uuid4().hex[:8]
    bad_key = {n: secrets.token_hex(3000) for n in range(6)}  # each too large to index
    deliveries = [_delivery(bad_key[n] if bad else f"prop-{run}-{n}") for n, bad in arrivals]

    async def store_all():
        writer = GroupCommitWriter(database_url)
        await writer.start()
        try:
            return await asyncio.gather(
                *(writer.store(d) for d in deliveries), return_exceptions=True
            )
        finally:
            await writer.stop()

    outcomes = asyncio.run(store_all())
    firsts: dict[str, int] = {}
    for (_, bad), outcome in zip(arrivals, outcomes, strict=True):
        if bad:
            assert isinstance(outcome, RowRefused)
            continue
        assert not isinstance(outcome, BaseException), outcome
        if outcome.id is not None:
            assert outcome.delivery.delivery_key not in firsts  # stored once
            firsts[outcome.delivery.delivery_key] = outcome.id
    good = {f"prop-{run}-{n}" for n, bad in arrivals if not bad}
    assert set(firsts) == good
    assert _stored_keys(database_url, sorted(good)) == good


@pytest.mark.parametrize(
    ("default", "committed_with"),
    [("off", "on"), ("local", "local"), ("remote_apply", "remote_apply"), ("on", "on")],
)
def test_the_inbox_commits_durably_whatever_the_database_s_default(
    scratch_database, default, committed_with
):
    from infrastructure.intake_writer import connect

    with psycopg.connect(scratch_database, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {default}')
    with psycopg.connect(scratch_database) as conn:  # what any other session gets
        assert conn.execute("SHOW synchronous_commit").fetchone() == (default,)

    async def inbox_setting() -> str:
        conn = await connect(scratch_database, 2.0)
        try:
            cursor = await conn.execute("SHOW synchronous_commit")
            row = await cursor.fetchone()
            assert row is not None
            return str(row[0])
        finally:
            await conn.close()

    assert asyncio.run(inbox_setting()) == committed_with
