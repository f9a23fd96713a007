"""What the propagation benchmarks share: a scratch database, ledger changes, the outbox's
backlog, the consistency windows the pushers recorded, and invsync's processes as deployed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from domain.stock import ChangeKind, StockChange
from infrastructure.channels.gateway import ChannelGateway
from interfaces.composition import migrate
from sandboxes.server import CallLog

RATE_PER_SECOND = float(os.environ.get("BENCH_RATE", "10"))  # each channel's calls/s


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


def pending(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM availability_outbox WHERE position > pushed_position"
        ).fetchone()
    return row[0] if row else 0


@contextmanager
def propagation_processes(
    database_url: str, redis_url: str, config: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
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
        # /metrics on free ports, read by none here: on the default ones (9101, 9102), any other
        # invsync worker or project on the machine (a test's, a benchmark's) stops these at start.
        subprocess.Popen(
            [invsync, *command, "--metrics-port", "0"], env=env, stderr=subprocess.DEVNULL
        )
        for command in (["project"], ["worker", "--threads", "8"])
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=30)
