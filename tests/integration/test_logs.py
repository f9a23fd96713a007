"""Structured logs: `invsync run` writing to a file (not a terminal) logs JSON lines, and the
lines of a real delivery carry its channel, delivery id, SKU and ledger event; on a terminal the
same ids follow a readable line."""

from __future__ import annotations

import json
import logging
import os
import pty
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from interfaces.cli.logs import formatter_for
from tests.channels import shopify_headers, shopify_order
from tests.helpers import random_sku
from tests.integration.intake_fixtures import SHOPIFY_SECRET, free_port, wait_until


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_delivery_logs_json_lines_with_its_channel_delivery_sku_and_event(
    database_url, redis_url, tmp_path
):
    config = tmp_path / "invsync.toml"
    config.write_text(
        f'[[channels]]\nid = "shop"\nkind = "shopify"\nwebhook_secrets = ["{SHOPIFY_SECRET}"]\n'
    )
    port = free_port()
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": database_url,
        "INVSYNC_REDIS_URL": redis_url,
        "INVSYNC_CONFIG": str(config),
        "INVSYNC_HTTP_PORT": str(port),
        "INVSYNC_QUEUE_NAMESPACE": f"logs-{uuid.uuid4().hex[:8]}",
        "INVSYNC_DB_POOL_MAX": "3",
    }
    stderr = tmp_path / "stderr"
    api = f"http://127.0.0.1:{port}"
    sku = random_sku()
    with stderr.open("w") as written:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("invsync")), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=written,
        )
        try:
            wait_until(lambda: _ready(api) or process.poll() is not None, timeout=90, every=0.2)
            assert process.poll() is None, stderr.read_text()[-3000:]
            receipt = {"kind": "receipt", "sku": sku, "location": "main", "quantity": 5}
            receipt["business_key"] = f"test:{uuid.uuid4()}"
            assert httpx.post(f"{api}/api/v1/stock-changes", json=receipt).status_code == 201
            _deliver(api, shopify_order(9001, [(1, sku, 2)]))
            _deliver(api, b'{"id": "not an order"}')
            wait_until(lambda: _parked(stderr) and _recorded(stderr, sku), timeout=30)
            events = httpx.get(f"{api}/api/v1/skus/{sku}/history?kind=sale").json()["events"]
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)

    lines = _lines(stderr)  # every line is JSON: none of uvicorn's or dramatiq's is left plain
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    [sale] = _recorded(stderr, sku)
    assert sale["channel"] == "shop"
    assert sale["level"] == "INFO"
    assert sale["logger"] == "application.intake_processing"
    assert f"sale of 2 x {sku}" in sale["message"]
    assert isinstance(sale["delivery_id"], int)
    assert [event["business_key"] for event in events] == [sale["event_id"]]
    [parked] = _parked(stderr)
    assert (parked["channel"], parked["level"]) == ("shop", "WARNING")
    assert parked["delivery_id"] == sale["delivery_id"] + 1
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)


def _deliver(api: str, body: bytes) -> None:
    headers = shopify_headers(SHOPIFY_SECRET, body, "orders/create", uuid.uuid4().hex)
    assert httpx.post(f"{api}/webhooks/shop", content=body, headers=headers).status_code == 200


def _recorded(stderr: Path, sku: str) -> list[dict[str, Any]]:
    return [line for line in _lines(stderr) if line.get("sku") == sku and "event_id" in line]


def _parked(stderr: Path) -> list[dict[str, Any]]:
    return [line for line in _lines(stderr) if "parked for review" in line["message"]]


def _ready(api: str) -> bool:
    try:
        return httpx.get(f"{api}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_on_a_terminal_a_line_is_readable_with_its_ids_after_it():
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        formatter = formatter_for(terminal)
    os.close(leader)
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "INFO", "msg": "recorded", "channel": "shop", "sku": "A-1"}
    )
    line = formatter.format(record)
    assert line.endswith(" INFO x recorded [channel=shop sku=A-1]")
    assert not line.startswith("{")
