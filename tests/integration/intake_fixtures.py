"""A running invsync intake for tests: a real uvicorn server on a free port, real workers."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from infrastructure.config import Config
from infrastructure.queue import Pool
from interfaces.composition import Intake, build_intake
from interfaces.http.api import Api
from interfaces.http.app import create_app

SHOPIFY_SECRET = "shpss_test_secret"
ERP_SECRET = "erp-secret"
WOO_SECRET = "wc_webhook_secret"


def channel_config(**extra_channels: dict) -> Config:
    channels = [
        {
            "id": "shopify-us",
            "kind": "shopify",
            "webhook_secrets": ["old-secret", SHOPIFY_SECRET],
            "default_location": "main",
        },
        {"id": "erp", "kind": "internal", "webhook_secrets": [ERP_SECRET]},
        {"id": "woo-eu", "kind": "woocommerce", "webhook_secrets": [WOO_SECRET]},
        *extra_channels.values(),
    ]
    return Config.model_validate({"channels": channels, "max_webhook_bytes": 65536})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningIntake:
    url: str
    intake: Intake


@contextmanager
def running_intake(
    ledger,
    database_url: str,
    redis_url: str,
    config: Config | None = None,
    *,
    workers: bool = True,
    namespace: str | None = None,
    pools: Sequence[Pool] = (Pool("", 4),),
    **app_options: Any,
) -> Iterator[RunningIntake]:
    """The app over `ledger` and a fresh intake (its workers' `pools`), served by uvicorn;
    `app_options` go to `create_app` (rules, reservations, tokens, ...)."""
    intake = build_intake(
        database_url,
        redis_url,
        config or channel_config(),
        ledger,
        pools=pools,
        namespace=namespace or f"test-{uuid.uuid4().hex[:8]}",
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Api(ledger, intake=intake, **app_options)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if workers:
        intake.workers.start()
    try:
        wait_until(lambda: server.started, timeout=10)
        yield RunningIntake(f"http://127.0.0.1:{port}", intake)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if workers:
            intake.workers.stop()
        intake.close()


def wait_until(condition: Callable[[], object], timeout: float = 20, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")
