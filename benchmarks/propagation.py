"""Propagation measured from the channels' side: a shopper buys on one sandbox store, its signed
webhook reaches `invsync run`'s intake, and the window closes when every other store shows the
sale (read from the sandboxes' own state, as a shopper there would see it). The window opens when
the store's sender posts the webhook (issue 15: "windows start at the webhook's arrival"), not at
the purchase: how long a channel holds a webhook before it sends it is the channel's (the
WooCommerce sandbox waits 50 ms, as WooCommerce queues deliveries), and no receiver can shorten
it. The report shows the window from the purchase beside it, and that wait as its own step.

    make bench-propagation   (or: .venv/bin/python -m benchmarks.propagation [--seconds 40]
                              [--rate 200] [--log PATH] [--no-pin])

The stores, their webhook senders and the watchers run in a process of their own
(`benchmarks.propagation_stores`), apart from this one's load generator, pinned to the last
core with `invsync run` on the others (`--no-pin`: wherever the kernel puts them). Calls are
counted from each store's call log, fetched at the end.

Stores: Shopify, WooCommerce, eBay and Walmart (each pushed at its documented default rate,
`rate_per_second` left unset) and Amazon (its documented usage plans; shown apart). While the
benchmark records 200 ledger events a second on 200 background SKUs (80 % on the hottest 20 %),
probe sales alternate between the Shopify and WooCommerce stores (webhooks signed as each
documents) on three classes of SKUs of their own:

- hot: SKUs with the most sales on record (in the top 20 % by velocity);
- cold: SKUs that never sold, 100,000 units each;
- at risk: 2 or 3 units (buffer 1): the sale leaves 1 or none to sell.

Then, the load stopped, single sales of cold SKUs in a quiet store, a few seconds apart; then
1,000 sales of one hot SKU in 10 s (the calls they cost each store).

Baseline (same run): one bare gateway call to each sandbox (a push of one SKU, its lookup
cached), the least a push can take. Targets (issue 15): webhook -> every other store showing
the sale, p50 <= 150 ms and p99 <= 400 ms for each class; a cold sale in a quiet store <= 250
ms; <= 50 calls per 1,000 hot sales; no second with more calls than a store's rate, no 429.
Amazon: at-risk p99 <= 2 s, and every SKU converges once the load eases; its violations are
calls that found their operation's token bucket empty, as SP-API counts them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from application.ledger import Ledger
from benchmarks.harness import change, scratch_database
from benchmarks.propagation_stores import (
    BACKGROUND,
    BUFFER,
    COLD,
    HOT,
    RISK,
    SECRET,
    SKUS,
    TIMEOUT,
    Hosted,
    StoreInfo,
    hosted,
    opening,
)
from domain.stock import ChangeKind
from infrastructure.channels.gateway import UNGATED, Push
from infrastructure.channels.kinds import gateway_for
from infrastructure.config import Config, load_config
from infrastructure.postgres import eventsourcing_env
from sandboxes.amazon.quotas import RATES as QUOTAS
from sandboxes.server import CallLog

KINDS = [ChangeKind.SALE] * 6 + [ChangeKind.RETURN] * 2 + [ChangeKind.ADJUSTMENT] * 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tables(channels: list[StoreInfo]) -> list[dict[str, Any]]:
    """The stores' tables in the configuration file: rate_per_second left to each kind."""
    return [
        {
            "id": c.id,
            "webhook_secrets": [SECRET],
            **c.settings,
            "rules": {"safety_buffer": BUFFER},
        }
        for c in channels
    ]


def configuration(folder: Path, channels: list[StoreInfo]) -> Path:
    lines = []
    for table in tables(channels):
        rules = table.pop("rules")
        lines += ["[[channels]]"]
        lines += [
            f"{key} = {json.dumps(value)}" for key, value in table.items() if key != "locations"
        ]
        if "locations" in table:
            lines += ["[channels.locations]"]
            lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in table["locations"].items()]
        lines += ["[channels.rules]", *(f"{k} = {v}" for k, v in rules.items())]
    path = folder / "invsync.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def rates(config_path: Path) -> dict[str, float]:
    """Each store's calls a second, as invsync reads its configuration."""
    return {c.id: c.push.rate_per_second for c in load_config(config_path).channels}


def traffic(ledger: Ledger, stop: threading.Event, rate: int, counted: list[int]) -> None:
    """Ledger events at `rate` a second on the background SKUs, 80 % on the hottest 20 %."""
    rng = random.Random(7)
    hot, tail = BACKGROUND[:40], BACKGROUND[40:]
    tick, per_tick = 0.05, max(1, round(rate * 0.05))
    started = time.monotonic()
    while not stop.is_set():
        batch = []
        for _ in range(per_tick):
            sku = rng.choice(hot if rng.random() < 0.8 else tail)
            kind = rng.choice(KINDS)
            quantity = rng.randint(1, 2) * (-1 if kind is ChangeKind.ADJUSTMENT else 1)
            batch.append(change(kind, sku, quantity, "bench"))
        ledger.record_batch(batch)
        counted[0] += len(batch)
        time.sleep(max(0.0, (counted[0] / per_tick) * tick - (time.monotonic() - started)))


class Shoppers:
    """Probe sales, alternating between the stores that send webhooks; each probe waits for
    every other store (Amazon's figures kept apart)."""

    def __init__(self, window: Hosted) -> None:
        self.window = window
        self.left = {sku: opening(sku) for sku in [*HOT, *COLD, *RISK]}
        self.sellers = [c.id for c in window.stores if c.sells]
        self.turn = 0

    def buy(self, cls: str, sku: str) -> None:
        seller = self.sellers[self.turn % len(self.sellers)]
        self.turn += 1
        self.left[sku] -= 1
        self.window.buy(seller, cls, sku, max(0, self.left[sku] - BUFFER))


def probes_under_load(shoppers: Shoppers, seconds: float, every: float) -> None:
    """A probe sale every `every` seconds, hot, cold and at risk in turn, each at-risk SKU once."""
    risk, cold, n = iter(RISK), iter(COLD[20:]), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cls = ("hot", "cold", "at risk")[n % 3]
        sku = HOT[n % len(HOT)] if cls == "hot" else next(cold if cls == "cold" else risk, None)
        if sku is None:
            break
        shoppers.buy(cls, sku)
        n += 1
        time.sleep(every)


# Where a probe's time went, from the database's own records of each step (its clock): the
# webhook stored, recorded in the ledger, folded by the projection, acknowledged by each store.
STAGES = """
SELECT o.sku, o.channel_id, first.channel_id,
       extract(epoch FROM first.received_at),
       extract(epoch FROM o.changed_at),
       (SELECT extract(epoch FROM max(updated_at)) FROM availability a WHERE a.sku = o.sku),
       extract(epoch FROM o.acknowledged_at)
  FROM availability_outbox o
  LEFT JOIN LATERAL (SELECT channel_id, received_at FROM inbox_deliveries
                      WHERE position(convert_to(o.sku, 'UTF8') IN body) > 0
                      ORDER BY received_at LIMIT 1) first ON true
 WHERE o.sku = ANY(%s)
"""


STEPS = ("webhook -> stored", "stored -> ledger", "ledger -> projected")


def stages(
    conn: psycopg.Connection[Any], sold: dict[str, tuple[float, float]]
) -> dict[str, list[float]]:
    """Seconds each step took for SKUs sold once (`sold`: when, by the wall clock, and the
    seconds from the purchase to its webhook's post): the purchase to the post (by the store
    sold on: a sandbox's sender may wait before it posts, as WooCommerce's does), the post to
    the webhook stored, stored to recorded in the ledger, recorded to projected, projected to
    each store's acknowledgement (by store)."""
    rows = conn.execute(STAGES, [list(sold)]).fetchall()
    steps: dict[str, list[float]] = {}
    for sku, channel_id, seller, received, recorded, projected, acknowledged in rows:
        if None in (received, recorded, projected, acknowledged):
            continue
        bought, posted = sold[sku]
        at = [bought + posted, float(received), float(recorded), float(projected)]
        if channel_id == "shopify":  # the SKU's steps once, not once per store
            for name, (start, end) in zip(STEPS, itertools.pairwise(at), strict=True):
                steps.setdefault(name, []).append(end - start)
            steps.setdefault(f"purchase -> webhook on {seller}", []).append(posted)
        steps.setdefault(f"projected -> {channel_id}", []).append(float(acknowledged) - at[-1])
    return steps


def pending(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM availability_outbox WHERE position > pushed_position) "
        "+ (SELECT count(*) FROM push_submissions)"
    ).fetchone()
    return int(row[0]) if row else 0


def converge(conn: psycopg.Connection[Any], timeout: float) -> float | None:
    """Seconds until nothing is pending for any store (None: not within `timeout`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if pending(conn) == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def bare_call(table: dict[str, Any], sku: str, rounds: int) -> float:
    """The median of `rounds` pushes of one SKU through a gateway of its own (no gate)."""
    config = Config.model_validate({"channels": [table]}).channels[0]
    gateway = gateway_for(config, UNGATED)
    assert gateway is not None
    try:
        gateway.push([Push(sku, 5, 1)])  # the lookup, cached from here on
        times = []
        for n in range(rounds):
            started = time.perf_counter()
            gateway.push([Push(sku, n % 5, n + 2, acknowledged=(n - 1) % 5)])
            times.append(time.perf_counter() - started)
        return statistics.median(times)
    finally:
        gateway.close()


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def invsync_run(
    database_url: str,
    redis_url: str,
    config: Path,
    port: int,
    *,
    log: Path | None,
    cpus: list[int] | None = None,
) -> Iterator[None]:
    """`invsync run`: the API, webhooks, intake workers, projections and pushers; its log kept
    in `log` (None: dropped); on `cpus` if given (the processes it starts inherit them)."""
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": database_url,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_HTTP_PORT": str(port),
        "INVSYNC_QUEUE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
        # Pools of 4 at most (10 by default): the server is shared, and one asked for more
        # connections than it has left stops invsync run before it measures anything.
        "INVSYNC_DB_POOL_MAX": os.environ.get("INVSYNC_DB_POOL_MAX", "4"),
    }
    invsync = str(Path(sys.executable).with_name("invsync"))
    kept = log.open("w") if log is not None else None
    stderr = subprocess.DEVNULL if kept is None else kept
    process = subprocess.Popen([invsync, "run"], env=env, stderr=stderr)
    if cpus:
        os.sched_setaffinity(process.pid, cpus)
    try:
        deadline = time.monotonic() + 60
        while not ready(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("invsync run never answered /readyz: see its --log")
            time.sleep(0.2)
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a drain's turn outlasted the wait: measured already
            process.kill()
            process.wait()
        if kept is not None:
            kept.close()


def run(
    server_url: str, redis_url: str, *, seconds: float, rate: int, log: Path | None, pin: bool
) -> dict[str, Any]:
    port = free_port()
    sandbox_cpus, invsync_cpus = split_cores(sorted(os.sched_getaffinity(0)), pin=pin)
    with (
        scratch_database(server_url) as url,
        hosted(port, sandbox_cpus) as window,
        tempfile.TemporaryDirectory() as folder,
        # One connection for the whole run: the server is shared, and one asked for later may
        # find it full.
        psycopg.connect(url, autocommit=True) as watch,
    ):
        ledger = Ledger(env=eventsourcing_env(url))
        channels = window.stores
        config = configuration(Path(folder), channels)
        ledger.record_batch([change(ChangeKind.RECEIPT, s, opening(s), "bench") for s in SKUS])
        # The hot probes' record: the most units sold (recorded, then received back).
        for sku in HOT:
            ledger.record_batch([change(ChangeKind.SALE, sku, 1, "bench") for _ in range(500)])
            ledger.record(change(ChangeKind.RECEIPT, sku, 500, "bench"))
        tabled = {t["id"]: t for t in tables(channels)}
        baseline = {c.id: bare_call(tabled[c.id], "HOT-1", 3 if c.apart else 10) for c in channels}
        result: dict[str, Any] = {"baseline": baseline, "rates": rates(config), "pinned": pin}
        started = time.monotonic()
        with invsync_run(url, redis_url, config, port, log=log, cpus=invsync_cpus):
            result["opening_converged"] = converge(watch, 120)
            shoppers = Shoppers(window)
            result["events"] = under_load(ledger, shoppers, seconds, rate)
            window.drain(TIMEOUT)
            result["converged"] = converge(watch, 120)
            for n in range(10):  # single sales in a quiet store
                time.sleep(2.5)
                shoppers.buy("cold, quiet store", COLD[n])
                window.drain(5)
            before = {c.id: writes(window.log(c.id), c) for c in channels}
            result["selling"] = hot_sales(ledger)
            converge(watch, 120)
            logs = {c.id: window.log(c.id) for c in channels}
            result["calls"] = {c.id: writes(logs[c.id], c) - before[c.id] for c in channels}
        ledger.close()
        probes = window.probes()
        result["probes"] = [(p["cls"], p["seen"], p["posted"]) for p in probes["done"]]
        result["missed"] = probes["missed"]
        once = {
            p["sku"]: (p["bought_at"], p["posted"])
            for p in probes["done"]
            if p["cls"] in ("cold", "at risk") and p["posted"] is not None
        }
        result["stages"] = stages(watch, once)
        result["busiest"] = {c.id: busiest(logs[c.id], started) for c in channels}
        result["throttled"] = {c.id: logs[c.id].count(None, 429) for c in channels}
        result["overdrawn"] = {c.id: overdrawn(logs[c.id], started) for c in channels if c.apart}
        result["apart"] = [c.id for c in channels if c.apart]
        return result


def split_cores(cores: list[int], *, pin: bool) -> tuple[list[int] | None, list[int] | None]:
    """The cores for the sandboxes' process and for invsync run (None: wherever the kernel puts
    them). Pinned, the sandboxes get the last core and invsync run (with the processes it
    starts) the others; this process and PostgreSQL are never pinned. One core: nothing to
    split."""
    if not pin or len(cores) < 2:
        return None, None
    return cores[-1:], cores[:-1]


def under_load(ledger: Ledger, shoppers: Shoppers, seconds: float, rate: int) -> int:
    """Probe sales for `seconds` while `rate` ledger events a second change the background
    SKUs; the events recorded meanwhile."""
    stop, counted = threading.Event(), [0]
    load = threading.Thread(target=traffic, args=(ledger, stop, rate, counted))
    load.start()
    time.sleep(10)  # the hot set forms, the pushers settle in
    events_before = counted[0]
    probes_under_load(shoppers, seconds, 0.25)
    stop.set()
    load.join()
    return counted[0] - events_before


def hot_sales(ledger: Ledger) -> float:
    """1,000 sales on one hot SKU in 10 s, on their schedule; the seconds they took."""
    selling = time.monotonic()
    for n in range(100):
        ledger.record_batch([change(ChangeKind.SALE, "HOT-1", 1, "bench") for _ in range(10)])
        time.sleep(max(0.0, selling + (n + 1) * 0.1 - time.monotonic()))
    return time.monotonic() - selling


def writes(log: CallLog, store: StoreInfo) -> int:
    """The calls in `log` that set stock."""
    return sum(log.count(op) for op in store.writes)


def busiest(log: CallLog, since: float) -> dict[str, int]:
    """The calls a store answered (every operation) in its busiest second since `since`, by
    operation: a sliding second, as a channel counts them."""
    calls = sorted((t, op) for t, op, _ in log.entries() if t >= since)
    most, start, end = 0, 0, 0
    for n, (moment, _) in enumerate(calls):
        while moment - calls[start][0] >= 1.0:
            start += 1
        if n - start + 1 > most:
            most, end = n - start + 1, n
    return dict(Counter(op for _, op in calls[end - most + 1 : end + 1]))


def overdrawn(log: CallLog, since: float) -> dict[str, int]:
    """Amazon's count: calls that found their operation's token bucket empty (its documented
    rate and burst, as the sandbox holds them), by operation."""
    found: dict[str, int] = {}
    for operation, rate in QUOTAS.items():
        times = sorted(t for t, op, _ in log.entries() if t >= since and op == operation)
        tokens, last = float(rate.burst), since
        for moment in times:
            tokens = min(rate.burst, tokens + (moment - last) * rate.rate)
            last = moment
            if tokens < 1:
                found[operation] = found.get(operation, 0) + 1
            else:
                tokens -= 1
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(result: dict[str, Any], seconds: float) -> None:
    apart = set(result["apart"])
    baseline = result["baseline"]
    bare = statistics.median(v for k, v in baseline.items() if k not in apart)
    print(f"\n{result['events']:,} ledger events in {seconds:.0f} s (plus the probes' webhooks)")
    print(
        "bare gateway call (baseline): "
        + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in baseline.items())
    )
    print(f"rates (calls/s): {result['rates']}")
    classes = ["hot", "cold", "at risk", "cold, quiet store"]
    unposted = sum(posted is None for _, _, posted in result["probes"])
    print(f"windows from each webhook's post ({unposted} probes whose post was not found left out)")
    for cls in classes:
        of = [(seen, at) for c, seen, at in result["probes"] if c == cls and at is not None]
        every = [max(v for k, v in seen.items() if k not in apart) - posted for seen, posted in of]
        if every:
            p50, p99 = percentile(every, 0.5), percentile(every, 0.99)
            print(
                f"webhook -> every other store, {cls:<18} {len(every):>3} sales  p50 {p50:.3f} s"
                f"  p99 {p99:.3f} s  (p50 / bare call {p50 / bare:.1f})"
            )
        for store in sorted({k for seen, _ in of for k in seen}):
            webhook = [seen[store] - posted for seen, posted in of if store in seen]
            purchase = [seen[store] for seen, _ in of if store in seen]
            print(
                f"   {store + (' (apart)' if store in apart else ''):<16} p50"
                f" {percentile(webhook, 0.5):.3f} s  p99 {percentile(webhook, 0.99):.3f} s"
                f"   (from the purchase: {percentile(purchase, 0.5):.3f} s /"
                f" {percentile(purchase, 0.99):.3f} s)"
            )
    print("where the time went under load (cold and at-risk probes, median / p99):")
    stages = result["stages"]
    order = [*sorted(s for s in stages if s.startswith("purchase")), *STEPS]
    for step in [*order, *sorted(s for s in stages if s not in order)]:
        if spans := stages.get(step):
            print(f"   {step:<32} {percentile(spans, 0.5):.3f} s / {percentile(spans, 0.99):.3f} s")
    missed = result["missed"]
    print(f"{len(missed)} probes not seen within {TIMEOUT:.0f} s; a few (store: shows, expected):")
    for cls, sku, store, shows, expected in missed[:: max(1, len(missed) // 8)]:
        print(f"   {cls} {sku} {store}: {shows}, <= {expected}")
    print(f"backlog converged {result['converged']} s after the load stopped")
    print(f"1,000 sales of one hot SKU recorded in {result['selling']:.1f} s")
    for store, calls in result["calls"].items():
        ops, limit = result["busiest"][store], result["rates"][store]
        busiest = sum(ops.values())
        violations = int(busiest > limit)
        if store in result["overdrawn"]:  # Amazon counts each operation's bucket apart
            violations = sum(result["overdrawn"][store].values())
        print(
            f"{store}: {calls} calls for 1,000 sales on one hot SKU (ratio {calls / 1000:.3f};"
            f" target <= 50); busiest second {busiest} calls (limit {limit:g}, violations"
            f" {violations}: {ops}); {result['throttled'][store]} answered 429"
        )


def options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--log", type=Path, help="keep invsync run's log in this file")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,  # on 2 cores it halved the p50s under load (README)
        help="the sandboxes on the last core, invsync run on the others (default)",
    )
    return parser


def main() -> None:
    args = options().parse_args()
    server = os.environ.get(
        "INVSYNC_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("INVSYNC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    result = run(
        server, redis_url, seconds=args.seconds, rate=args.rate, log=args.log, pin=args.pin
    )
    report(result, args.seconds)


if __name__ == "__main__":
    main()
