"""What the orders-poll tests share: a channel's table for a sandbox, one poll of its orders
into a running intake, and waiting until intake has applied everything stored."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg

from domain.stock import ChangeKind
from infrastructure.channels.gateway import UNGATED
from infrastructure.channels.kinds import api_for
from infrastructure.config import Config
from infrastructure.reconcile.orders import OrdersPolled, poll_orders
from tests.helpers import change
from tests.integration.intake_fixtures import RunningIntake, wait_until

OVERLAP = timedelta(seconds=120)


def channel_id(kind: str) -> str:
    # Not `random`: Hypothesis seeds it alike for every example.
    return f"{kind}-poll-{uuid.uuid4().hex[:10]}"


def config_of(table: dict[str, Any]) -> Config:
    """The configuration of one channel (pushing off: these tests watch intake alone)."""
    channel = {**table, "push": {"enabled": False}}
    erp = {"id": "erp", "kind": "internal", "webhook_secrets": ["erp"]}
    return Config.model_validate({"channels": [channel, erp]})


def stocked(ledger: Any, sku: str, units: int = 10) -> None:
    """Receive `units` of `sku` into the ledger, so the channel's orders have stock to sell."""
    ledger.record(change(ChangeKind.RECEIPT, sku, units))


def levels(queries: Any, sku: str) -> tuple[int, int]:
    """What the ledger holds of `sku`: units on hand, and of them committed to orders."""
    totals = queries.get_item(sku).totals
    return totals.on_hand, totals.committed


def poll(running: RunningIntake, channel: str, *, since: datetime | None = None) -> OrdersPolled:
    """One poll of `channel`'s orders into `running`'s intake, through an ungated gateway."""
    table = running.intake.router.channel(channel)
    assert table is not None
    gateway = api_for(table, UNGATED)
    try:
        return poll_orders(
            table,
            database_url=running.intake.database_url,
            gateway=gateway,
            nudge=running.intake.hint,
            overlap=OVERLAP,
            since=since,
        )
    finally:
        if gateway is not None:
            gateway.close()


def found_once(running: RunningIntake, channel: str, queries: Any, sku: str) -> None:
    """A sale of 3 of `sku` (10 on hand) whose webhook was lost is committed by the next poll,
    and a second poll within the overlap finds it again and stores nothing new."""
    assert levels(queries, sku) == (10, 0)
    first = poll(running, channel)
    wait_until(lambda: levels(queries, sku) == (10, 3))
    again = poll(running, channel)
    settled(running.intake.database_url, channel)
    assert (first.found, first.stored) == (1, 1)
    assert (again.found, again.stored) == (1, 0)  # within the overlap, stored before
    assert again.watermark >= first.watermark
    assert levels(queries, sku) == (10, 3)


def unprocessed(database_url: str, channel: str) -> list[tuple[str, str, str | None]]:
    """The deliveries stored for `channel` not applied yet: (key, state, reason)."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT delivery_key, state, reason FROM inbox_deliveries WHERE channel_id = %s "
            "AND state <> 'processed'",
            [channel],
        ).fetchall()


def settled(database_url: str, channel: str) -> None:
    """Wait until intake has applied every delivery stored for `channel`."""
    try:
        wait_until(lambda: not unprocessed(database_url, channel))
    except AssertionError:
        raise AssertionError(f"not applied: {unprocessed(database_url, channel)}") from None
