"""Reconciling a 20,000-SKU catalogue against the WooCommerce sandbox: wall time and calls of
the scheduled catalogue run, against the least the API allows, and the latency of pushes made
during it, against the same pushes without it, all in one run.

    make bench-reconcile   (or: .venv/bin/python -m benchmarks.reconcile [--skus 20000])

The channel gets BENCH_RATE calls a second (default 10), pushes and reads alike: WooCommerce
documents no limit of its own (the host decides), so the rate is the channel's configured one.
Its catalogue is read 100 products a call, the largest `per_page` WordPress's REST API allows.

Targets (issue 13):
1. calls of the run <= 1.2 x the minimum, SKUs / 100 (its orders poll and its active SKUs'
   reads count against it);
2. pushes during the run keep their latency: p99 of their consistency windows within 1.5 x
   that of the same traffic without a run, measured just before.

The service runs as deployed: `invsync project` and `invsync worker`, processes of their own.
The baseline's sales run with `[channels.reconcile] enabled = false`; the worker is then started
again with it enabled: its scheduler starts the channel's due runs, the catalogue's among them,
whose calls are counted alone; then the same sales run again during a catalogue run asked for
as the API would.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from application.ledger import Ledger
from benchmarks.harness import (
    Channel,
    change,
    pending,
    propagation_processes,
    scratch_database,
    windows,
)
from domain.stock import ChangeKind
from infrastructure.channels.woocommerce.gateway import PAGE_LIMIT, WooCommerceGateway
from infrastructure.postgres import eventsourcing_env
from infrastructure.reconcile import runs
from sandboxes.server import SandboxServer
from sandboxes.woocommerce.store import WooCommerceSandbox

RATE = float(os.environ.get("BENCH_RATE", "10"))
SERVER = os.environ.get(
    "INVSYNC_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("INVSYNC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
CHANNEL = "woo"
STOCK = 100
SALES_PER_SECOND = 20  # on the hot SKUs, in both phases
HOT = 100
WRITE = "products.batch"  # the sandbox's name for a push


@contextmanager
def sandbox(skus: list[str]) -> Iterator[tuple[WooCommerceSandbox, str]]:
    woo = WooCommerceSandbox("ck_bench", "cs_bench", auto_deliver=False)
    for sku in skus:
        woo.add_product(sku, STOCK)
    try:
        with SandboxServer(woo.app) as server:
            yield woo, server.url
    finally:
        woo.close()


def configuration(folder: Path, shop_url: str, reconcile: bool) -> Path:
    path = folder / f"invsync-{'reconcile' if reconcile else 'baseline'}.toml"
    path.write_text(
        f'[[channels]]\nid = "{CHANNEL}"\nkind = "woocommerce"\nwebhook_secrets = ["unused"]\n'
        f'api_base_url = "{shop_url}"\nconsumer_key = "ck_bench"\nconsumer_secret = "cs_bench"\n'
        f"[channels.push]\nrate_per_second = {RATE}\nbatch_window_seconds = 0.5\n"
        f"[channels.reconcile]\nenabled = {str(reconcile).lower()}\n"
    )
    return path


def stock_the_ledger(ledger: Ledger, skus: list[str]) -> None:
    for start in range(0, len(skus), 1000):
        ledger.record_batch(
            [change(ChangeKind.RECEIPT, sku, STOCK, "bench") for sku in skus[start : start + 1000]]
        )


def sell(ledger: Ledger, hot: list[str], seconds: float, rng: random.Random) -> int:
    """Sales on `hot` at SALES_PER_SECOND for `seconds`, as the channel's own."""
    sold, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        ledger.record_batch([change(ChangeKind.SALE, rng.choice(hot), 1, CHANNEL)])
        sold += 1
        time.sleep(max(0.0, sold / SALES_PER_SECOND - (time.monotonic() - started)))
    return sold


def drained(database_url: str, timeout: float, rows: int = 0) -> None:
    """Wait until the outbox holds `rows` rows at least, none of them pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (
        pending(database_url) or outbox_rows(database_url) < rows
    ):
        time.sleep(0.5)


def outbox_rows(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM availability_outbox").fetchone()
    return row[0] if row else 0


def catalogue_run(database_url: str, run_id: int | None = None) -> dict[str, Any] | None:
    """The scheduled catalogue run (or run `run_id`), once it finished; None before."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT state, error, skus_read, corrected, escalated, started_at, finished_at "
            "FROM reconcile_runs "
            "WHERE channel_id = %s AND (id = %s OR %s::bigint IS NULL AND scope = 'catalog') "
            "AND state IN ('done', 'failed') ORDER BY id DESC LIMIT 1",
            [CHANNEL, run_id, run_id],
        ).fetchone()
    keys = ("state", "error", "skus_read", "corrected", "escalated", "started_at", "finished_at")
    return None if row is None else dict(zip(keys, row, strict=True))


def requested_run(database_url: str) -> int:
    """A catalogue run asked for as the API would: the running scheduler sends it."""
    with psycopg.connect(database_url) as conn:
        return runs.request_check(conn, CHANNEL, None, what="both", by="bench")


def gateway(shop_url: str) -> WooCommerceGateway:
    return WooCommerceGateway(shop_url, "ck_bench", "cs_bench", channel_id=CHANNEL)


def reads(woo: WooCommerceSandbox) -> int:
    return woo.log.count() - woo.log.count(WRITE)


def run(server_url: str, redis_url: str, skus: int, seconds: float) -> None:
    catalogue = [f"REC-{n:05d}" for n in range(skus)]
    hot, rng = catalogue[:HOT], random.Random(13)
    with (
        scratch_database(server_url) as url,
        sandbox(catalogue) as (woo, shop_url),
        tempfile.TemporaryDirectory() as folder,
    ):
        ledger = Ledger(env=eventsourcing_env(url))
        stock_the_ledger(ledger, catalogue)
        channel = Channel(CHANNEL, lambda: gateway(shop_url), woo.log, WRITE, woo.stock, {})
        with propagation_processes(url, redis_url, configuration(Path(folder), shop_url, False)):
            print(f"pushing the {skus:,} SKUs' first quantities ...", flush=True)
            started = time.monotonic()
            drained(url, timeout=skus / 2, rows=skus)  # each SKU's id looked up, 100 a push
            print(f"... in {time.monotonic() - started:.0f} s", flush=True)
            sell(ledger, hot, 5, rng)  # warm-up: the hot SKUs' ids are looked up
            print(f"baseline: {seconds:.0f} s of sales without a run ...", flush=True)
            since = datetime.now(UTC)
            sell(ledger, hot, seconds, rng)
            drained(url, timeout=60)
            without = windows(url, since, [channel])
        with propagation_processes(url, redis_url, configuration(Path(folder), shop_url, True)):
            print("the scheduled catalogue run, alone ...", flush=True)
            calls_before = reads(woo)
            while (alone := catalogue_run(url)) is None:
                time.sleep(0.2)
            calls = reads(woo) - calls_before
            sell(ledger, hot, 5, rng)  # warm-up, as for the baseline
            print("the same sales during a catalogue run asked for ...", flush=True)
            since, run_id = datetime.now(UTC), requested_run(url)
            while catalogue_run(url, run_id) is None:
                sell(ledger, hot, 1.0, rng)
            drained(url, timeout=60)
            during = windows(url, since, [channel])
        ledger.close()
    report(skus, alone, calls, without, during)


def report(skus: int, found: dict[str, Any], calls: int, without: Any, during: Any) -> None:
    minimum = -(-skus // PAGE_LIMIT)
    wall = (found["finished_at"] - found["started_at"]).total_seconds()
    print(
        f"\ncatalogue run {found['state']}: {found['skus_read']:,} SKUs read in {wall:.1f} s "
        f"(at {RATE:g} calls/s the minimum takes {minimum / RATE:.1f} s); "
        f"{found['corrected']} corrected, {found['escalated']} escalated"
        + (f"; failed: {found['error']}" if found["error"] else "")
    )
    print(
        f"read calls {calls} against the minimum {minimum} ({skus:,} SKUs / {PAGE_LIMIT}): "
        f"ratio {calls / minimum:.2f} (target <= 1.2)"
    )
    _, _, p99_without = without.get("sale", (0, 0.0, 0.0))
    count, _, p99_during = during.get("sale", (0, 0.0, 0.0))
    ratio = p99_during / p99_without if p99_without else float("nan")
    print(
        f"push p99 of sales: {p99_without:.3f} s without a run, {p99_during:.3f} s during it "
        f"({count} pushes): ratio {ratio:.2f} (target <= 1.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=30, help="the baseline's length")
    args = parser.parse_args()
    run(SERVER, REDIS, args.skus, args.seconds)


if __name__ == "__main__":
    main()
