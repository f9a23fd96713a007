"""`invsync worker` reconciles on its own schedule, and a worker killed in the middle of a
catalogue read leaves the run to the next worker, which resumes it at the page the first was on
and finishes it counting each SKU once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox
from tests.integration.intake_fixtures import wait_until

PRODUCTS = 1000  # 10 pages at 2 calls a second: a read of some seconds
PAGES = PRODUCTS // 100


def _catalogue_run(database_url: str, channel_id: str) -> tuple[str, int, int] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT state, skus_read, step FROM reconcile_runs WHERE channel_id = %s "
            "AND scope = 'catalog'",
            [channel_id],
        ).fetchone()


def test_a_worker_killed_mid_run_leaves_it_to_the_next_which_finishes_it_once(
    database_url, redis_url, tmp_path
):
    woo = WooCommerceSandbox("ck_kill", "cs_kill", auto_deliver=False)
    for n in range(PRODUCTS):
        woo.add_product(f"KILL-{n:04d}", 5)
    channel_id = f"woo-{uuid.uuid4().hex[:8]}"
    with SandboxServer(woo.app) as shop:
        config = tmp_path / "invsync.toml"
        config.write_text(
            f'[[channels]]\nid = "{channel_id}"\nkind = "woocommerce"\nwebhook_secrets = ["s"]\n'
            f'api_base_url = "{shop.url}"\nconsumer_key = "ck_kill"\nconsumer_secret = "cs_kill"\n'
            "[channels.push]\nrate_per_second = 2\n"
        )
        env = {
            **os.environ,
            "INVSYNC_DATABASE_URL": database_url,
            "INVSYNC_REDIS_URL": redis_url,
            "INVSYNC_CONFIG": str(config),
            "INVSYNC_QUEUE_NAMESPACE": f"kill-{uuid.uuid4().hex[:8]}",
        }
        invsync = str(Path(sys.executable).with_name("invsync"))

        def worker() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [invsync, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        first = worker()
        try:
            # Its scheduler makes the catalogue's run at once; kill it a few pages in.
            wait_until(lambda: woo.log.count("products.list") >= 3, timeout=60)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            assert _catalogue_run(database_url, channel_id)[0] == "running"
            time.sleep(1)
            second = worker()
            try:
                wait_until(
                    lambda: _catalogue_run(database_url, channel_id)[0] == "done", timeout=120
                )
            finally:
                second.send_signal(signal.SIGINT)
                second.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
    woo.close()

    state, read, step = _catalogue_run(database_url, channel_id)
    assert (state, read, step) == ("done", PRODUCTS, 1 + PAGES)  # the orders poll, each page
    # The second worker resumed at the page the first was reading, not from the first page.
    assert woo.log.count("products.list") <= PAGES + 1
