"""Intake under faults: PostgreSQL down, Redis restarted, a worker killed, poison messages."""

import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dramatiq
import httpx
import psycopg

from application.ledger_queries import LedgerQueries
from infrastructure.embedded import EmbeddedRedis
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.channels import internal_headers, receipt_document, shopify_headers, shopify_order
from tests.helpers import random_sku
from tests.integration.intake_fixtures import (
    ERP_SECRET,
    SHOPIFY_SECRET,
    running_intake,
    wait_until,
)

CLOSED_DATABASE = "postgresql://postgres@127.0.0.1:1/nothing"


CLIENT = httpx.Client(timeout=30)  # kept connections: the stream is not slowed by handshakes


def post_order(url: str, order_id: int, sku: str, quantity: int = 1) -> httpx.Response:
    body = shopify_order(order_id, [(1, sku, quantity)])
    headers = shopify_headers(SHOPIFY_SECRET, body, "orders/create", f"wh-{order_id}-{sku}")
    return CLIENT.post(f"{url}/webhooks/shopify-us", content=body, headers=headers)


def receive(url: str, sku: str, quantity: int) -> None:
    body = receipt_document(sku, quantity, f"po-{uuid.uuid4()}")
    headers = internal_headers(ERP_SECRET, body, str(uuid.uuid4()))
    assert httpx.post(f"{url}/webhooks/erp", content=body, headers=headers).status_code == 200


def committed(ledger, sku: str) -> int:
    return LedgerQueries(ledger).get_item(sku).totals.committed


def test_with_postgresql_unreachable_webhooks_get_503_and_nothing_is_acknowledged(
    ledger, database_url, redis_url
):
    from starlette.testclient import TestClient

    with running_intake(ledger, database_url, redis_url, workers=False) as running:
        broken = dataclasses.replace(running.intake, database_url=CLOSED_DATABASE)
        with TestClient(create_app(Api(ledger, intake=broken))) as client:
            body = shopify_order(77, [(1, "X", 1)])
            key = f"down-{uuid.uuid4()}"
            answer = client.post(
                "/webhooks/shopify-us",
                content=body,
                headers=shopify_headers(SHOPIFY_SECRET, body, "orders/create", key),
            )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM inbox_deliveries WHERE delivery_key = %s", [key]
        ).fetchone()[0]
    assert stored == 0


def test_redis_stopped_mid_stream_loses_nothing(ledger, queries, database_url, tmp_path):
    redis_server = EmbeddedRedis(tmp_path)
    redis_url = redis_server.start()
    sku = random_sku()
    try:
        with running_intake(ledger, database_url, redis_url) as running:
            receive(running.url, sku, 100)
            wait_until(lambda: queries.known_skus([sku]))
            first = random.randrange(10**9, 10**12)
            for n in range(10):
                assert post_order(running.url, first + n, sku).status_code == 200
            redis_server.stop()
            for n in range(10, 20):  # the inbox still takes them
                assert post_order(running.url, first + n, sku).status_code == 200
            redis_url_again = redis_server.start()
            assert redis_url_again == redis_url
            wait_until(lambda: committed(ledger, sku) == 20, timeout=60)
    finally:
        redis_server.stop()


def test_a_killed_worker_loses_and_doubles_nothing(
    ledger, queries, database_url, redis_url, tmp_path
):
    """5,000 sales streamed while the worker process is SIGKILLed and restarted."""
    namespace = f"kill-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "invsync.toml"
    config.write_text(
        '[[channels]]\nid = "shopify-us"\nkind = "shopify"\n'
        f'webhook_secrets = ["{SHOPIFY_SECRET}"]\n'
        f'[[channels]]\nid = "erp"\nkind = "internal"\nwebhook_secrets = ["{ERP_SECRET}"]\n'
    )
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": database_url,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_QUEUE_NAMESPACE": namespace,
    }
    invsync = str(Path(sys.executable).with_name("invsync"))

    def start_worker() -> subprocess.Popen:
        return subprocess.Popen(
            # Metrics on a free port: another `invsync worker` on the machine may hold the default.
            [invsync, "worker", "--threads", "4", "--metrics-port", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    sku, sales = random_sku(), 5_000
    first = random.randrange(10**9, 10**12)  # order ids no other test uses: keys stay unique
    worker = start_worker()
    try:
        with running_intake(
            ledger, database_url, redis_url, workers=False, namespace=namespace
        ) as running:
            receive(running.url, sku, sales)
            wait_until(lambda: queries.known_skus([sku]), timeout=30)
            with ThreadPoolExecutor(8) as pool:
                half = list(
                    pool.map(
                        lambda n: post_order(running.url, first + n, sku).status_code,
                        range(sales // 2),
                    )
                )
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                killed_at = time.monotonic()
                worker = start_worker()
                rest = list(
                    pool.map(
                        lambda n: post_order(running.url, first + n, sku).status_code,
                        range(sales // 2, sales),
                    )
                )
            assert set(half + rest) == {200}
            streamed_at = time.monotonic()
            try:
                wait_until(lambda: committed(ledger, sku) >= sales, timeout=120, every=0.2)
            except AssertionError as timeout:
                with psycopg.connect(database_url) as conn:
                    states = conn.execute(
                        "SELECT state, claimed_until > now(), count(*), max(reason) "
                        "FROM inbox_deliveries GROUP BY 1, 2"
                    ).fetchall()
                raise AssertionError(f"committed {committed(ledger, sku)}; {states}") from timeout
            done_at = time.monotonic()
            recovery = done_at - killed_at
            print(
                f"\nkill -> all 5,000 applied: {recovery:.1f} s "
                f"(last webhook -> all applied: {done_at - streamed_at:.1f} s)"
            )
            time.sleep(1)  # anything still in flight would now show as a double count
            item = queries.get_item(sku)
            assert item.totals.committed == sales
            assert item.totals.on_hand == sales
            assert recovery < 60
    finally:
        worker.kill()
        worker.wait()


def test_a_message_that_keeps_failing_is_kept_for_review_retried_and_discarded(
    ledger, database_url, redis_url
):
    with running_intake(ledger, database_url, redis_url, workers=False) as running:
        broker = running.intake.queues.broker
        calls = []

        @dramatiq.actor(broker=broker, queue_name="intake.increments", max_retries=0)
        def always_fails(marker: str) -> None:
            calls.append(marker)
            raise RuntimeError("the channel said no")

        running.intake.workers.start()
        try:
            marker = str(uuid.uuid4())
            always_fails.send(marker)

            def dead():
                rows = httpx.get(f"{running.url}/api/v1/dead-letters").json()["dead_letters"]
                return [r for r in rows if r["message"]["args"] == [marker]]

            wait_until(dead)
            letter = dead()[0]
            assert "the channel said no" in letter["error"]
            assert letter["actor_name"] == "always_fails"
            retried = httpx.post(f"{running.url}/api/v1/dead-letters/{letter['id']}/retry")
            assert retried.status_code == 202
            wait_until(lambda: len(calls) == 2)
            # It failed again: a new dead letter, the first one marked retried.
            wait_until(lambda: [r["id"] for r in dead()] not in ([], [letter["id"]]))
            retried_rows = httpx.get(f"{running.url}/api/v1/dead-letters?state=retried").json()
            assert letter["id"] in {r["id"] for r in retried_rows["dead_letters"]}
            again = httpx.post(f"{running.url}/api/v1/dead-letters/{letter['id']}/retry")
            assert again.status_code == 404  # already retried
            newest = dead()[0]
            gone = httpx.delete(f"{running.url}/api/v1/dead-letters/{newest['id']}")
            assert gone.status_code == 200
            assert newest["id"] not in {r["id"] for r in dead()}
            assert httpx.delete(f"{running.url}/api/v1/dead-letters/abc").status_code == 404
        finally:
            running.intake.workers.stop()


def test_a_sale_is_applied_without_waiting_for_the_increments_backlog(
    ledger, database_url, redis_url
):
    sku = random_sku()
    with running_intake(ledger, database_url, redis_url, workers=False) as running:
        receive(running.url, sku, 50)
        running.intake.processor.process([], "intake.increments")
        for _ in range(300):  # a backlog of receipts waits in the increments lane
            receive(running.url, random_sku("backlog"), 1)
        assert post_order(running.url, random.randrange(10**9, 10**12), sku, 2).status_code == 200
        applied = running.intake.processor.process([], "intake.decrements")
        # Only sales were taken (other tests may have left some), and ours was among them.
        assert {r.delivery.topic for r in applied} == {"orders/create"}
        assert committed(ledger, sku) == 2
        left = running.intake.processor.process([], "intake.increments", batch=1000)
        assert {r.delivery.channel_id for r in left} >= {"erp"}
        assert len(left) >= 300
