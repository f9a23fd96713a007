"""The terminal's tables: a SKU's stock, and ledger events one per row."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from interfaces.cli.common import console

EVENT_COLUMNS = ("v", "recorded", "kind", "location", "change", "reason", "source", "key")
_LEVELS = ("on_hand", "committed", "reserved", "unavailable", "available")


def print_item(document: dict[str, Any]) -> None:
    table = Table("location", *_LEVELS, title=f"{document['sku']} (version {document['version']})")
    rows = [*document["locations"].items(), ("total", document["totals"])]
    for name, levels in rows:
        table.add_row(name, *(str(levels[k]) for k in _LEVELS))
    console.print(table)


def event_row(d: dict[str, Any]) -> tuple[str, ...]:
    change = ", ".join(f"{m['state']} {m['units']:+d}" for m in d["deltas"]) or "-"
    where = d["location"] + (
        f"→{d['details']['to_location']}" if "to_location" in d["details"] else ""
    )
    return (
        str(d["version"]),
        d["recorded_at"][:19],
        d["kind"],
        where,
        change,
        d["reason"],
        d["source"],
        d["business_key"],
    )
