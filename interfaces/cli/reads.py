"""`invsync stock show|history` and `invsync oversells`: read the ledger from a terminal, now or
as it stood at a past time."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from application.ledger_queries import LedgerQueries
from application.receipts import HistoryFilter
from application.time_travel import TimeTravel
from domain.stock import ChangeKind
from infrastructure.settings import Settings
from interfaces.bootstrap import ledger_only
from interfaces.cli.common import configured_rules, console, errors_as_messages, parse_time
from interfaces.cli.tables import EVENT_COLUMNS, event_row, print_item
from interfaces.presenters import (
    allocations_document,
    event_document,
    item_document,
    oversell_document,
)


def show(
    sku: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    at: Annotated[
        str | None, typer.Option(help="ISO time: stock and each channel's ATS as they were then.")
    ] = None,
) -> None:
    """Show a SKU's stock per location, now or at a past time."""
    with errors_as_messages():
        document = _item_at(sku, parse_time(at) if at else None)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    print_item(document)
    if "channels" in document:
        table = Table("channel", "available_to_sell", title=f"as of {document['as_of']}")
        for channel_id, channel in document["channels"].items():
            table.add_row(channel_id, str(channel["available_to_sell"]))
        console.print(table)


def _item_at(sku: str, when: datetime | None) -> dict[str, Any]:
    """The SKU's document now (`when` None), or as it was at `when` with each channel's ATS."""
    rules = configured_rules() if when else []
    with ledger_only(Settings.from_env()) as ledger:
        if when is None:
            return item_document(LedgerQueries(ledger).get_item(sku))
        item, allocations = TimeTravel(ledger).availability_at(sku, when, rules)
    return {
        **item_document(item),
        "channels": allocations_document(allocations),
        "as_of": when.isoformat(),
    }


def history(
    sku: str,
    kind: Annotated[list[ChangeKind] | None, typer.Option(help="Only these kinds.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time, inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time, exclusive.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    oldest_first: Annotated[bool, typer.Option("--oldest-first")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a SKU's ledger events, newest first."""
    with errors_as_messages(), ledger_only(Settings.from_env()) as ledger:
        queries = LedgerQueries(ledger)
        queries.get_item(sku)
        page = queries.history(
            sku,
            HistoryFilter(
                kinds=frozenset(kind or ()),
                since=parse_time(since) if since else None,
                until=parse_time(until) if until else None,
                newest_first=not oldest_first,
            ),
            limit=limit,
        )
        documents = [event_document(event) for event in page.events]
        if as_json:
            typer.echo(json.dumps(documents, indent=2, default=str))
            return
        table = Table(*EVENT_COLUMNS)
        for d in documents:
            table.add_row(*event_row(d))
        console.print(table)


def oversells(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    before: Annotated[str | None, typer.Option(help="ISO time, exclusive.")] = None,
    context: Annotated[
        int, typer.Option(min=0, max=20, help="Ledger events shown either side.")
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List oversells, newest first: the events around each, and every channel's ATS just
    before and just after the oversold sale."""
    with errors_as_messages():
        until = parse_time(before) if before else None
        rules = configured_rules()
        with ledger_only(Settings.from_env()) as ledger:
            found = TimeTravel(ledger).oversells_in_context(
                rules, limit=limit, before=until, context=context
            )
    documents = [oversell_document(o) for o in found]
    if as_json:
        typer.echo(json.dumps(documents, indent=2, default=str))
        return
    if not documents:
        typer.echo("no oversells")
    for d in documents:
        console.print(_oversell_table(d))


def _oversell_table(d: dict[str, Any]) -> Table:
    channels = d["channels"]
    ats = ", ".join(
        f"{c} {channels['before'][c]['available_to_sell']} → {a['available_to_sell']}"
        for c, a in channels["after"].items()
    )
    table = Table(
        *EVENT_COLUMNS,
        title=f"{d['sku']} oversold by {d['shortfall']}: {d['business_key']}",
        caption=f"available to sell before → after: {ats or 'no channels configured'}",
    )
    for event in d["events_before"]:
        table.add_row(*event_row(event))
    sale = (d["versions"][1], d["recorded_at"], d["kind"], d["location"])
    table.add_row(
        *(str(v) for v in sale),
        f"{d['shortfall']} short",
        "oversold",
        d["source"],
        d["business_key"],
        style="bold red",
    )
    for event in d["events_after"]:
        table.add_row(*event_row(event))
    return table
