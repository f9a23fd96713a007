"""Rebuilding the availability projection against the raw decode rate of the notification log,
both measured in the same run on the same database.

    make bench-rebuild    (or: .venv/bin/python benchmarks/rebuild.py [--events 1000000] [--runs 3])

Target (issue 4): a rebuild replays >= 50,000 events/s, and >= 0.5 x the rate at which the same
notifications are merely read and decoded into domain events, on at least 1,000,000 events.

The ledger is filled once through the ledger itself (receipts, sales, returns, adjustments over
--skus SKUs) and kept in the database `invsync_bench_rebuild` (or --database) for later runs
(--fresh refills it). Comparing checkouts, give each a database of its own (CREATE DATABASE ...
TEMPLATE a filled one is quicker than a fill): a rebuild swaps its checkout's tables in.
Each figure is the median of --runs rounds; the ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import UTC, datetime

import psycopg
from psycopg.conninfo import make_conninfo

from application.ledger import Ledger
from domain.allocation import ChannelRule
from domain.stock import ChangeKind, StockChange
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import Rebuild
from infrastructure.projections.rebuild import read_log
from interfaces.composition import migrate

DATABASE = "invsync_bench_rebuild"
RULES = (
    ChannelRule("shopify", share_percent=40, safety_buffer=2),
    ChannelRule("amazon", share_percent=30, safety_buffer=2, velocity_weighted=True),
    ChannelRule("ebay", share_percent=20, safety_buffer=2, velocity_weighted=True),
    ChannelRule("woo", share_percent=10, safety_buffer=1, max_quantity=50),
)
KINDS = [ChangeKind.RECEIPT, ChangeKind.SALE, ChangeKind.SALE, ChangeKind.RETURN]


def database(server_url: str, name: str, events: int, skus: int, fresh: bool) -> str:
    """The benchmark's database `name`, holding at least `events` ledger events."""
    url = make_conninfo(server_url, dbname=name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or fresh:
            conn.execute(f'CREATE DATABASE "{name}"')
    migrate(url)
    ledger = Ledger(env=eventsourcing_env(url))
    try:
        have = ledger.recorder.max_notification_id() or 0
        if have < events:
            fill(ledger, events - have, skus)
    finally:
        ledger.close()
    return url


def fill(ledger: Ledger, events: int, skus: int) -> None:
    rng = random.Random(2026)
    names = [f"bench-{n:06d}" for n in range(skus)]
    started, done = time.perf_counter(), 0
    print(f"filling the ledger with {events:,} events over {skus:,} SKUs (once) ...", flush=True)
    while done < events:
        batch = [change(rng, name, done + n) for n, name in enumerate(rng.sample(names, 1000))]
        ledger.record_batch(batch)
        done += len(batch)
        if done % 100_000 == 0:
            print(f"  {done:,} ({done / (time.perf_counter() - started):,.0f}/s)", flush=True)


def change(rng: random.Random, sku: str, n: int) -> StockChange:
    kind = rng.choice(KINDS) if n >= 20_000 else ChangeKind.RECEIPT
    return StockChange(
        kind=kind,
        sku=sku,
        location=rng.choice(["east", "west"]),
        quantity=rng.randint(1, 4) if kind is not ChangeKind.RECEIPT else rng.randint(20, 200),
        business_key=f"bench:{n}:{rng.random()}",
        source=rng.choice([r.channel_id for r in RULES]),
        occurred_at=datetime.now(UTC),
    )


def decode_rate(url: str) -> tuple[float, int]:
    """Notifications read (with the rebuild's read-ahead paging) and decoded, per second."""
    ledger = Ledger(env=eventsourcing_env(url))
    try:
        stop = ledger.recorder.max_notification_id() or 0
        decode, count = ledger.mapper.to_domain_event, 0
        started = time.perf_counter()
        for notifications in read_log(ledger, 0, stop):
            for notification in notifications:
                decode(notification)
            count += len(notifications)
        return count / (time.perf_counter() - started), count
    finally:
        ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="refill the ledger from scratch")
    parser.add_argument("--database", default=DATABASE, help="the ledger's database, kept")
    args = parser.parse_args()
    server = os.environ.get(
        "INVSYNC_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    url = database(server, args.database, args.events, args.skus, args.fresh)
    decodes, rebuilds, ratios = [], [], []
    for round_ in range(1, args.runs + 1):
        decoded, count = decode_rate(url)
        report = Rebuild(url, RULES).run()
        rebuilt = report.events_per_second
        decodes.append(decoded)
        rebuilds.append(rebuilt)
        ratios.append(rebuilt / decoded)
        print(
            f"round {round_}: {count:,} events; decode {decoded:,.0f}/s; rebuild "
            f"{report.events:,} events in {report.seconds:.1f} s = {rebuilt:,.0f}/s "
            f"({rebuilt / decoded:.2f} x decode); {len(report.differences)} quantities changed",
            flush=True,
        )
    print()
    print(f"raw decode of the notification log  {statistics.median(decodes):>10,.0f} events/s")
    print(
        f"rebuild (replay, copy, swap)        {statistics.median(rebuilds):>10,.0f} events/s"
        "   target >= 50,000"
    )
    print(
        f"rebuild / decode                    {statistics.median(ratios):>10.2f}"
        "            target >= 0.50"
    )


if __name__ == "__main__":
    main()
