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
    """What the ledger needs from its event recorder beyond the library's own interface. The
    recorder must also accept `receipts=` on `insert_events` and write them atomically."""

    def select_receipts(self, business_keys: Sequence[str]) -> dict[str, Receipt]: ...

    def version_at(self, item_id: UUID, at: datetime) -> int | None: ...

    def select_history(
        self, item_id: UUID, history: HistoryFilter, limit: int
    ) -> list[Receipt]: ...

    def select_oversells(self, limit: int, before: datetime | None) -> list[Receipt]: ...

    def select_existing_items(self, item_ids: Sequence[UUID]) -> set[UUID]: ...

    def select_audit(self, audit: AuditFilter, limit: int) -> list[Receipt]: ...

    def select_skus(self, contains: str, after: str | None, limit: int) -> list[str]: ...
