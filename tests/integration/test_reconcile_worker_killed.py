"""`invsync worker` reconciles on its own schedule, and a worker killed in the middle of a
catalogue read leaves the run to the next worker, which resumes it at the page the first was on
and finishes it counting each SKU once: for each kind that reads its catalogue a page a message,
against its sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sandboxes.ebay.seller import EbaySandbox
from sandboxes.server import SandboxServer
from sandboxes.walmart.seller import WalmartSandbox
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.integration.intake_fixtures import wait_until

PAGES = 10  # at 2 calls a second: a read of some seconds
# Deadlines for what takes 3-8 s (the first worker's start and three pages) and about 40 s (the
# killed worker's 30 s lease, then the rest) on a busy machine: they only ever end a stuck run.
FIRST_PAGES_WITHIN, DONE_WITHIN = 180, 300


@dataclass
class Seller:
    """A kind's sandbox with `PAGES` pages of catalogue, its channel's table, and how many
    pages of it were read."""

    kind: str
    sandbox: Any
    table: Callable[[str], str]  # the kind's keys of the channel, given the sandbox's URL
    pages_read: Callable[[], int]
    items: int


def woocommerce() -> Seller:
    woo = WooCommerceSandbox("ck_kill", "cs_kill", auto_deliver=False)
    for n in range(PAGES * 100):
        woo.add_product(f"KILL-{n:04d}", 5)
    keys = 'webhook_secrets = ["s"]\nconsumer_key = "ck_kill"\nconsumer_secret = "cs_kill"\n'
    return Seller(
        "woocommerce",
        woo,
        lambda url: f'api_base_url = "{url}"\n{keys}',
        lambda: woo.log.count("products.list"),
        PAGES * 100,
    )


def ebay() -> Seller:
    seller = EbaySandbox()
    for n in range(PAGES * 200):
        seller.add_item(f"KILL-{n:04d}", 5)
    keys = (
        'client_id = "sandbox-app"\nclient_secret = "sandbox-cert"\n'
        'refresh_token = "sandbox-refresh"\n'
    )
    return Seller(
        "ebay",
        seller,
        lambda url: f'api_base_url = "{url}"\n{keys}',
        lambda: seller.log.count("inventory.items", 200),
        PAGES * 200,
    )


def walmart() -> Seller:
    seller = WalmartSandbox()
    for n in range(PAGES * 50):
        seller.add_item(f"KILL-{n:04d}", 5)
    client_id, client_secret = seller.credentials
    keys = (
        f'webhook_secrets = ["s"]\nclient_id = "{client_id}"\nclient_secret = "{client_secret}"\n'
    )
    return Seller(
        "walmart",
        seller,
        lambda url: f'api_base_url = "{url}"\n{keys}',
        lambda: seller.log.count("inventories.get", 200),
        PAGES * 50,
    )


def _until(
    condition: Callable[[], object], worker: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    """Wait for `condition` while `worker` runs: a worker that stops (its database refusing
    it, say) fails the test at once with its own last lines, not at the deadline."""
    wait_until(lambda: condition() or worker.poll() is not None, timeout=timeout, every=0.1)
    assert condition(), f"invsync worker exited {worker.returncode}: {log.read_text()[-2000:]}"


def _catalogue_run(database_url: str, channel_id: str) -> tuple[str, int, int] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT state, skus_read, step FROM reconcile_runs WHERE channel_id = %s "
            "AND scope = 'catalog'",
            [channel_id],
        ).fetchone()


@pytest.mark.parametrize("make", [woocommerce, ebay, walmart], ids=lambda make: make.__name__)
def test_a_worker_killed_mid_run_leaves_it_to_the_next_which_finishes_it_once(
    make, database_url, redis_url, tmp_path
):
    seller = make()
    channel_id = f"{seller.kind[:4]}-{uuid.uuid4().hex[:8]}"
    with SandboxServer(seller.sandbox.app) as served:
        config = tmp_path / "invsync.toml"
        config.write_text(
            f'[[channels]]\nid = "{channel_id}"\nkind = "{seller.kind}"\n'
            f"{seller.table(served.url)}[channels.push]\nrate_per_second = 2\n"
        )
        env = {
            **os.environ,
            "INVSYNC_DATABASE_URL": database_url,
            "INVSYNC_REDIS_URL": redis_url,
            "INVSYNC_CONFIG": str(config),
            "INVSYNC_QUEUE_NAMESPACE": f"kill-{uuid.uuid4().hex[:8]}",
        }
        invsync = str(Path(sys.executable).with_name("invsync"))

        def worker(log: Path) -> subprocess.Popen[bytes]:
            # Metrics on a port of the system's choosing: on the default one, any other
            # `invsync worker` on the machine (a benchmark's, another test's) stops this one.
            with log.open("wb") as stderr:
                return subprocess.Popen(
                    [invsync, "worker", "--metrics-port", "0"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )

        first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
        first = worker(first_log)
        try:
            # Its scheduler makes the catalogue's run at once; kill it a few pages in.
            _until(lambda: seller.pages_read() >= 3, first, first_log, FIRST_PAGES_WITHIN)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            assert _catalogue_run(database_url, channel_id)[0] == "running"
            time.sleep(1)
            second = worker(second_log)
            try:
                _until(
                    lambda: _catalogue_run(database_url, channel_id)[0] == "done",
                    second,
                    second_log,
                    DONE_WITHIN,
                )
            finally:
                second.send_signal(signal.SIGINT)
                second.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
    seller.sandbox.close()

    state, read, step = _catalogue_run(database_url, channel_id)
    assert (state, read, step) == ("done", seller.items, 1 + PAGES)  # the orders poll, each page
    # The second worker resumed at the page the first was reading, not from the first page.
    assert seller.pages_read() <= PAGES + 1
