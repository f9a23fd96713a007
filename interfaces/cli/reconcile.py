"""`invsync reconcile CHANNEL`: start a reconciliation run of a channel and follow it to its
summary (the service's workers do the work: `invsync run` or `invsync worker`), or adopt a
store connected for the first time (`--adopt`, after `--adopt --dry-run` shows what it would
record)."""

from __future__ import annotations

import time
from dataclasses import astuple
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from application.adoption import opening_counts
from application.ledger_queries import LedgerQueries
from application.outcomes import OutcomeStatus
from application.reconcile_plan import What
from domain.stock import StockChange
from infrastructure.channels.config import ChannelConfig
from infrastructure.config import load_config
from infrastructure.push.gate import ChannelGate
from infrastructure.push.memory_limits import MemoryLimits
from infrastructure.push.service import gate_policy
from infrastructure.reconcile import runs
from infrastructure.reconcile.adoption import shown_levels
from infrastructure.reconcile.runs import Run, RunStore
from infrastructure.settings import Settings
from interfaces.bootstrap import database_only, ledger_only
from interfaces.cli.common import CliError, console, errors_as_messages

# A run nobody claimed this long after it was asked for has no worker to do it.
UNCLAIMED_SECONDS = 30.0
POLL_SECONDS = 0.25


def reconcile(
    channel: str,
    sku: Annotated[
        list[str] | None, typer.Option("--sku", help="Only this SKU; repeat for several.")
    ] = None,
    orders_only: Annotated[bool, typer.Option("--orders-only", help="Poll orders only.")] = False,
    levels_only: Annotated[bool, typer.Option("--levels-only", help="Read levels only.")] = False,
    adopt: Annotated[
        bool, typer.Option("--adopt", help="Record what the channel shows of SKUs new to us.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --adopt: show what it would record.")
    ] = False,
) -> None:
    """Reconcile CHANNEL now: its missed orders enter intake, then its levels are read and
    drift is corrected or escalated. The running service's workers do the work."""
    with errors_as_messages():
        found = _reconciled_channel(channel)
        if adopt:
            _adopt(found, dry_run=dry_run)
            return
        if dry_run:
            raise CliError("--dry-run goes with --adopt (a run changes nothing it cannot undo)")
        run = _reconciled(found.id, sku or None, _what(orders_only, levels_only))
        _summary(run)
        if run.state == "failed":
            raise CliError(f"run {run.id} failed: {run.error}")


def _reconciled_channel(channel_id: str) -> ChannelConfig:
    channel = load_config(Settings.from_env().config_path).channel(channel_id)
    if channel is None:
        raise CliError(f"no channel {channel_id!r} in the configuration file")
    if not channel.reconciles:
        raise CliError(
            f"channel {channel_id!r} is not reconciled: it needs an api_base_url and "
            "[channels.reconcile] enabled = true"
        )
    return channel


def _what(orders_only: bool, levels_only: bool) -> What:
    if orders_only and levels_only:
        raise CliError("--orders-only and --levels-only exclude each other: give one or neither")
    return "orders" if orders_only else "levels" if levels_only else "both"


def _reconciled(channel_id: str, skus: list[str] | None, what: What) -> Run:
    """Ask for the run (the service's scheduler sends it within a second) and follow it to its
    end."""
    with database_only(Settings.from_env()) as database_url:
        store = RunStore(database_url, max_size=1)
        try:
            with store.connection() as conn:
                run_id = runs.request_check(conn, channel_id, skus, what=what, by="cli")
            return _watched(store, run_id)
        finally:
            store.close()


def _watched(store: RunStore, run_id: int) -> Run:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    asked_at = time.monotonic()
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"run {run_id}: queued", total=None)
        while True:
            with store.connection() as conn:
                run = runs.get(conn, run_id)
            assert run is not None
            state = f"run {run_id}: {run.state}"
            progress.update(task, total=run.steps, completed=run.step, description=state)
            if run.state in ("done", "failed"):
                return run
            if run.state == "queued" and time.monotonic() - asked_at > UNCLAIMED_SECONDS:
                raise CliError(
                    f"run {run_id} waits for a worker: start `invsync run` or `invsync worker` "
                    "(it will be worked then)"
                )
            time.sleep(POLL_SECONDS)


def _summary(run: Run) -> None:
    title = f"{run.channel_id}: run {run.id} {run.state}"
    table = Table("orders found", "applied", "SKUs read", "corrected", "escalated", title=title)
    table.add_row(*(str(n) for n in astuple(run.counts)))
    console.print(table)


def _adoption_table(channel: ChannelConfig, counts: list[StockChange], known: int) -> None:
    title = f"{channel.id}: {len(counts)} SKUs to adopt ({known} known to the ledger left alone)"
    table = Table("SKU", "opening count", title=title)
    for change in counts:
        table.add_row(change.sku, str(change.quantity))
    console.print(table)


def _adopt(channel: ChannelConfig, *, dry_run: bool) -> None:
    gate = ChannelGate(MemoryLimits(), channel.id, gate_policy(channel.push))
    with console.status(f"reading what {channel.id} shows"):
        shown = shown_levels(channel, gate)
    with ledger_only(Settings.from_env()) as ledger:
        known = LedgerQueries(ledger).known_skus(shown)
        counts = opening_counts(
            shown,
            known,
            channel_id=channel.id,
            location=channel.default_location,
            at=datetime.now(UTC),
        )
        _adoption_table(channel, counts, len(known))
        if dry_run or not counts:
            return
        outcomes = ledger.record_batch(counts)
    refused = [o for o in outcomes if o.status is OutcomeStatus.REJECTED]
    typer.echo(f"adopted {len(counts) - len(refused)} SKUs of {channel.id}")
    if refused:
        raise CliError(f"{len(refused)} counts refused, the first: {refused[0].error}")
