"""Ledger throughput against baselines measured in the same run, on the same database.

    make bench            (or: .venv/bin/python benchmarks/ledger.py [--runs 3])

Targets (issue 2): batch apply over 10,000 SKUs >= 10,000 events/s and >= 0.6 x the library's
own 100-event save() ceiling; one hot SKU >= 0.5 x the uniform figure; single-event commands
shown beside a raw psycopg single-row autocommit INSERT. Each figure is the median of --runs
rounds; each ratio the median of
its per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from psycopg.conninfo import make_conninfo

from application.ledger import Ledger
from domain.stock import ChangeKind, StockChange
from infrastructure.postgres import eventsourcing_env
from interfaces.composition import migrate

BATCH = 1_000


class Tally(Aggregate):
    """The baseline's aggregate: the smallest event the library can store."""

    class Counted(Aggregate.Event):
        n: int

        def apply(self, aggregate: Tally) -> None:
            aggregate.n = self.n

    def __init__(self) -> None:
        self.n = 0


class SaveCeiling(Application[uuid.UUID]):
    name = "SaveCeiling"


def library_ceiling(url: str, saves: int = 100) -> float:
    """Events/s when every save() carries 100 events: the library's batching ceiling."""
    app = SaveCeiling(
        env={
            **eventsourcing_env(url),
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "CREATE_TABLE": "y",
        }
    )
    try:
        started = time.perf_counter()
        for _ in range(saves):
            tally = Tally()
            for n in range(99):
                tally.trigger_event(Tally.Counted, n=n)
            app.save(tally)
        return saves * 100 / (time.perf_counter() - started)
    finally:
        app.close()


def raw_insert_rate(url: str, rows: int = 3_000) -> float:
    """Single-row autocommit INSERTs per second over one connection."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_rows (id bigserial PRIMARY KEY, body text)")
        started = time.perf_counter()
        for n in range(rows):
            conn.execute(
                "INSERT INTO bench_rows (body) VALUES (%s) RETURNING id", [str(n)], prepare=True
            )
        return rows / (time.perf_counter() - started)


def _change(kind: ChangeKind, sku: str) -> StockChange:
    return StockChange(
        kind=kind,
        sku=sku,
        location="main",
        quantity=1,
        business_key=f"bench:{uuid.uuid4()}",
        source="bench",
        occurred_at=datetime.now(UTC),
    )


def batch_rate(ledger: Ledger, skus: list[str], events: int) -> float:
    """Ledger events/s recording `events` sales and receipts in batches of BATCH."""
    kinds = (ChangeKind.RECEIPT, ChangeKind.SALE)
    batches = [
        [_change(random.choice(kinds), random.choice(skus)) for _ in range(BATCH)]
        for _ in range(events // BATCH)
    ]
    started = time.perf_counter()
    for batch in batches:
        ledger.record_batch(batch)
    return events / (time.perf_counter() - started)


def single_rate(ledger: Ledger, skus: list[str], commands: int = 2_000) -> float:
    changes = [_change(ChangeKind.RECEIPT, random.choice(skus)) for _ in range(commands)]
    started = time.perf_counter()
    for change in changes:
        ledger.record(change)
    return commands / (time.perf_counter() - started)


def measure_round(ledger: Ledger, url: str, uniform: list[str], events: int) -> dict[str, float]:
    """One run of every figure, back to back, so each ratio compares like with like."""
    return {
        "ceiling": library_ceiling(url),
        "uniform": batch_rate(ledger, uniform, events),
        "hot": batch_rate(ledger, ["hot"], events // 2),
        "raw": raw_insert_rate(url),
        "single": single_rate(ledger, uniform),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=50_000, help="events per batch run")
    parser.add_argument("--skus", type=int, default=10_000)
    args = parser.parse_args()

    server = os.environ.get(
        "INVSYNC_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"invsync_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(server, dbname=name)
    try:
        migrate(url)
        ledger = Ledger(env=eventsourcing_env(url))
        uniform = [f"u-{n}" for n in range(args.skus)]
        # Warm-up: every SKU exists and sits in the writer's cache, as in a running worker.
        for start in range(0, len(uniform), BATCH):
            ledger.record_batch(
                [_change(ChangeKind.RECEIPT, s) for s in uniform[start : start + BATCH]]
            )

        rounds = [measure_round(ledger, url, uniform, args.events) for _ in range(args.runs)]
        ledger.close()
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def median(figure: str) -> float:
        return statistics.median(r[figure] for r in rounds)

    def ratio(figure: str, base: str) -> float:
        return statistics.median(r[figure] / r[base] for r in rounds)

    def row(label: str, figure: str, note: str = "") -> None:
        shown = ", ".join(f"{r[figure]:,.0f}" for r in rounds)
        print(f"{label:<42}{median(figure):>9,.0f}/s   runs: {shown}  {note}")

    print(f"medians of {args.runs} rounds; batches of {BATCH} changes over {args.skus:,} SKUs")
    row("library save() of 100 events (baseline)", "ceiling")
    spread, spread_ratio = median("uniform"), ratio("uniform", "ceiling")
    row(
        "ledger batch, uniform over SKUs",
        "uniform",
        f"ratio {spread_ratio:.2f} (targets: >= 10,000/s, ratio >= 0.6)",
    )
    hot_ratio = ratio("hot", "uniform")
    row("ledger batch, one hot SKU", "hot", f"ratio to uniform {hot_ratio:.2f} (target >= 0.5)")
    row("raw psycopg autocommit INSERT (baseline)", "raw")
    row("ledger single-event commands", "single", f"ratio {ratio('single', 'raw'):.2f}")
    passed = spread >= 10_000 and spread_ratio >= 0.6 and hot_ratio >= 0.5
    print("targets:", "MET" if passed else "NOT MET")


if __name__ == "__main__":
    main()
