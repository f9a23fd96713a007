"""INVSYNC_HTTP_WORKERS: several `invsync run` processes serve one port (SO_REUSEPORT), each
with a group commit of its own, and every webhook is stored once whichever process took it."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import psycopg

from tests.channels import shopify_headers, shopify_order
from tests.integration.intake_fixtures import SHOPIFY_SECRET, free_port, wait_until

CONNECTIONS = 20  # spread over two sockets by the kernel: all on one, about 1 in 500,000


def test_two_processes_serve_one_port_store_each_webhook_once_and_stop_with_invsync_run(
    database_url, redis_url, tmp_path
):
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("invsync")), "run", "--no-workers"],
        env=_environment(database_url, redis_url, tmp_path, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parent = psutil.Process(process.pid)
    try:
        wait_until(lambda: len(_serving(parent, port, "LISTEN")) == 2, timeout=90, every=0.2)
        (child,) = parent.children()
        prefix = uuid.uuid4().hex[:12]
        keys = [f"{prefix}-{n}" for n in range(60)]
        deliveries = keys * 2  # each delivered twice, in any order, over any connection
        random.Random(15).shuffle(deliveries)
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(CONNECTIONS)]
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            answers = list(
                pool.map(
                    lambda n: _deliver(clients[n % CONNECTIONS], deliveries[n]),
                    range(len(deliveries)),
                )
            )
        serving = _serving(parent, port, "ESTABLISHED")
        for client in clients:
            client.close()
        process.kill()  # SIGKILL: nothing of invsync run's own stops what it started
        process.wait()
        wait_until(lambda: not child.is_running() or child.status() == "zombie", timeout=30)
    finally:
        for leftover in [*parent.children(), parent] if parent.is_running() else []:
            leftover.kill()
        process.wait()
    assert serving == {parent.pid, child.pid}
    assert {status for status, _ in answers} == {200}
    outcomes: dict[str, list[str]] = {}
    for (_, outcome), key in zip(answers, deliveries, strict=True):
        outcomes.setdefault(key, []).append(outcome)
    assert all(sorted(found) == ["duplicate", "stored"] for found in outcomes.values())
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT delivery_key) FROM inbox_deliveries "
            "WHERE delivery_key LIKE %s",
            [f"{prefix}-%"],
        ).fetchone()
    assert stored == (60, 60)


def _environment(database_url: str, redis_url: str, folder: Path, port: int) -> dict[str, str]:
    config = folder / "invsync.toml"
    config.write_text(
        f'[[channels]]\nid = "shop"\nkind = "shopify"\nwebhook_secrets = ["{SHOPIFY_SECRET}"]\n'
    )
    return {
        **os.environ,
        "INVSYNC_DATABASE_URL": database_url,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_HTTP_PORT": str(port),
        "INVSYNC_HTTP_WORKERS": "2",
        "INVSYNC_DEMO": "0",
        "INVSYNC_QUEUE_NAMESPACE": f"procs-{uuid.uuid4().hex[:8]}",
    }


def _serving(parent: psutil.Process, port: int, status: str) -> set[int]:
    """The processes of `parent`'s tree holding a socket of `port` in `status`."""
    found = set()
    for process in [parent, *parent.children()]:
        try:
            connections = process.net_connections("tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.laddr.port == port and c.status == status for c in connections):
            found.add(process.pid)
    return found


def _deliver(client: httpx.Client, key: str) -> tuple[int, str]:
    body = shopify_order(int(key.rsplit("-", 1)[1]), [(1, "HTTP-PROC", 1)])
    answer = client.post(
        "/webhooks/shop",
        content=body,
        headers=shopify_headers(SHOPIFY_SECRET, body, "orders/create", key),
        timeout=30,
    )
    return answer.status_code, answer.json().get("status", "")
