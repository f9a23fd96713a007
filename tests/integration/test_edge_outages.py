"""Webhooks while the inbox's PostgreSQL is stopped or frozen: every webhook is answered within
Shopify's 5 s (503 while the database cannot store it), and stored again from the first request
after the database is back. The PostgreSQL is the test's own (never the machine's shared one),
stopped and started, or frozen with SIGSTOP by the PIDs this test started."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from infrastructure.embedded import EmbeddedPostgres
from tests.channels import shopify_headers, shopify_order
from tests.helpers import migrated_database
from tests.integration.intake_fixtures import SHOPIFY_SECRET, running_intake

SHOPIFY_LIMIT = 5.0


@pytest.fixture
def own_postgres() -> Iterator[tuple[EmbeddedPostgres, str]]:
    # Not under pytest's tmp_path: a concurrent pytest run prunes older base folders, and with
    # them a running server's data.
    folder = Path(tempfile.mkdtemp(prefix="invsync-outage-"))
    server = EmbeddedPostgres(folder)
    server_url = server.start()
    try:
        with migrated_database(server_url, "invsync_outage") as url:
            yield server, url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _post(url: str) -> tuple[int, float]:
    order_id = int(uuid.uuid4().int % 10**12)
    body = shopify_order(order_id, [(1, "SKU-OUTAGE", 1)])
    headers = shopify_headers(SHOPIFY_SECRET, body, "orders/create", f"outage-{uuid.uuid4()}")
    started = time.monotonic()
    answer = httpx.post(f"{url}/webhooks/shopify-us", content=body, headers=headers, timeout=30)
    return answer.status_code, time.monotonic() - started


def _server_processes(server: EmbeddedPostgres) -> list[psutil.Process]:
    assert server.postmaster_pid is not None
    postmaster = psutil.Process(server.postmaster_pid)
    return [postmaster, *postmaster.children(recursive=True)]


def test_webhooks_are_stored_again_at_once_when_postgresql_comes_back(
    own_postgres, ledger, redis_url
):
    server, url = own_postgres
    with running_intake(ledger, url, redis_url, workers=False) as running:
        assert _post(running.url)[0] == 200
        server.stop()
        down, until = [], time.monotonic() + 10
        while time.monotonic() < until:  # channels keep sending: a pool would back off longer
            down.append(_post(running.url))
            time.sleep(0.2)
        assert server.start()
        back_at = time.monotonic()
        first = _post(running.url)
        recovered = time.monotonic() - back_at
    print(
        f"\n{len(down)} webhooks during a 10 s outage, slowest answer "
        f"{max(took for _, took in down):.2f} s; first after the restart: {first[0]} "
        f"{recovered:.2f} s after it"
    )
    assert {status for status, _ in down} == {503}
    assert max(took for _, took in down) < SHOPIFY_LIMIT
    assert first[0] == 200
    assert recovered < 1.5


def test_a_frozen_postgresql_gets_every_webhook_answered_503_within_5_s_and_then_200(
    own_postgres, ledger, redis_url
):
    server, url = own_postgres
    with running_intake(ledger, url, redis_url, workers=False) as running:
        assert _post(running.url)[0] == 200
        frozen = _server_processes(server)
        for process in frozen:
            os.kill(process.pid, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(20) as pool:
                during = list(pool.map(lambda _: _post(running.url), range(60)))
        finally:
            for process in frozen:
                os.kill(process.pid, signal.SIGCONT)
        thawed_at = time.monotonic()
        after = _post(running.url)
        while after[0] != 200 and time.monotonic() - thawed_at < 10:
            after = _post(running.url)
        recovered = time.monotonic() - thawed_at
    times = sorted(took for _, took in during)
    slowest, median = times[-1], times[len(times) // 2]
    print(
        f"\nfrozen: answers p50 {median:.2f} s, slowest {slowest:.2f} s; "
        f"stored again {recovered:.2f} s after thawing"
    )
    assert {status for status, _ in during} == {503}
    assert slowest < SHOPIFY_LIMIT
    assert after[0] == 200
    assert recovered < 3
