"""Webhook intake throughput and latency, against the machine's ceiling measured in the same run.

    make bench-intake     (or: .venv/bin/python -m benchmarks.intake [--runs 3])

Needs `wrk` (Debian package `wrk`) as the full-speed load generator, PostgreSQL and Redis (the
INVSYNC_BENCH_* URLs, default this machine's). The baseline is the strongest plain alternative:
a bare Starlette endpoint that reads the body and checks its Shopify HMAC, storing nothing, on
uvicorn with uvloop and httptools (`bare_app.py`). Prints, as medians of --runs:
1. signed Shopify webhooks stored durably per second (rows counted after the server stopped,
   never more than were answered 2xx) with 64 connections, beside the baseline's requests per
   second in the same run (target ratio >= 0.5, 0 non-2xx);
2. latency at the client at a paced 1,000 requests/s, open loop (`paced.py`; target p99 <=
   20 ms), invsync's and the baseline's;
3. webhook-to-ledger latency at 500 events/s for --latency-seconds (target p99 <= 500 ms);
4. applied throughput draining a backlog with one worker process (target >= 5,000 events/s).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from application.ledger import Ledger
from benchmarks import paced
from domain.stock import ChangeKind, StockChange
from infrastructure.postgres import eventsourcing_env
from interfaces.composition import migrate

SECRET = "bench-secret"
SKUS = [f"BENCH-{n}" for n in range(100)]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def signed_orders(count: int, first_id: int) -> list[tuple[str, str]]:
    orders = []
    for n in range(count):
        order_id = first_id + n
        body = json.dumps(
            {
                "id": order_id,
                "created_at": "2026-11-28T10:00:00Z",
                "line_items": [{"id": 1, "sku": SKUS[n % len(SKUS)], "quantity": 1}],
            },
            separators=(",", ":"),
        )
        digest = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()
        orders.append((body, base64.b64encode(digest).decode()))
    return orders


def lua_script(folder: Path, orders: list[tuple[str, str]], rate: int | None) -> tuple[Path, str]:
    """A wrk script sending `orders` (at `rate` a second per wrk's `delay()`, else at full
    speed), each with a delivery id of its own: the script's prefix, "-", a number."""
    data = folder / f"orders-{uuid.uuid4().hex[:6]}.lua"
    rows = ",\n".join(f"{{{json.dumps(body)}, {json.dumps(sig)}}}" for body, sig in orders)
    data.write_text(f"return {{\n{rows}\n}}\n")
    script = folder / f"load-{uuid.uuid4().hex[:6]}.lua"
    prefix = uuid.uuid4().hex[:8]
    # wrk waits `delay` between a connection's requests, on top of each request's own time:
    # aim a tenth high so the achieved rate reaches the one asked for (it is printed).
    delay = "" if rate is None else f"function delay() return {64 * 1000 / (rate * 1.1)} end\n"
    script.write_text(f"""
local orders = dofile("{data}")
local threads, index = 0, 0
function setup(thread) thread:set("offset", threads); threads = threads + 1 end
function init(args) i = offset; step = 2 end
function request()
  local order = orders[(i % #orders) + 1]
  i = i + step
  return wrk.format("POST", "/webhooks/shop", {{
    ["Content-Type"] = "application/json", ["X-Shopify-Topic"] = "orders/create",
    ["X-Shopify-Hmac-Sha256"] = order[2], ["X-Shopify-Webhook-Id"] = "{prefix}-" .. i}},
    order[1])
end
{delay}""")
    return script, prefix


def run_wrk(url: str, script: Path, seconds: int) -> tuple[tuple[float, float, int, float], int]:
    """Requests/s, p99 latency in ms, the count of non-2xx answers and the seconds it ran; and
    the count of requests answered."""
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    answered, ran = re.search(r"(\d+) requests in ([\d.]+)s", out).groups()  # type: ignore[union-attr]
    return (rps, p99, int(errors.group(1)) if errors else 0, float(ran)), int(answered)


@contextmanager
def server(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """The server `command` runs, once it answers on `port`; stopped as Ctrl-C stops it.

    Raises:
        RuntimeError: it ended or did not answer within 60 s (on a shared machine, PostgreSQL
            may have had no connection left), with the end of what it wrote.
    """
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not _answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    errors.seek(0)
                    said = errors.read()[-2000:].decode(errors="replace")
                    raise RuntimeError(f"{command[0]} did not start serving: {said}")
                time.sleep(0.2)
            yield url
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _answers(url: str) -> bool:
    try:
        httpx.post(f"{url}/webhooks/shop", content=b"", timeout=1)
    except httpx.TransportError:
        return False
    return True


def pending(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM inbox_deliveries WHERE state = 'pending'"
        ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--latency-seconds", type=int, default=60)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument(
        "--http-workers", type=int, default=1, help="invsync's INVSYNC_HTTP_WORKERS"
    )
    parser.add_argument(
        "--before", default="", help="another checkout of invsync, measured in the same runs"
    )
    parser.add_argument("--only", choices=["intake", "latency", "backlog"], default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("benchmarks/intake.py needs wrk: apt-get install wrk")

    pg = os.environ.get(
        "INVSYNC_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("INVSYNC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    phases = {"intake": report_intake, "latency": report_latency, "backlog": report_backlog}
    for phase_name, phase in phases.items():
        if args.only in (None, phase_name):
            # A database of its own per phase: one phase's leftovers are no backlog for the next.
            folder = Path(tempfile.mkdtemp(prefix="invsync-bench-"))
            try:
                with fresh_database(pg) as database_url:
                    env = environment(folder, database_url, redis_url)
                    phase(args, folder, env, database_url)
            finally:
                shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"invsync_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = make_conninfo(server_url, dbname=name)
    try:
        migrate(database_url)
        ledger = Ledger(env=eventsourcing_env(database_url))
        now = datetime.now(UTC)
        ledger.record_batch(
            [
                StockChange(
                    kind=ChangeKind.RECEIPT,
                    sku=sku,
                    location="main",
                    quantity=1_000_000,
                    business_key=f"seed:{sku}",
                    source="bench",
                    occurred_at=now,
                )
                for sku in SKUS
            ]
        )
        ledger.close()
        yield database_url
    finally:
        if os.environ.get("INVSYNC_BENCH_KEEP"):
            print(f"kept database {name}")
        else:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environment(folder: Path, database_url: str, redis_url: str) -> dict[str, str]:
    config = folder / "invsync.toml"
    config.write_text(
        f'[[channels]]\nid = "shop"\nkind = "shopify"\nwebhook_secrets = ["{SECRET}"]\n'
    )
    return {
        **os.environ,
        "INVSYNC_DATABASE_URL": database_url,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_QUEUE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
    }


def line(label: str, runs: list[tuple[float, float, int, float]], note: str = "") -> None:
    rps = statistics.median(r[0] for r in runs)
    p99 = statistics.median(r[1] for r in runs)
    print(f"{label:<52}{rps:>9,.0f} req/s   p99 {p99:6.1f} ms   {note}")


BARE = "bare Starlette+HMAC, uvloop+httptools"


def bare_server(env: dict[str, str], _workers: int = 1) -> tuple[list[str], dict[str, str], int]:
    port = free_port()
    command = [
        str(BIN / "uvicorn"),
        "benchmarks.bare_app:app",
        "--port",
        str(port),
        "--no-access-log",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]
    return command, {**env, "BENCH_WEBHOOK_SECRET": SECRET}, port


def our_server(env: dict[str, str], workers: int) -> tuple[list[str], dict[str, str], int]:
    port = free_port()
    ours = {**env, "INVSYNC_HTTP_PORT": str(port), "INVSYNC_HTTP_WORKERS": str(workers)}
    return [str(BIN / "invsync"), "run", "--no-workers"], ours, port


def stored(database_url: str, prefix: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM inbox_deliveries WHERE delivery_key LIKE %s", [f"{prefix}-%"]
        ).fetchone()[0]


def full_speed(
    folder: Path, url: str, seconds: int, first_id: int
) -> tuple[tuple[float, float, int], str, int]:
    """wrk at full speed with orders no run has sent yet: its figures, the keys' prefix, and the
    count of 2xx answers."""
    script, prefix = lua_script(folder, signed_orders(5_000, first_id), None)
    figures, answered = run_wrk(url, script, seconds)
    return figures, prefix, answered - figures[2]


def variants(args: argparse.Namespace, env: dict[str, str]) -> dict[str, dict[str, str]]:
    """invsync's environment by label: this checkout's, and with --before another's code
    (PYTHONPATH), each measured in the same runs."""
    found = {"invsync": env}
    if args.before:
        found[f"invsync at {args.before}"] = {**env, "PYTHONPATH": args.before}
    return found


def report_intake(
    args: argparse.Namespace, folder: Path, env: dict[str, str], database_url: str
) -> None:
    bare: list[tuple[float, float, int, float]] = []
    ours: dict[str, list[tuple[float, float, int, float]]] = {}
    ratios: dict[str, list[float]] = {}
    lost = 0
    for run in range(args.runs):
        with server(*bare_server(env)) as url:
            bare.append(full_speed(folder, url, args.seconds, 1)[0])
        for n, (label, variant) in enumerate(variants(args, env).items()):
            with server(*our_server(variant, args.http_workers)) as url:
                figures, prefix, answered = full_speed(
                    folder, url, args.seconds, (run * 10 + n) * 10**6
                )
            rows = stored(database_url, prefix)  # after the server stopped: what is durable
            lost += max(0, answered - rows)
            durable = (min(rows, answered) / figures[3], figures[1], figures[2], figures[3])
            ours.setdefault(label, []).append(durable)
            ratios.setdefault(label, []).append(durable[0] / bare[-1][0])
            print(
                f"  run {run + 1}: baseline {bare[-1][0]:,.0f}/s, {label} {durable[0]:,.0f}/s "
                f"(load average {_load()})"
            )
    print(
        f"medians of {args.runs} runs, 64 connections, {args.seconds} s each, "
        f"invsync with INVSYNC_HTTP_WORKERS={args.http_workers}"
    )
    line(f"{BARE} (baseline)", bare)
    for label, runs in ours.items():
        line(
            f"{label} stored durably",
            runs,
            f"ratio {statistics.median(ratios[label]):.2f} (target >= 0.5; runs "
            f"{', '.join(f'{r:.2f}' for r in ratios[label])}), "
            f"non-2xx {sum(o[2] for o in runs)}",
        )
    print(f"answered 2xx but not stored: {lost}")
    report_paced(args, env, database_url)


def report_paced(args: argparse.Namespace, env: dict[str, str], database_url: str) -> None:
    """Latency at the client, open loop at 1,000 requests/s (paced.py), invsync and the
    baseline alike, each run measuring every server in turn."""
    count = 1_000 * args.seconds
    servers = [(BARE, bare_server, env)]
    servers += [(label, our_server, variant) for label, variant in variants(args, env).items()]
    measured: dict[str, list[paced.Paced]] = {}
    for run in range(args.runs):
        # Every server once a run, in turn: the runs of one number share the machine's load.
        for label, make, variant in servers:
            command, server_env, port = make(variant, args.http_workers)
            orders = signed_orders(count, 10**9 + run * count)
            prefix = uuid.uuid4().hex[:8]
            with server(command, server_env, port):
                found = paced.run("127.0.0.1", port, http_requests(orders, prefix), 1_000, 64)
            measured.setdefault(label, []).append(found)
            print(
                f"  paced run {run + 1}: {label} p99 {found.p99:.1f} ms, "
                f"achieved {found.achieved:,.0f}/s (load average {_load()})"
            )
            if make is our_server and stored(database_url, prefix) < count - found.non_2xx:
                print(f"  run {run + 1}: {label} acknowledged deliveries it did not store")
    for label, runs in measured.items():
        print(
            f"{label + ' paced 1,000 req/s':<52}"
            f"p50 {statistics.median(r.p50 for r in runs):5.1f} ms   "
            f"p99 {statistics.median(r.p99 for r in runs):5.1f} ms "
            f"(runs {', '.join(f'{r.p99:.1f}' for r in runs)}; target <= 20)   "
            f"max {max(r.worst for r in runs):5.0f} ms   "
            f"achieved {statistics.median(r.achieved for r in runs):,.0f}/s   "
            f"non-2xx {sum(r.non_2xx for r in runs)}"
        )


def _load() -> str:
    """The machine's 1-minute load average: figures taken beside other work say so."""
    return f"{os.getloadavg()[0]:.1f}"


def http_requests(orders: list[tuple[str, str]], prefix: str) -> list[bytes]:
    return [
        (
            "POST /webhooks/shop HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nX-Shopify-Topic: orders/create\r\n"
            f"X-Shopify-Hmac-Sha256: {sig}\r\nX-Shopify-Webhook-Id: {prefix}-{n}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
        for n, (body, sig) in enumerate(orders)
    ]


def report_latency(
    args: argparse.Namespace, folder: Path, env: dict[str, str], database_url: str
) -> None:
    latency_orders = signed_orders(500 * args.latency_seconds + 1_000, 10_000_000)
    paced500, _ = lua_script(folder, latency_orders, 500)
    port = free_port()
    with server(
        [str(BIN / "invsync"), "run"], {**env, "INVSYNC_HTTP_PORT": str(port)}, port
    ) as url:
        (rps, _, _, _), _ = run_wrk(url, paced500, args.latency_seconds)
        deadline = time.monotonic() + 60
        while pending(database_url) and time.monotonic() < deadline:
            time.sleep(0.5)
    with psycopg.connect(database_url) as conn:
        p50, p99, applied = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), count(*) FROM ("
            " SELECT extract(epoch FROM r.recorded_at - d.received_at) * 1000 AS ms"
            " FROM inbox_deliveries d JOIN ("
            # An order's lines are keyed shop:order:<id>:line:...: its first receipt applied it.
            "  SELECT split_part(business_key, ':', 3) AS order_id, min(recorded_at) AS recorded_at"
            "  FROM ledger_receipts WHERE business_key LIKE 'shop:order:%' GROUP BY 1"
            " ) r ON r.order_id = convert_from(d.body, 'UTF8')::jsonb->>'id'"
            " WHERE (convert_from(d.body, 'UTF8')::jsonb->>'id')::bigint >= 10000000) t"
        ).fetchone()
    print(
        f"webhook -> ledger at {rps:,.0f} events/s for {args.latency_seconds} s: "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms over {applied:,} events (target p99 <= 500 ms)"
    )


def report_backlog(
    args: argparse.Namespace, folder: Path, env: dict[str, str], database_url: str
) -> None:
    port = free_port()
    with server(
        [str(BIN / "invsync"), "run", "--no-workers"], {**env, "INVSYNC_HTTP_PORT": str(port)}, port
    ) as url:
        first = 50_000_000
        while pending(database_url) < args.backlog:  # fresh orders each round: no duplicates
            run_wrk(url, lua_script(folder, signed_orders(args.backlog, first), None)[0], 3)
            first += args.backlog
    waiting = pending(database_url)
    started = time.monotonic()
    worker = subprocess.Popen(
        # /metrics on a free port, read by none here: any other invsync worker on the machine
        # may hold the default one (9101), which stops this one at start.
        [str(BIN / "invsync"), "worker", "--threads", "8", "--metrics-port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while pending(database_url) and time.monotonic() - started < 300:
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=30)
    print(
        f"backlog of {waiting:,} deliveries applied by one worker: "
        f"{waiting / elapsed:,.0f} events/s (target >= 5,000; includes worker start-up)"
    )


if __name__ == "__main__":
    main()
