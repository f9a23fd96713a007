"""What became of the stock changes and order updates a ledger command was given: the outcome
types, and the decisions (no I/O) that make them from what a batch tried and what the receipts
say was recorded before."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from application.receipts import Receipt
from domain.errors import DomainError
from domain.inventory import InventoryItem
from domain.orders import ChannelOrder, OrderUpdate
from domain.stock import StockChange


class OutcomeStatus(StrEnum):
    APPLIED = "applied"  # recorded now
    DUPLICATE = "duplicate"  # its business key was recorded before: nothing changed
    REJECTED = "rejected"  # it broke a domain rule: nothing changed


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one stock change. `receipt` is the first recording of its business key."""

    change: StockChange
    status: OutcomeStatus
    receipt: Receipt | None = None
    error: DomainError | None = None


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What became of one order update: APPLIED when it taught something new (its stock
    changes in `changes`), DUPLICATE when everything in it was known, REJECTED with `error`."""

    update: OrderUpdate
    status: OutcomeStatus
    changes: tuple[Outcome, ...] = ()
    error: DomainError | None = None


@dataclass(frozen=True, slots=True)
class Lesson:
    """What one order update taught its order: the stock changes that take the order's lines
    to what they should now hold."""

    status: OutcomeStatus
    changes: list[StockChange]
    error: DomainError | None = None


OrderKey = tuple[str, str]  # (channel id, order id)


def learn(orders: dict[OrderKey, ChannelOrder], update: OrderUpdate) -> Lesson:
    """Teach `update` to its order in `orders`, opening the order with it when none is known."""
    key = (update.channel_id, update.order_id)
    order = orders.get(key)
    try:
        if order is None:
            orders[key], derived = ChannelOrder.open(update)
            return Lesson(OutcomeStatus.APPLIED, derived)
        version = order.version
        derived = order.learn(update)
    except DomainError as error:
        return Lesson(OutcomeStatus.REJECTED, [], error)
    status = OutcomeStatus.APPLIED if order.version > version else OutcomeStatus.DUPLICATE
    return Lesson(status, derived)


def first_of_each_key(changes: Sequence[StockChange]) -> dict[str, StockChange]:
    """The first change of each business key, in order: a key is applied once."""
    first: dict[str, StockChange] = {}
    for change in changes:
        first.setdefault(change.business_key, change)
    return first


def apply_changes(
    changes: Sequence[StockChange], items: Mapping[str, InventoryItem]
) -> dict[str, Outcome]:
    """Record each change on its SKU's item in `items`, by business key: APPLIED with the
    receipt to store, or REJECTED alone when it breaks a domain rule."""
    results: dict[str, Outcome] = {}
    for change in changes:
        item = items[change.sku]
        first_version = item.version + 1
        try:
            item.record(change)
        except DomainError as error:
            results[change.business_key] = Outcome(change, OutcomeStatus.REJECTED, error=error)
            continue
        receipt = receipt_of(change, item, first_version)
        results[change.business_key] = Outcome(change, OutcomeStatus.APPLIED, receipt)
    return results


def receipt_of(change: StockChange, item: InventoryItem, first_version: int) -> Receipt:
    """The receipt of `change`, just recorded on `item` as its events from `first_version`."""
    event = cast(InventoryItem.StockEvent, item.pending_events[-1])
    return Receipt(
        business_key=change.business_key,
        sku=change.sku,
        item_id=item.id,
        kind=change.kind,
        first_version=first_version,
        last_version=item.version,
        recorded_at=event.timestamp,
        occurred_at=change.occurred_at,
        source=change.source,
        shortfall=getattr(event, "shortfall", 0),
        location=change.location,
        reference=change.reference,
        reason=event.reason,
    )


def refused_keys(results: Mapping[str, Outcome]) -> list[str]:
    """The business keys whose change was rejected."""
    return [key for key, outcome in results.items() if outcome.status is OutcomeStatus.REJECTED]


def outcomes_of(
    changes: Sequence[StockChange], results: Mapping[str, Outcome], known: Mapping[str, Receipt]
) -> list[Outcome]:
    """One outcome per change, in order, from what this batch tried (`results`, by business
    key) and the receipts of keys recorded before it (`known`)."""
    first_index: dict[str, int] = {}
    return [
        outcome_of(change, results, known, first_index.setdefault(change.business_key, i) != i)
        for i, change in enumerate(changes)
    ]


def outcome_of(
    change: StockChange,
    results: Mapping[str, Outcome],
    known: Mapping[str, Receipt],
    repeated: bool,
) -> Outcome:
    """The outcome of `change`; `repeated` when an earlier change of the batch had its key."""
    receipt = known.get(change.business_key)
    first = results.get(change.business_key)
    if (reused := _key_reused(change, receipt, first, repeated)) is not None:
        return Outcome(change, OutcomeStatus.REJECTED, error=reused)
    if receipt is not None:
        return Outcome(change, OutcomeStatus.DUPLICATE, receipt)
    assert first is not None  # a key not known before was tried in this batch
    if not repeated:
        return first
    # A later change in the same batch with a key already used in it.
    if first.status is OutcomeStatus.REJECTED:
        return Outcome(change, OutcomeStatus.REJECTED, error=first.error)
    return Outcome(change, OutcomeStatus.DUPLICATE, first.receipt)


def _key_reused(
    change: StockChange, receipt: Receipt | None, first: Outcome | None, repeated: bool
) -> DomainError | None:
    # A key names one fact about one SKU: used again for another SKU it is a mistake to
    # refuse, saying which SKU it named first, not a duplicate to ignore in silence.
    first_sku = receipt.sku if receipt is not None else first.change.sku if first else None
    if first_sku is None or first_sku == change.sku or not (receipt or repeated):
        return None
    return DomainError(
        f"business key {change.business_key!r} was first used for SKU {first_sku!r}, "
        f"not {change.sku!r}: give this change a key of its own"
    )


def order_outcomes(
    updates: Sequence[OrderUpdate], lessons: Sequence[Lesson], results: Mapping[str, Outcome]
) -> list[OrderOutcome]:
    """One outcome per order update, in order, with the outcomes of the changes it derived."""
    return [
        OrderOutcome(
            update,
            lesson.status,
            tuple(results[change.business_key] for change in lesson.changes),
            lesson.error,
        )
        for update, lesson in zip(updates, lessons, strict=True)
    ]
