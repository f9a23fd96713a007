"""`/metrics` of every process (`invsync run`, `invsync worker`, `invsync project`), scraped over
HTTP after real work through a Shopify sandbox: the gauges read from the database and Redis agree
in all three, the consistency windows and their breaches are counted where the pushes go.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from domain.stock import ChangeKind
from infrastructure.eventstore import LedgerRecorder
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections.runner import AvailabilityRunner
from infrastructure.state_metrics import StateMetrics
from sandboxes.server import SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from tests.channels import shopify_headers, shopify_order
from tests.deploy_files import alert_expressions, dashboard_expressions, invsync_metrics
from tests.helpers import change, migrated_database, random_sku
from tests.integration.intake_fixtures import SHOPIFY_SECRET, free_port, wait_until

CHANNEL = "shop"
# The sample names of each type of family (the parser names a counter without its _total).
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Processes:
    """The three processes on one database, the HTTP API's URL and each one's `/metrics`."""

    api: str
    metrics: dict[str, str]  # process -> its /metrics URL
    shop: ShopifySandbox
    database_url: str

    def scrape(self, process: str) -> Samples:
        return samples(httpx.get(self.metrics[process], timeout=10).text)

    def exported(self, process: str) -> set[str]:
        """The sample names the process's metrics have, or will have once counted (a labelled
        family is listed before its first sample)."""
        text = httpx.get(self.metrics[process], timeout=10).text
        return {
            family.name + suffix
            for family in text_string_to_metric_families(text)
            for suffix in SUFFIXES.get(family.type, ("",))
        }

    def value(self, process: str, name: str, **labels: str) -> float | None:
        return self.scrape(process).get((name, frozenset(labels.items())))

    def receive(self, sku: str, quantity: int) -> None:
        receipt = {"kind": "receipt", "sku": sku, "location": "main", "quantity": quantity}
        receipt["business_key"] = f"test:{uuid.uuid4()}"
        answer = httpx.post(f"{self.api}/api/v1/stock-changes", json=receipt)
        assert answer.status_code == 201, answer.text

    def webhook(self, body: bytes, topic: str = "orders/create") -> None:
        headers = shopify_headers(SHOPIFY_SECRET, body, topic, uuid.uuid4().hex)
        answer = httpx.post(f"{self.api}/webhooks/{CHANNEL}", content=body, headers=headers)
        assert answer.status_code == 200, answer.text


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def processes(server_url, redis_url, tmp_path) -> Iterator[Processes]:
    shop = ShopifySandbox(webhook_secret=SHOPIFY_SECRET)
    with (
        migrated_database(server_url, "invsync_metrics") as database_url,
        SandboxServer(shop.app) as served,
    ):
        config = tmp_path / "invsync.toml"
        config.write_text(
            f'[[channels]]\nid = "{CHANNEL}"\nkind = "shopify"\n'
            f'webhook_secrets = ["{SHOPIFY_SECRET}"]\napi_base_url = "{served.url}"\n'
            f'access_token = "{shop.access_token}"\nlocation_id = "{shop.location_id}"\n'
            # One failure opens the breaker, for long enough to be read.
            "[channels.push]\nfailures_to_open = 1\ncooldown_seconds = 120\n"
            "batch_window_seconds = 0\n"
        )
        http, worker, project = free_port(), free_port(), free_port()
        env = {
            **os.environ,
            "INVSYNC_DATABASE_URL": database_url,
            "INVSYNC_REDIS_URL": redis_url,
            "INVSYNC_CONFIG": str(config),
            "INVSYNC_HTTP_PORT": str(http),
            "INVSYNC_DEMO": "0",
            "INVSYNC_QUEUE_NAMESPACE": f"metrics-{uuid.uuid4().hex[:8]}",
            # Every real push is slower than a millisecond: each sale's window is a breach.
            "INVSYNC_CONSISTENCY_TARGETS": "sale=0.001,return=60",
            "INVSYNC_DB_POOL_MAX": "3",
        }
        invsync = str(Path(sys.executable).with_name("invsync"))
        commands = [
            [invsync, "run", "--no-workers"],
            [invsync, "worker", "--threads", "2", "--metrics-port", str(worker)],
            [invsync, "project", "--metrics-port", str(project)],
        ]
        started = [
            subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for c in commands
        ]
        found = Processes(
            f"http://127.0.0.1:{http}",
            {
                "run": f"http://127.0.0.1:{http}/metrics",
                "worker": f"http://127.0.0.1:{worker}/metrics",
                "project": f"http://127.0.0.1:{project}/metrics",
            },
            shop,
            database_url,
        )
        try:
            wait_until(lambda: all(_answers(url) for url in found.metrics.values()), 90, 0.2)
            yield found
        finally:
            for process in started:
                process.send_signal(signal.SIGINT)
            for process in started:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            shop.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_every_process_reports_the_same_state_and_the_worker_its_pushes(processes):
    sku = random_sku()
    processes.shop.set_stock(sku, 0)
    processes.receive(sku, 10)
    wait_until(lambda: processes.shop.stock(sku) == 10, 30)
    # Twelve sold of ten: an oversell, recorded; and a delivery it cannot read, parked.
    processes.webhook(shopify_order(7001, [(1, sku, 12)]))
    processes.webhook(b'{"id": "not an order"}')
    wait_until(lambda: processes.shop.stock(sku) == 0, 30)
    with psycopg.connect(processes.database_url) as conn:
        conn.execute(
            "INSERT INTO dead_letters (message_id, queue_name, actor_name, message, error) "
            "VALUES ('m-1', 'q', 'a', '{}', 'boom')"
        )
    everywhere = {
        ("invsync_state_up", ()): 1,
        ("invsync_oversells_total", ()): 1,
        ("invsync_deliveries", (("state", "parked"),)): 1,
        ("invsync_deliveries", (("state", "pending"),)): 0,
        ("invsync_deliveries_oldest_pending_seconds", ()): 0,
        ("invsync_dead_letters", (("state", "dead"),)): 1,
        ("invsync_dead_letters", (("state", "retried"),)): 0,
        ("invsync_outbox_pending", (("channel", CHANNEL),)): 0,
        ("invsync_outbox_oldest_seconds", (("channel", CHANNEL),)): 0,
        ("invsync_discrepancies_open", (("channel", CHANNEL),)): 0,
        ("invsync_channel_breaker_open", (("channel", CHANNEL),)): 0,
        ("invsync_projection_lag_seconds", (("projection", "availability"),)): 0,
        ("invsync_consistency_target_seconds", (("kind", "sale"),)): 0.001,
        ("invsync_consistency_target_seconds", (("kind", "return"),)): 60,
    }
    for process in ("run", "worker", "project"):
        wait_until(lambda p=process: _holds(processes.scrape(p), everywhere), 30)

    pushes = processes.scrape("worker")
    for kind in ("receipt", "sale"):
        labels = frozenset({"channel": CHANNEL, "kind": kind}.items())
        assert pushes[("invsync_consistency_window_seconds_count", labels)] >= 1
    breaches = ("invsync_consistency_breaches_total", frozenset({"channel": CHANNEL}.items()))
    assert pushes[(breaches[0], breaches[1] | {("kind", "sale")})] >= 1
    assert pushes[(breaches[0], breaches[1] | {("kind", "return")})] == 0  # none was pushed
    stored = {"channel": CHANNEL, "outcome": "stored"}
    assert processes.value("run", "invsync_webhooks_received_total", **stored) == 2
    # deploy/'s alerts and dashboard read only what these processes export.
    exported = set().union(*(processes.exported(p) for p in ("run", "worker", "project")))
    used = invsync_metrics(alert_expressions() + dashboard_expressions())
    assert used - exported == set()


def test_a_channel_down_shows_its_open_breaker_and_waiting_push_in_every_process(processes):
    sku = random_sku()
    processes.shop.set_stock(sku, 0)
    processes.shop.faults.outage = True
    processes.receive(sku, 4)
    stuck = {
        ("invsync_channel_breaker_open", (("channel", CHANNEL),)): 1,
        ("invsync_outbox_pending", (("channel", CHANNEL),)): 1,
    }
    for process in ("run", "worker", "project"):
        wait_until(lambda p=process: _holds(processes.scrape(p), stuck), 30)
        oldest = processes.value(process, "invsync_outbox_oldest_seconds", channel=CHANNEL)
        assert oldest is not None
        assert oldest > 0


def _holds(found: Samples, wanted: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> bool:
    return all(
        found.get((name, frozenset(labels))) == value for (name, labels), value in wanted.items()
    )


def test_the_projection_lag_is_the_age_of_the_oldest_event_not_folded(
    scratch_database, scratch_ledger
):
    recorder = scratch_ledger.recorder
    assert isinstance(recorder, LedgerRecorder)
    state = StateMetrics(scratch_database, recorder, [], dict, {})
    registry = CollectorRegistry()
    registry.register(state)
    lag = ("invsync_projection_lag_seconds", {"projection": "availability"})
    try:
        assert registry.get_sample_value(*lag) == 0  # nothing recorded yet
        recorded = datetime.now(UTC)
        scratch_ledger.record(change(ChangeKind.RECEIPT, random_sku(), 5))
        time.sleep(1.0)
        waited = (datetime.now(UTC) - recorded).total_seconds()
        assert 1.0 <= registry.get_sample_value(*lag) <= waited + 0.5
        with AvailabilityRunner(eventsourcing_env(scratch_database), []) as runner:
            assert runner.wait(recorder.max_notification_id() or 0, timeout=30)
        assert registry.get_sample_value(*lag) == 0
    finally:
        state.close()


def test_a_database_that_does_not_answer_leaves_the_scrape_answering_with_state_down(
    scratch_ledger,
):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    recorder = scratch_ledger.recorder
    assert isinstance(recorder, LedgerRecorder)
    state = StateMetrics(
        f"postgresql://postgres@127.0.0.1:{port}/none", recorder, [CHANNEL], dict, {"sale": 5}
    )
    registry = CollectorRegistry()
    registry.register(state)
    try:
        assert registry.get_sample_value("invsync_state_up") == 0
        assert registry.get_sample_value("invsync_outbox_pending", {"channel": CHANNEL}) is None
        assert (
            registry.get_sample_value("invsync_consistency_target_seconds", {"kind": "sale"}) == 5
        )
    finally:
        state.close()


def test_a_metrics_port_already_taken_stops_the_worker_with_one_line(database_url, redis_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "INVSYNC_DATABASE_URL": database_url,
            "INVSYNC_REDIS_URL": redis_url,
            "INVSYNC_CONFIG": "/nonexistent/invsync.toml",
            "INVSYNC_METRICS_PORT": str(port),
        }
        invsync = str(Path(sys.executable).with_name("invsync"))
        done = subprocess.run(
            [invsync, "worker"], check=False, env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot serve /metrics on 127.0.0.1:{port}")
    assert "--metrics-port" in last
