"""The zero-configuration default: embedded servers that keep their data across restarts."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from application.ledger_queries import LedgerQueries
from application.outcomes import OutcomeStatus
from domain.stock import ChangeKind
from infrastructure.embedded import EmbeddedPostgres, EmbeddedRedis
from interfaces.composition import migrate, open_ledger
from tests.helpers import change


@pytest.fixture
def tmp_path():
    """A folder of its own, outside pytest's: run as root, PostgreSQL runs as another user that
    must traverse the path, and every pytest session (other engineers' too) makes pytest's
    temporary root private again, under a running server."""
    folder = Path(tempfile.mkdtemp(prefix="invsync-embedded-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


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
        assert LedgerQueries(ledger).get_item("kept").totals.on_hand == 12
        again = ledger.record(change(ChangeKind.RECEIPT, "kept", 12, business_key="po:1"))
        assert again.status is OutcomeStatus.DUPLICATE
        ledger.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    "users",
    [pytest.param("[2147483646]", id="a-user-killed-outright"), pytest.param('[12, "', id="torn")],
)
def test_embedded_postgres_stops_though_its_list_of_users_names_one_gone(tmp_path, users):
    server = EmbeddedPostgres(tmp_path)
    server.start()
    server.stop()
    (tmp_path / "postgres" / ".handle_pids.json").write_text(users)
    server.start()
    server.stop()
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()


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


def test_stopping_an_embedded_redis_that_has_gone_already_is_quiet(tmp_path):
    server = EmbeddedRedis(tmp_path)
    client = redis.Redis.from_url(server.start())
    process = psutil.Process(int(client.info("server")["process_id"]))
    with contextlib.suppress(redis.ConnectionError):  # it closes the connection as it goes
        client.shutdown(save=True)
    client.close()
    process.wait(timeout=30)
    server.stop()


def test_an_embedded_redis_that_cannot_save_its_snapshot_still_stops(tmp_path):
    server = EmbeddedRedis(tmp_path)
    client = redis.Redis.from_url(server.start())
    process = psutil.Process(int(client.info("server")["process_id"]))
    client.rpush("queue", "message")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    client.config_set("dir", str(elsewhere))
    shutil.rmtree(elsewhere)  # where its snapshot goes: no longer there
    client.close()
    server.stop()
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    """`invsync run` in a process of its own, on the embedded default under `data_dir`."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = _free_port()
        self.data_dir = tmp_path / "data"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("INVSYNC_")}
        environ |= {"INVSYNC_DATA_DIR": str(self.data_dir), "INVSYNC_HTTP_PORT": str(self.port)}
        invsync = Path(sys.executable).with_name("invsync")
        self.process = subprocess.Popen(
            [str(invsync), "run"],
            env=environ | env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""

    def ready(self) -> httpx.Response:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
            except httpx.TransportError:
                time.sleep(0.3)
        self.stop(signal.SIGKILL)
        raise AssertionError(f"invsync run never answered:\n{self.output}")

    def servers(self) -> list[psutil.Process]:
        """The PostgreSQL and Redis servers it started: the postmaster named by the data
        folder's postmaster.pid, the Redis that answers on the data folder's socket."""
        postmaster = (self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0]
        client = redis.Redis(unix_socket_path=str(self.data_dir / "redis" / "redis.sock"))
        try:
            redis_pid = client.info("server")["process_id"]
        finally:
            client.close()
        return [psutil.Process(int(postmaster)), psutil.Process(int(redis_pid))]

    def stop(self, signum: int) -> int:
        """Send `signum`; the exit code once it has exited (within a minute)."""
        self.process.send_signal(signum)
        self.output, _ = self.process.communicate(timeout=60)
        return self.process.returncode


# The lines invsync and its HTTP server log as they stop.
_SHUTDOWN = re.compile(r"shut|stopped|finished server", re.IGNORECASE)


def _running(process: psutil.Process) -> bool:
    # An exited server stays a zombie where nothing reaps orphans (a container without init).
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_stopped_cleanly(service: Service, code: int, servers: list[psutil.Process]) -> None:
    assert code == 0, service.output
    running = [server for server in servers if _running(server)]
    assert not running, f"still running: {running}\n{service.output}"
    assert not (service.data_dir / "postgres" / "postmaster.pid").exists(), service.output
    # Its stderr is a pipe, not a terminal: every line it logs is JSON, uvicorn's as well.
    logged = [json.loads(line) for line in service.output.splitlines() if line.startswith("{")]
    lines = Counter(line["message"] for line in logged if _SHUTDOWN.search(line["message"]))
    assert "Shutting down" in lines, service.output
    assert any("embedded PostgreSQL stopped" in line for line in lines), service.output
    assert any("embedded Redis stopped" in line for line in lines), service.output
    # Each pool of worker threads is a Dramatiq worker of its own, which says it stops once.
    pools = sum(1 for line in logged if line["message"].startswith("worker pool started"))
    assert pools >= 2, service.output
    per_pool = {"Shutting down...", "Worker has been shut down."}
    assert all(lines[message] == pools for message in per_pool), lines
    assert all(count == 1 for message, count in lines.items() if message not in per_pool), lines


DEMO_CHANNELS = ("shopify-demo", "woo-demo", "amazon-demo", "walmart-demo", "ebay-demo")


def test_invsync_run_with_no_configuration_serves_the_demo(tmp_path):
    """A newcomer's `make run`: embedded servers, the five sandbox stores, each store's
    shoppers' orders in the ledger, and every store's quantity following; Ctrl-C stops it all,
    saying so once."""
    service = Service(tmp_path)
    try:
        answer = service.ready()
        assert answer.status_code == 200
        assert answer.json()["checks"] == {"database": "ok", "redis": "ok", "projection": "ok"}
        servers = service.servers()
        port = service.port
        missing = httpx.get(f"http://127.0.0.1:{port}/api/v1/skus/nothing", timeout=5)
        assert missing.status_code == 404
        api = f"http://127.0.0.1:{port}/api/v1"
        sold, followed = set(), set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (sold == followed == set(DEMO_CHANNELS)):
            time.sleep(1)
            sales = httpx.get(f"{api}/history?kind=sale", timeout=5).json()["changes"]
            sold = {sale["source"] for sale in sales}
            for channel in DEMO_CHANNELS:
                sync = httpx.get(f"{api}/channels/{channel}/sync", timeout=5).json()
                assert "consistency_window_seconds" in sync, sync
                if "sale" in sync["consistency_window_seconds"]:
                    followed.add(channel)
        # Every store's sale reached the ledger by its own route: Shopify's, WooCommerce's and
        # Walmart's webhooks, Amazon's SNS notifications, eBay's polled Fulfillment orders.
        assert sold == set(DEMO_CHANNELS), f"no sale in the ledger from {set(DEMO_CHANNELS) - sold}"
        assert followed == set(DEMO_CHANNELS), "a store did not follow"
        # Reconciliation's review is served by the real service too, not only by tests' apps.
        review = httpx.get(f"{api}/discrepancies?state=open", timeout=5)
        assert review.status_code == 200, review.text
        assert isinstance(review.json()["discrepancies"], list)
    finally:
        code = service.stop(signal.SIGINT)
    _assert_stopped_cleanly(service, code, servers)


def test_sigterm_stops_invsync_run_and_its_embedded_servers(tmp_path):
    service = Service(tmp_path, INVSYNC_DEMO="0")
    try:
        assert service.ready().status_code == 200
        servers = service.servers()
    finally:
        code = service.stop(signal.SIGTERM)
    _assert_stopped_cleanly(service, code, servers)


def test_servers_left_by_a_killed_run_are_stopped_by_the_next(tmp_path):
    """A run killed outright (SIGKILL, a crash) cannot stop its servers: the next run on the
    same data folder takes them over, and stops everything when it stops."""
    killed = Service(tmp_path, INVSYNC_DEMO="0")
    try:
        assert killed.ready().status_code == 200
        left = killed.servers()
    finally:
        killed.stop(signal.SIGKILL)
    assert all(_running(server) for server in left)

    service = Service(tmp_path, INVSYNC_DEMO="0")
    try:
        assert service.ready().status_code == 200
        servers = service.servers()
    finally:
        code = service.stop(signal.SIGINT)
    _assert_stopped_cleanly(service, code, left + servers)


def test_a_second_signal_while_stopping_does_not_leave_the_servers_running(tmp_path):
    """An impatient second Ctrl-C (or SIGTERM then Ctrl-C) does not cut the shutdown short."""
    service = Service(tmp_path, INVSYNC_DEMO="0")
    try:
        assert service.ready().status_code == 200
        servers = service.servers()
        service.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    finally:
        code = service.stop(signal.SIGINT)
    _assert_stopped_cleanly(service, code, servers)
