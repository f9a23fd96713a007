"""Propagation to sandbox channels: how long after a ledger change every channel shows its
result, and how few calls a hot SKU costs, against baselines measured in the same run.

    make bench-propagation   (or: .venv/bin/python benchmarks/propagation.py [--seconds 60])

Shopify and WooCommerce get BENCH_RATE calls per second (default 10: what Shopify's standard
plan allows for inventorySetQuantities, 100 cost points/s at 10 a mutation; Plus allows 1,000
points/s); a SKU calls on its own at most every BENCH_SKU_INTERVAL seconds (default 0.25).
Amazon gets its documented usage plans: 5 listing patches a second, one SKU each, and a feed
(any number of SKUs, processed later) every 120 s, so it cannot follow 200 changes a second
across 200 SKUs within a second whatever the hub does; its figures are shown apart.

Targets (issue 5):
1. consistency window at 200 ledger events/s across the sandbox channels for 60 s, for sales:
   p50 <= 100 ms, p99 <= 1 s. Shown beside the baseline of one bare gateway call (the least a
   push can take) measured on the same sandboxes;
2. channel API calls per 1,000 sales on one hot SKU <= 50 (the baseline, one call per sale, is
   1,000), with no second in which a channel got more calls than its configured rate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from application.ledger import Ledger
from domain.stock import ChangeKind, StockChange
from infrastructure.channels.amazon.gateway import RATES, AmazonGateway
from infrastructure.channels.amazon.lwa import LwaCredentials
from infrastructure.channels.gateway import ChannelGateway, Push
from infrastructure.channels.shopify.gateway import ShopifyGateway
from infrastructure.channels.woocommerce.gateway import WooCommerceGateway
from infrastructure.postgres import eventsourcing_env
from interfaces.composition import migrate
from sandboxes.amazon.seller import AmazonSandbox
from sandboxes.server import CallLog, SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.woocommerce.store import WooCommerceSandbox

SKUS = [f"PROP-{n:04d}" for n in range(200)]
RATE_PER_SECOND = float(
    os.environ.get("BENCH_RATE", "10")
)  # each channel's calls/s (Shopify standard: 100 cost points/s, 10 a mutation)
BATCH_WINDOW = 0.5  # seconds the long tail waits to share a call
SKU_INTERVAL = float(os.environ.get("BENCH_SKU_INTERVAL", "0.25"))  # one SKU at most this often
AMAZON_RATE = RATES["patchListingsItem"]  # listing patches a second: SP-API's default plan
KINDS = [ChangeKind.SALE] * 6 + [ChangeKind.RETURN] * 2 + [ChangeKind.ADJUSTMENT] * 2


@dataclass
class Channel:
    id: str
    gateway: Callable[[], ChannelGateway]
    log: CallLog
    write_operation: str | None  # the CallLog operation of a write (None: every call)
    stock: Callable[[str], int | None]
    settings: dict[str, object]  # its table in the configuration file, less rules and push
    rate: float = RATE_PER_SECOND  # its calls a second
    within_targets: bool = True  # False: its documented limits cannot meet them


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    name = f"invsync_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_conninfo(server_url, dbname=name)
        migrate(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def sandboxes(skus: list[str]) -> Iterator[list[Channel]]:
    with ExitStack() as stack:
        shopify = ShopifySandbox("shpat_bench", "shpss_bench")
        stack.callback(shopify.close)
        woo = WooCommerceSandbox("ck_bench", "cs_bench", auto_deliver=False)
        stack.callback(woo.close)
        for sku in skus:
            shopify.set_stock(sku, 0)
            woo.add_product(sku, 0)
        amazon = AmazonSandbox()
        stack.callback(amazon.close)
        for sku in skus:
            amazon.add_listing(sku, 0)
        shopify_url = stack.enter_context(SandboxServer(shopify.app)).url
        woo_url = stack.enter_context(SandboxServer(woo.app)).url
        amazon_url = stack.enter_context(amazon.server()).url
        credentials = LwaCredentials(*amazon.credentials)
        yield [
            Channel(
                "shopify",
                lambda: ShopifyGateway(
                    shopify_url, "shpat_bench", shopify.location_id, channel_id="shopify"
                ),
                shopify.calls,
                None,
                shopify.stock,
                {
                    "kind": "shopify",
                    "api_base_url": shopify_url,
                    "access_token": "shpat_bench",
                    "location_id": shopify.location_id,
                },
            ),
            Channel(
                "woo",
                lambda: WooCommerceGateway(woo_url, "ck_bench", "cs_bench", channel_id="woo"),
                woo.log,
                "products.batch",
                woo.stock,
                {
                    "kind": "woocommerce",
                    "api_base_url": woo_url,
                    "consumer_key": "ck_bench",
                    "consumer_secret": "cs_bench",
                },
            ),
            Channel(
                "amazon",
                lambda: AmazonGateway(
                    amazon_url,
                    amazon.seller_id,
                    amazon.marketplace_id,
                    credentials,
                    token_url=f"{amazon_url}/auth/o2/token",
                    channel_id="amazon",
                ),
                amazon.log,
                "patchListingsItem",
                amazon.stock,
                {**amazon.channel_settings(amazon_url), "feed_poll_seconds": 1},
                rate=AMAZON_RATE,
                within_targets=False,
            ),
        ]


def change(kind: ChangeKind, sku: str, quantity: int, source: str) -> StockChange:
    return StockChange(
        kind=kind,
        sku=sku,
        location="main",
        quantity=quantity,
        business_key=f"bench:{uuid.uuid4().hex}",
        source=source,
        occurred_at=datetime.now(UTC),
        reason="correction" if kind is ChangeKind.ADJUSTMENT else "",
    )


def traffic(ledger: Ledger, channels: list[Channel], seconds: float, rate: int) -> int:
    """Ledger events at `rate` per second, 80 % of them on the 20 % hottest SKUs."""
    rng = random.Random(7)
    hot, tail = SKUS[: len(SKUS) // 5], SKUS[len(SKUS) // 5 :]
    tick, per_tick, recorded = 0.05, max(1, round(rate * 0.05)), 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        batch = []
        for _ in range(per_tick):
            sku = rng.choice(hot if rng.random() < 0.8 else tail)
            kind = rng.choice(KINDS)
            quantity = rng.randint(1, 2) * (-1 if kind is ChangeKind.ADJUSTMENT else 1)
            batch.append(change(kind, sku, quantity, rng.choice(channels).id))
        ledger.record_batch(batch)
        recorded += len(batch)
        time.sleep(max(0.0, (recorded / per_tick) * tick - elapsed - tick))
    return recorded


Windows = dict[str, tuple[int, float, float]]  # kind: pushes, p50, p99


def windows(database_url: str, since: datetime, channels: list[Channel]) -> Windows:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT kind, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds) FROM push_windows "
            "WHERE acknowledged_at > %s AND channel_id = ANY(%s) GROUP BY kind",
            [since, [c.id for c in channels]],
        ).fetchall()
    return {kind: (count, p50, p99) for kind, count, p50, p99 in rows}


def bare_call(channel: Channel, sku: str, rounds: int = 30) -> float:
    gateway = channel.gateway()
    try:
        gateway.push([Push(sku, 1, 1)])  # the lookup, cached from here on
        times = []
        for n in range(rounds):
            started = time.perf_counter()
            gateway.push([Push(sku, n % 5, n + 2, acknowledged=(n - 1) % 5)])
            times.append(time.perf_counter() - started)
        return statistics.median(times)
    finally:
        gateway.close()


def pending(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM availability_outbox WHERE position > pushed_position"
        ).fetchone()
    return row[0] if row else 0


def configuration(folder: Path, channels: list[Channel], share: int) -> Path:
    lines = []
    for c in channels:
        lines += ["[[channels]]", f'id = "{c.id}"', 'webhook_secrets = ["unused"]']
        lines += [f"{key} = {json.dumps(value)}" for key, value in c.settings.items()]
        lines += ["[channels.rules]", f"share_percent = {share}", "safety_buffer = 1"]
        lines += ["[channels.push]", f"rate_per_second = {c.rate}"]
        lines += [f"batch_window_seconds = {BATCH_WINDOW}"]
        lines += [f"sku_interval_seconds = {SKU_INTERVAL}"]
    path = folder / "invsync.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def propagation_processes(database_url: str, redis_url: str, config: Path) -> Iterator[None]:
    """The projection and a worker (intake and pushers), each a process, as deployed."""
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": database_url,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_QUEUE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
    }
    invsync = str(Path(sys.executable).with_name("invsync"))
    processes = [
        subprocess.Popen([invsync, *command], env=env, stderr=subprocess.DEVNULL)
        for command in (["project"], ["worker", "--threads", "8"])
    ]
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=30)


def run(server_url: str, redis_url: str, seconds: float, rate: int) -> None:
    with (
        scratch_database(server_url) as url,
        sandboxes([*SKUS, "HOT-1"]) as channels,
        tempfile.TemporaryDirectory() as folder,
    ):
        ledger = Ledger(env=eventsourcing_env(url))
        share = round(100 / len(channels))
        config = configuration(Path(folder), channels, share)
        ledger.record_batch(
            [change(ChangeKind.RECEIPT, sku, 100_000, "bench") for sku in [*SKUS, "HOT-1"]]
        )
        # Amazon's patch bucket holds 5: a few rounds only, before the benchmark proper.
        baseline = {c.id: bare_call(c, "HOT-1", 30 if c.within_targets else 3) for c in channels}
        pushing_since = time.monotonic()
        with propagation_processes(url, redis_url, config):
            print(f"warming up for 10 s at {rate} events/s (the hot set forms) ...", flush=True)
            traffic(ledger, channels, 10, rate)
            since = datetime.now(UTC)
            print(f"measuring for {seconds:.0f} s at {rate} events/s ...", flush=True)
            events = traffic(ledger, channels, seconds, rate)
            deadline = time.monotonic() + 60
            while pending(url) and time.monotonic() < deadline:
                time.sleep(0.2)
            within = [c for c in channels if c.within_targets]
            measured = windows(url, since, within)
            apart = {c.id: windows(url, since, [c]) for c in channels if not c.within_targets}
            before = {c.id: c.log.count(c.write_operation) for c in channels}
            for _ in range(100):  # 1,000 sales on one SKU in 10 s
                ledger.record_batch(
                    [change(ChangeKind.SALE, "HOT-1", 1, channels[0].id) for _ in range(10)]
                )
                time.sleep(0.1)
            while pending(url) and time.monotonic() < deadline + 60:
                time.sleep(0.2)
            calls = {c.id: c.log.count(c.write_operation) - before[c.id] for c in channels}
        ledger.close()
    report(
        events,
        seconds,
        channels=channels,
        measured=measured,
        apart=apart,
        baseline=baseline,
        calls=calls,
        pushing_since=pushing_since,
    )


def report(
    events: int,
    seconds: float,
    *,
    channels: list[Channel],
    measured: Windows,
    apart: dict[str, Windows],
    baseline: dict[str, float],
    calls: dict[str, int],
    pushing_since: float,
) -> None:
    print(f"\n{events:,} ledger events in {seconds:.0f} s across {len(channels)} channels")
    bare = statistics.median(baseline[c.id] for c in channels if c.within_targets)
    within = ", ".join(c.id for c in channels if c.within_targets)
    print(f"{within}:")
    print_windows(measured, bare, "   targets p50 <= 0.100 s, p99 <= 1 s")
    print(f"bare gateway call (baseline)         p50 {bare:.3f} s")
    for channel_id, its in apart.items():
        print(f"{channel_id} (documented limits: 5 patches/s, a feed per 120 s):")
        print_windows(its, baseline[channel_id], "")
    for c in channels:
        busiest = c.log.busiest_second(c.write_operation, since=pushing_since)
        throttled = c.log.count(None, 429)
        print(
            f"{c.id}: {calls[c.id]} calls for 1,000 sales on one SKU (baseline 1,000: ratio "
            f"{calls[c.id] / 1000:.3f}; target <= 50); busiest second {busiest} calls "
            f"(limit {c.rate:g}, violations {int(busiest > c.rate)}); {throttled} answered 429"
        )


def print_windows(measured: Windows, bare: float, sale_target: str) -> None:
    for kind, (count, p50, p99) in sorted(measured.items()):
        print(
            f"consistency window, {kind:<10} {count:>6} pushes  p50 {p50:.3f} s  p99 {p99:.3f} s"
            f"  (p50 / bare call {p50 / bare:.1f}){sale_target if kind == 'sale' else ''}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()
    server = os.environ.get(
        "INVSYNC_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("INVSYNC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    run(server, redis_url, args.seconds, args.rate)


if __name__ == "__main__":
    main()
