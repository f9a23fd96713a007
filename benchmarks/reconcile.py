"""Reconciling a 20,000-SKU catalogue against a channel's sandbox: wall time and calls of a
catalogue run, against the least the API allows, and the latency of pushes made during it,
against the same pushes without it, all in one run; `--runs` times over one catalogue, each
run's ratios against its own baseline, and their medians judged.

    make bench-reconcile   (or: .venv/bin/python -m benchmarks.reconcile [--skus 20000]
                            [--channel woocommerce|shopify] [--runs 3])

- WooCommerce documents no rate limit (the host decides), so the channel gets BENCH_RATE calls
  a second (default 10), pushes and reads alike. Its catalogue is read 100 products a call,
  the largest `per_page` WordPress's REST API allows.
- Shopify documents one: GraphQL Admin's cost budget (100 points a second restored, a bucket
  of 1,000, on a standard plan), which its sandbox enforces, at the 10 calls a second invsync
  gives the kind. Its catalogue is read 250 items a call, the most a page holds. Its calls
  are all `graphql`: the catalogue run's are counted while no sale is pushed.

Targets (issue 13), each printed as met or NOT MET; the exit status is 1 when one is missed:
1. calls of the catalogue run <= 1.2 x the minimum, SKUs / page (its orders poll and its active
   SKUs' reads count against it), every SKU read;
2. pushes during the run keep their latency: p99 of their consistency windows within 1.5 x
   that of the same traffic without a run, measured just before.

The service runs as deployed: `invsync project` and `invsync worker`, processes of their own.
Each baseline's sales run with `[channels.reconcile] enabled = false`; the worker is then
started again with it enabled: the first time its scheduler starts the channel's due runs, the
catalogue's among them, whose calls are counted alone (later times, a catalogue run asked for
as the API would); then the same sales run again during a catalogue run asked for.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import psycopg

from application.ledger import Ledger
from benchmarks.harness import (
    Channel,
    Windows,
    change,
    pending,
    propagation_processes,
    scratch_database,
)
from benchmarks.harness import windows as channel_windows
from domain.stock import ChangeKind
from infrastructure.channels.shopify.gateway import MAX_INPUT
from infrastructure.channels.woocommerce.gateway import PAGE_LIMIT
from infrastructure.postgres import eventsourcing_env
from infrastructure.reconcile import runs
from sandboxes.server import CallLog, SandboxServer
from sandboxes.shopify.store import ShopifySandbox
from sandboxes.woocommerce.store import WooCommerceSandbox

RATE = float(os.environ.get("BENCH_RATE", "10"))
SERVER = os.environ.get(
    "INVSYNC_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("INVSYNC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
STOCK = 100
SALES_PER_SECOND = 20  # on the hot SKUs, in both phases
HOT = 100
CALLS_TARGET = 1.2  # x the fewest read calls the API allows
LATENCY_TARGET = 1.5  # x the push p99 without a run
T = TypeVar("T")


@dataclass(frozen=True)
class Store:
    """A sandbox store holding the catalogue: its table in the configuration file (less
    reconcile and push), its calls, and how many of them were reads."""

    table: dict[str, Any]
    log: CallLog
    reads: Callable[[], int]


@dataclass(frozen=True)
class Kind:
    channel: str  # the channel's id
    page: int  # the most SKUs one read of the catalogue returns
    store: Callable[[list[str]], Any]  # a context manager: the sandbox serving `skus`


@contextmanager
def woocommerce(skus: list[str]) -> Iterator[Store]:
    woo = WooCommerceSandbox("ck_bench", "cs_bench", auto_deliver=False)
    for sku in skus:
        woo.add_product(sku, STOCK)
    table = {"kind": "woocommerce", "consumer_key": "ck_bench", "consumer_secret": "cs_bench"}
    try:
        with SandboxServer(woo.app) as server:
            writes = "products.batch"
            yield Store(
                {**table, "api_base_url": server.url},
                woo.log,
                lambda: woo.log.count() - woo.log.count(writes),
            )
    finally:
        woo.close()


@contextmanager
def shopify(skus: list[str]) -> Iterator[Store]:
    shop = ShopifySandbox("shpat_bench")
    for sku in skus:
        shop.set_stock(sku, STOCK)
    table = {
        "kind": "shopify",
        "access_token": "shpat_bench",
        "location_id": str(shop.location_id),
    }
    try:
        with SandboxServer(shop.app) as server:
            yield Store({**table, "api_base_url": server.url}, shop.calls, shop.calls.count)
    finally:
        shop.close()


KINDS = {
    "woocommerce": Kind("woo", PAGE_LIMIT, woocommerce),
    "shopify": Kind("shopify", MAX_INPUT, shopify),
}


def configuration(folder: Path, channel: str, store: Store, reconcile: bool) -> Path:
    path = folder / f"invsync-{'reconcile' if reconcile else 'baseline'}.toml"
    fields = "".join(f'{key} = "{value}"\n' for key, value in store.table.items())
    path.write_text(
        f'[[channels]]\nid = "{channel}"\nwebhook_secrets = ["unused"]\n{fields}'
        f"[channels.push]\nrate_per_second = {RATE}\nbatch_window_seconds = 0.5\n"
        f"[channels.reconcile]\nenabled = {str(reconcile).lower()}\n"
    )
    return path


def stock_the_ledger(ledger: Ledger, skus: list[str]) -> None:
    for start in range(0, len(skus), 1000):
        ledger.record_batch(
            [change(ChangeKind.RECEIPT, sku, STOCK, "bench") for sku in skus[start : start + 1000]]
        )


def sell(ledger: Ledger, channel: str, hot: list[str], seconds: float, rng: random.Random) -> int:
    """Sales on `hot` at SALES_PER_SECOND for `seconds`, as the channel's own."""
    sold, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        ledger.record_batch([change(ChangeKind.SALE, rng.choice(hot), 1, channel)])
        sold += 1
        time.sleep(max(0.0, sold / SALES_PER_SECOND - (time.monotonic() - started)))
    return sold


def retried(read: Callable[[], T], tries: int = 60) -> T:
    """`read`, tried again a second later while PostgreSQL refuses a connection: the server's
    100 are shared with other work on this machine, and a moment without one must not lose a
    run's figures."""
    for _ in range(tries - 1):
        try:
            return read()
        except psycopg.OperationalError:
            time.sleep(1.0)
    return read()


def drained(database_url: str, timeout: float, rows: int = 0) -> None:
    """Wait until the outbox holds `rows` rows at least, none of them pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and retried(
        lambda: pending(database_url) or outbox_rows(database_url) < rows
    ):
        time.sleep(0.5)


def outbox_rows(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM availability_outbox").fetchone()
    return row[0] if row else 0


def catalogue_run(database_url: str, channel: str, run_id: int | None = None) -> Figures | None:
    """The scheduled catalogue run (or run `run_id`), once it finished; None before."""
    return retried(lambda: _catalogue_run(database_url, channel, run_id))


def _catalogue_run(database_url: str, channel: str, run_id: int | None) -> Figures | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT state, error, skus_read, corrected, escalated, "
            "extract(epoch FROM finished_at - started_at) FROM reconcile_runs "
            "WHERE channel_id = %s AND (id = %s OR %s::bigint IS NULL AND scope = 'catalog') "
            "AND state IN ('done', 'failed') ORDER BY id DESC LIMIT 1",
            [channel, run_id, run_id],
        ).fetchone()
    if row is None:
        return None
    state, error, skus_read, corrected, escalated, wall = row
    return Figures(state, error, skus_read, corrected, escalated, float(wall))


@dataclass
class Figures:
    """One catalogue run's, and the push p99s without and during a run."""

    state: str
    error: str | None
    skus_read: int
    corrected: int
    escalated: int
    wall: float
    calls: int = 0
    p99_without: float = 0.0
    p99_during: float = 0.0
    pushes_during: int = 0

    @property
    def latency_ratio(self) -> float:
        return self.p99_during / self.p99_without if self.p99_without else float("nan")


def requested_run(database_url: str, channel: str) -> int:
    """A catalogue run asked for as the API would: the running scheduler sends it."""
    return retried(lambda: _requested_run(database_url, channel))


def _requested_run(database_url: str, channel: str) -> int:
    with psycopg.connect(database_url) as conn:
        return runs.request_check(conn, channel, None, what="both", by="bench")


def alone(database_url: str, channel: str, first: bool) -> Figures:
    """The first time the scheduled catalogue run, later a run asked for, once finished."""
    asked = None if first else requested_run(database_url, channel)
    while (found := catalogue_run(database_url, channel, asked)) is None:
        time.sleep(0.2)
    return found


def p99(found: Windows) -> tuple[int, float]:
    count, _, slowest = found.get("sale", (0, 0.0, 0.0))
    return count, slowest


def windows(database_url: str, since: datetime, channel: str) -> Windows:
    """The channel's push windows since `since` (the harness reads only its id)."""
    return retried(lambda: channel_windows(database_url, since, [cast(Channel, _Named(channel))]))


@dataclass(frozen=True)
class _Named:
    id: str


@dataclass(frozen=True)
class Bench:
    """What every run over one catalogue shares."""

    url: str
    redis_url: str
    kind: Kind
    store: Store
    ledger: Ledger
    folder: Path
    seconds: float  # each baseline's length

    def processes(self, reconcile: bool) -> Any:
        config = configuration(self.folder, self.kind.channel, self.store, reconcile)
        return propagation_processes(self.url, self.redis_url, config)

    def sell(self, seconds: float, rng: random.Random) -> None:
        sell(self.ledger, self.kind.channel, [f"REC-{n:05d}" for n in range(HOT)], seconds, rng)

    def warmed_up(self, rng: random.Random, timeout: float = 120.0) -> None:
        """Sell until the processes just started push what is sold (the hot SKUs' ids looked
        up), so no phase measures their start."""
        since, deadline = datetime.now(UTC), time.monotonic() + timeout
        self.sell(5, rng)
        while not p99(windows(self.url, since, self.kind.channel))[0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing was pushed within {timeout:.0f} s of the start")
            self.sell(1, rng)


def measured(bench: Bench, turn: int) -> Figures:
    """One run's figures: the baseline's sales, a catalogue run alone, the sales during one."""
    url, channel, rng = bench.url, bench.kind.channel, random.Random(13 + turn)
    with bench.processes(reconcile=False):
        bench.warmed_up(rng)
        print(f"run {turn + 1}: baseline, {bench.seconds:.0f} s of sales ...", flush=True)
        since = datetime.now(UTC)
        bench.sell(bench.seconds, rng)
        drained(url, timeout=60)
        without = windows(url, since, channel)
    with bench.processes(reconcile=True):
        print(f"run {turn + 1}: a catalogue run, alone ...", flush=True)
        calls_before = bench.store.reads()
        figures = alone(url, channel, turn == 0)
        figures.calls = bench.store.reads() - calls_before
        bench.warmed_up(rng)  # as for the baseline
        print(f"run {turn + 1}: the same sales during a catalogue run asked for ...", flush=True)
        since, run_id = datetime.now(UTC), requested_run(url, channel)
        while catalogue_run(url, channel, run_id) is None:
            bench.sell(1.0, rng)
        drained(url, timeout=60)
        during = windows(url, since, channel)
    (_, figures.p99_without), (figures.pushes_during, figures.p99_during) = (
        p99(without),
        p99(during),
    )
    return figures


def run(
    server_url: str, redis_url: str, kind: Kind, *, skus: int, seconds: float, times: int
) -> bool:
    catalogue = [f"REC-{n:05d}" for n in range(skus)]
    with (
        scratch_database(server_url) as url,
        kind.store(catalogue) as store,
        tempfile.TemporaryDirectory() as folder,
    ):
        ledger = Ledger(env=eventsourcing_env(url))
        stock_the_ledger(ledger, catalogue)
        bench = Bench(url, redis_url, kind, store, ledger, Path(folder), seconds)
        with bench.processes(reconcile=False):
            print(f"pushing the {skus:,} SKUs' first quantities ...", flush=True)
            started = time.monotonic()
            drained(url, timeout=skus / 2, rows=skus)  # each SKU's id looked up, a page a push
            print(f"... in {time.monotonic() - started:.0f} s", flush=True)
        found = []
        for turn in range(times):
            found.append(measured(bench, turn))
            report(kind, skus, found[-1])
        ledger.close()
    return judged(kind, skus, found)


def report(kind: Kind, skus: int, found: Figures) -> None:
    minimum = -(-skus // kind.page)
    print(
        f"catalogue run {found.state}: {found.skus_read:,} SKUs read in {found.wall:.1f} s "
        f"(at {RATE:g} calls/s the minimum takes {minimum / RATE:.1f} s); {found.calls} read "
        f"calls ({found.calls / minimum:.2f} x {minimum}); {found.corrected} corrected, "
        f"{found.escalated} escalated; push p99 {found.p99_without:.3f} s without a run, "
        f"{found.p99_during:.3f} s during it ({found.pushes_during} pushes): ratio "
        f"{found.latency_ratio:.2f}" + (f"; failed: {found.error}" if found.error else ""),
        flush=True,
    )


def judged(kind: Kind, skus: int, found: list[Figures]) -> bool:
    """Print the medians of the runs and each target as met or not; True when all are met."""
    minimum = -(-skus // kind.page)
    calls = statistics.median(f.calls for f in found)
    wall = statistics.median(f.wall for f in found)
    ratio = statistics.median(f.latency_ratio for f in found)
    read_all = all(f.state == "done" and f.skus_read >= skus for f in found)
    print(f"\nmedians of {len(found)} runs ({kind.channel}): wall time {wall:.1f} s")
    calls_met = verdict(
        f"read calls {calls:g} against the minimum {minimum} ({skus:,} SKUs / {kind.page}): "
        f"ratio {calls / minimum:.2f} (target <= {CALLS_TARGET}, every SKU read)",
        read_all and calls <= CALLS_TARGET * minimum,
    )
    ratios = ", ".join(f"{f.latency_ratio:.2f}" for f in found)
    latency_met = verdict(
        f"push p99 during a run against without: ratio {ratio:.2f} (runs: {ratios}; "
        f"target <= {LATENCY_TARGET})",
        all(f.pushes_during for f in found) and ratio <= LATENCY_TARGET,
    )
    return calls_met and latency_met


def verdict(line: str, met: bool) -> bool:
    print(f"{line}: {'met' if met else 'NOT MET'}", flush=True)
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=30, help="each baseline's length")
    parser.add_argument("--channel", choices=sorted(KINDS), default="woocommerce")
    parser.add_argument("--runs", type=int, default=3, help="runs over one catalogue")
    args = parser.parse_args()
    kind = KINDS[args.channel]
    if not run(SERVER, REDIS, kind, skus=args.skus, seconds=args.seconds, times=args.runs):
        sys.exit(1)  # a target missed


if __name__ == "__main__":
    main()
