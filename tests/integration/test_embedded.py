"""The zero-configuration default: embedded servers that keep their data across restarts."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from application.ledger import OutcomeStatus
from domain.stock import ChangeKind
from infrastructure.embedded import EmbeddedPostgres, EmbeddedRedis
from interfaces.composition import migrate, open_ledger
from tests.helpers import change


def test_embedded_postgres_keeps_the_ledger_across_a_restart(tmp_path):
    server = EmbeddedPostgres(tmp_path)
    url = server.start()
    try:
        migrate(url)
        ledger = open_ledger(url)
        ledger.record(change(ChangeKind.RECEIPT, "kept", 12, business_key="po:1"))
        ledger.close()
    finally:
        server.stop()
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()

    url = server.start()
    try:
        ledger = open_ledger(url)
        assert ledger.get_item("kept").totals.on_hand == 12
        again = ledger.record(change(ChangeKind.RECEIPT, "kept", 12, business_key="po:1"))
        assert again.status is OutcomeStatus.DUPLICATE
        ledger.close()
    finally:
        server.stop()


def test_embedded_redis_keeps_its_data_across_a_restart(tmp_path):
    server = EmbeddedRedis(tmp_path)
    client = redis.Redis.from_url(server.start())
    client.rpush("queue", "message")
    client.close()
    server.stop()

    client = redis.Redis.from_url(server.start())
    try:
        assert client.lrange("queue", 0, -1) == [b"message"]
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    finally:
        client.close()
        server.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_invsync_run_with_no_configuration_serves_the_demo(tmp_path):
    """A newcomer's `make run`: embedded servers, the sandbox stores, their shoppers' orders in
    the ledger, and every store's quantity following."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVSYNC_")}
    env |= {"INVSYNC_DATA_DIR": str(tmp_path / "data"), "INVSYNC_HTTP_PORT": str(port)}
    invsync = Path(sys.executable).with_name("invsync")
    process = subprocess.Popen(
        [str(invsync), "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        answer = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert answer is not None, "invsync run never answered"
        assert answer.status_code == 200
        assert answer.json()["checks"] == {"database": "ok", "redis": "ok"}
        missing = httpx.get(f"http://127.0.0.1:{port}/api/v1/skus/nothing", timeout=5)
        assert missing.status_code == 404
        api = f"http://127.0.0.1:{port}/api/v1"
        sold, followed = set(), set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (sold and len(followed) == 3):
            time.sleep(1)
            sales = httpx.get(f"{api}/history?kind=sale", timeout=5).json()["changes"]
            sold = {sale["source"] for sale in sales}
            for channel in ("shopify-demo", "woo-demo", "amazon-demo"):
                sync = httpx.get(f"{api}/channels/{channel}/sync", timeout=5).json()
                assert "consistency_window_seconds" in sync, sync
                if "sale" in sync["consistency_window_seconds"]:
                    followed.add(channel)
        assert sold <= {"shopify-demo", "woo-demo", "amazon-demo"}
        assert sold, "no shopper's order reached the ledger"
        assert followed == {"shopify-demo", "woo-demo", "amazon-demo"}, "a store did not follow"
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    # The embedded servers stopped with the service.
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists(), output
