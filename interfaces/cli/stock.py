"""`invsync stock receive|adjust|count|transfer`: record stock in the ledger from a terminal."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from application.ledger_queries import LedgerQueries
from application.outcomes import OutcomeStatus
from domain.stock import AdjustmentReason, ChangeKind, QuantityState, StockChange
from infrastructure.settings import Settings
from interfaces.bootstrap import ledger_only
from interfaces.cli.common import CliError, errors_as_messages
from interfaces.cli.tables import print_item
from interfaces.presenters import item_document

Location = Annotated[str, typer.Option("--location", "-l", help="Our location id.")]
Key = Annotated[
    str | None,
    typer.Option("--key", help="Business key of this fact; the same key is applied once."),
]
Reference = Annotated[str, typer.Option("--reference", help="URI of the source document.")]
Note = Annotated[str, typer.Option("--note", help="Why, in a few words.")]


def receive(
    sku: str,
    quantity: int,
    location: Location = "main",
    key: Key = None,
    reference: Reference = "",
    note: Note = "",
) -> None:
    """Record a purchase-order receipt: QUANTITY units arrive at LOCATION."""
    _record(_change(ChangeKind.RECEIPT, sku, location, quantity, key, reference, note))


def adjust(
    sku: str,
    delta: int,
    reason: Annotated[AdjustmentReason, typer.Option("--reason", help="Why the stock changed.")],
    location: Location = "main",
    unavailable: Annotated[
        bool, typer.Option("--unavailable", help="Adjust unavailable units, not on_hand.")
    ] = False,
    key: Key = None,
    reference: Reference = "",
) -> None:
    """Adjust on_hand (or unavailable) by DELTA, e.g. -3 --reason damaged."""
    state = QuantityState.UNAVAILABLE if unavailable else QuantityState.ON_HAND
    _record(
        _change(
            ChangeKind.ADJUSTMENT, sku, location, delta, key, reference, reason.value, state=state
        )
    )


def count(
    sku: str,
    counted: int,
    location: Location = "main",
    expected: Annotated[int | None, typer.Option(help="On hand you expected to find.")] = None,
    key: Key = None,
    reference: Reference = "",
    note: Note = "",
) -> None:
    """Record a cycle count: COUNTED units found at LOCATION."""
    _record(
        _change(ChangeKind.COUNT, sku, location, counted, key, reference, note, expected=expected)
    )


def transfer(
    sku: str,
    quantity: int,
    source: Annotated[str, typer.Option("--from", help="Location the units leave.")],
    destination: Annotated[str, typer.Option("--to", help="Location they reach.")],
    key: Key = None,
    reference: Reference = "",
    note: Note = "",
) -> None:
    """Move QUANTITY units of SKU between two locations."""
    _record(
        _change(
            ChangeKind.TRANSFER,
            sku,
            source,
            quantity,
            key,
            reference,
            note,
            to_location=destination,
        )
    )


def _record(change_of: Callable[[str, datetime], StockChange]) -> None:
    with errors_as_messages(), ledger_only(Settings.from_env()) as ledger:
        outcome = ledger.record(change_of(f"cli:{uuid.uuid4()}", datetime.now(UTC)))
        if outcome.status is OutcomeStatus.REJECTED:
            raise CliError(str(outcome.error))
        note = (
            " (already recorded: nothing changed)"
            if outcome.status is OutcomeStatus.DUPLICATE
            else ""
        )
        item = LedgerQueries(ledger).get_item(outcome.change.sku)
        typer.echo(f"{outcome.change.kind} {outcome.change.business_key}{note}")
        print_item(item_document(item))


def _change(
    kind: ChangeKind,
    sku: str,
    location: str,
    quantity: int,
    key: str | None,
    reference: str,
    reason: str,
    **extra: Any,
) -> Callable[[str, datetime], StockChange]:
    def build(generated_key: str, now: datetime) -> StockChange:
        return StockChange(
            kind=kind,
            sku=sku,
            location=location,
            quantity=quantity,
            business_key=key or generated_key,
            source="cli",
            occurred_at=now,
            reference=reference,
            reason=reason,
            **extra,
        )

    return build
