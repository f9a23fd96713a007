"""What the propagation scenarios share: waiting for what propagation does, and two worker
processes pushing one channel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from domain.allocation import ChannelRule
from domain.stock import ChangeKind
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from tests.helpers import change, random_sku


def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def pushed_by_two_workers(  # noqa: PLR0917 (a scenario's one call)
    ledger,
    database_url: str,
    redis_url: str,
    folder: Path,
    channel: Mapping[str, object],
    skus: Sequence[str],
    stock: Callable[[str], int | None],
) -> None:
    """Two `invsync worker` processes push to `channel` (its configuration table, with an `id`)
    at 3 calls a second while each of `skus` gets a receipt of 1 every 0.2 s for 6 s; returns
    once the channel shows 29 of each (30 received, less a safety buffer of 1)."""
    table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in channel.items())
    config = folder / "invsync.toml"
    config.write_text(
        f"[[channels]]\n{table}"
        "[channels.rules]\nsafety_buffer = 1\n"
        "[channels.push]\nrate_per_second = 3\nbatch_window_seconds = 0\n"
    )
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": database_url,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_QUEUE_NAMESPACE": f"rate-{random_sku()}",
    }
    # Each worker serves /metrics on a free port the system picks as it binds: two on the
    # default port, or on one picked before it binds, the second would stop at start-up and
    # leave the channel to one.
    invsync = str(Path(sys.executable).with_name("invsync"))
    command = [invsync, "worker", "--threads", "4", "--metrics-port", "0"]
    rules = (ChannelRule(str(channel["id"]), safety_buffer=1),)
    # The projection's runner connects before the workers start: two processes starting beside
    # it on a loaded machine left its first connection waiting past the pool's 1 s timeout.
    with AvailabilityRunner(eventsourcing_env(database_url), rules):
        workers = [subprocess.Popen(command, env=env) for _ in range(2)]
        try:
            for _ in range(30):
                ledger.record_batch([change(ChangeKind.RECEIPT, sku, 1) for sku in skus])
                time.sleep(0.2)
            eventually(lambda: all(stock(s) == 29 for s in skus), 30, "every SKU reaches 29")
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGINT)
            for worker in workers:
                worker.wait(timeout=30)
