"""Receipts: the durable record that a business fact was applied, and the port that stores them.

A receipt is written in the same transaction as the ledger events it describes, with the business
key unique, so a fact can never be applied twice. Receipts double as the index the ledger's
queries need (history by kind and time, stock as of a time, oversells).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

from application.errors import StorageNotConfigured
from domain.stock import ChangeKind


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of applying one stock change: which events, when, and how much was oversold."""

    business_key: str
    sku: str
    item_id: UUID
    kind: ChangeKind
    first_version: int
    last_version: int
    recorded_at: datetime
    occurred_at: datetime
    source: str
    shortfall: int
    location: str = ""
    reference: str = ""
    reason: str = ""  # the ledger event's: an adjustment's reason, else the kind


@dataclass(frozen=True)
class AuditFilter:
    """Which receipts an audit across SKUs shows, newest first. `cursor` continues a page."""

    since: datetime | None = None
    until: datetime | None = None
    kinds: frozenset[ChangeKind] = frozenset()
    sku: str | None = None
    source: str | None = None  # channel account or system
    location: str | None = None
    reference: str | None = None  # the source document, exactly, e.g. an order URI
    # An order's reference: the order's own receipts and every one under it (its fulfilments
    # `<order>/fulfillments/<id>`, its refunds `<order>/refunds/<id>`).
    order: str | None = None
    cursor: tuple[datetime, str] | None = None  # (recorded_at, business_key) of the last row


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which of a SKU's receipts a history page shows, and in which order.

    `cursor` is the version a previous page ended at; the page continues past it.
    """

    kinds: frozenset[ChangeKind] = frozenset()
    since: datetime | None = None  # recorded at or after
    until: datetime | None = None  # recorded before
    newest_first: bool = True
    cursor: int | None = None


@runtime_checkable
class ReceiptStore(Protocol):
    """What the ledger's commands need from its event recorder beyond the library's own
    interface. The recorder must also accept `receipts=` on `insert_events` and write them
    atomically with the events, refusing a business key stored before (`IntegrityError`)."""

    def select_receipts(self, business_keys: Sequence[str]) -> dict[str, Receipt]: ...

    def select_existing_items(self, item_ids: Sequence[UUID]) -> set[UUID]: ...


@runtime_checkable
class ReceiptQueries(Protocol):
    """The reads of receipts the ledger's queries and answers about the past need: SQL beyond
    the library's recorder in PostgreSQL, dictionaries in the tests' in-memory store."""

    def version_at(self, item_id: UUID, at: datetime) -> int | None:
        """The item's last version recorded at or before `at`; None if it had none yet."""
        ...

    def select_history(
        self, item_id: UUID, history: HistoryFilter, limit: int
    ) -> list[Receipt]: ...

    def select_oversells(self, limit: int, before: datetime | None) -> list[Receipt]:
        """Receipts with a shortfall recorded before `before`, newest first."""
        ...

    def count_oversells(self, since: datetime) -> int:
        """How many receipts with a shortfall were recorded at or after `since`."""
        ...

    def select_existing_items(self, item_ids: Sequence[UUID]) -> set[UUID]: ...

    def select_audit(self, audit: AuditFilter, limit: int) -> list[Receipt]: ...

    def select_skus(self, contains: str, after: str | None, limit: int) -> list[str]:
        """SKUs with a receipt whose name holds `contains` (any case), after `after`, sorted."""
        ...


def receipt_store(recorder: object) -> ReceiptStore:
    """`recorder` as the port the ledger's commands write receipts through.

    Raises `StorageNotConfigured` when it keeps no receipts (the library's own recorders):
    the ledger would then apply a repeated fact twice."""
    if not isinstance(recorder, ReceiptStore):
        raise StorageNotConfigured(_keeps_none(recorder))
    return recorder


def receipt_queries(recorder: object) -> ReceiptQueries:
    """`recorder` as the port the ledger's queries read receipts through.

    Raises `StorageNotConfigured` when it cannot answer them."""
    if not isinstance(recorder, ReceiptQueries):
        raise StorageNotConfigured(_keeps_none(recorder))
    return recorder


def _keeps_none(recorder: object) -> str:
    return (
        f"the ledger refuses {type(recorder).__name__}: it keeps no receipts beside the events "
        "(use the invsync PostgreSQL recorder)"
    )
