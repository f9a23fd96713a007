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

from infrastructure.intake_writer import GroupCommitWriter, IncomingDelivery, RowRefused
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
