"""`invsync migrate|rebuild|prune`: the database's upkeep, run by an operator."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infrastructure.config import load_config
from infrastructure.dead_letters import DeadLetters
from infrastructure.projections import PROJECTIONS, Rebuild, RebuildReport
from infrastructure.retention import Retention
from infrastructure.settings import Settings
from interfaces import composition
from interfaces.bootstrap import database_only
from interfaces.cli.common import CliError, configured_rules, console, errors_as_messages

SHOWN_DIFFERENCES = 50


def migrate() -> None:
    """Create invsync's tables (safe to run again)."""
    with errors_as_messages():
        with composition.servers(Settings.from_env(), with_redis=False) as found:
            composition.migrate(found.database_url)
        typer.echo("migrated")


def rebuild(
    projection: Annotated[str, typer.Argument(help=f"One of: {', '.join(PROJECTIONS)}.")],
) -> None:
    """Rebuild a projection from the whole ledger into shadow tables, then swap them in.

    The live tables keep serving meanwhile, and intake never waits. Prints what changed."""
    with errors_as_messages():
        if projection not in PROJECTIONS:
            raise CliError(f"no projection {projection!r}; known: {', '.join(PROJECTIONS)}")
        rules = configured_rules()
        with database_only(Settings.from_env()) as database_url, _progress() as bar:
            task = bar.add_task(f"rebuilding {projection}", total=None)
            report = Rebuild(database_url, rules).run(
                lambda done, aim: bar.update(task, completed=done, total=aim)
            )
    _print_rebuild(report)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),  # stdout keeps only the report
    )


def _print_rebuild(report: RebuildReport) -> None:
    console.print(
        f"rebuilt {report.projection}: {report.events:,} events in {report.seconds:.1f} s "
        f"({report.events_per_second:,.0f}/s), now at position {report.position}"
    )
    rows = Table("table", "live rows", "rebuilt rows")
    for table, (live, rebuilt) in report.rows.items():
        rows.add_row(table, str(live), str(rebuilt))
    console.print(rows)
    if not report.differences:
        console.print("no available-to-sell changed")
        return
    changed = Table("sku", "channel", "live", "rebuilt", title="available-to-sell changed")
    for d in report.differences[:SHOWN_DIFFERENCES]:
        changed.add_row(d.sku, d.channel_id, str(d.live), str(d.rebuilt))
    console.print(changed)
    if len(report.differences) > SHOWN_DIFFERENCES:
        more = len(report.differences) - SHOWN_DIFFERENCES
        console.print(f"... and {more} more, sent to the outbox")


def prune() -> None:
    """Delete what is past its retention now (processed webhooks, channel observations,
    resolved dead letters: see `[retention]`; idempotency keys and offer lookups past their
    time); `run` and `worker` do it every hour."""
    with errors_as_messages():
        settings = Settings.from_env()
        config = load_config(settings.config_path).retention
        with database_only(settings) as database_url:
            inbox = composition.inbox(database_url)
            keys = composition.idempotency_store(database_url)
            offers = composition.push_store(database_url)
            try:
                retention = Retention(inbox, DeadLetters(database_url), config, keys, offers)
                deleted = retention.apply()
            finally:
                inbox.close()
                keys.close()
                offers.close()
    typer.echo(", ".join(f"{count} {what}" for what, count in deleted.items()) + " deleted")
