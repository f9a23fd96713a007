"""An in-memory ledger store, so application tests run without servers: the eventsourcing
library's POPO (plain old Python objects) recorder, keeping receipts beside the events as the
PostgreSQL recorder does (same transaction, business key unique), and answering the ledger's
receipt queries (`ReceiptQueries`) from them.

PostgreSQL stays the only production store: the composition root refuses this one."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory

from application.ledger import Ledger
from application.receipts import AuditFilter, HistoryFilter, Receipt
from domain.stock import ChangeKind

_STORES: dict[str, MemoryRecorder] = {}  # by STORE name: ledgers given one name share it
_names = itertools.count()
STORE = "INVSYNC_MEMORY_STORE"


class MemoryRecorder(POPOApplicationRecorder):
    """The library's in-memory recorder, with the ledger's receipts."""

    def __init__(self) -> None:
        super().__init__()
        self.receipts: dict[str, Receipt] = {}

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        receipts: Sequence[Receipt] = kwargs.get("receipts", ())
        with self._database_lock:  # events and receipts stored together, or neither
            keys = [receipt.business_key for receipt in receipts]
            if len(set(keys)) < len(keys) or self.receipts.keys() & set(keys):
                raise IntegrityError(f"business key recorded before: {sorted(keys)}")
            ids = super().insert_events(stored_events, **kwargs)
            self.receipts.update(zip(keys, receipts, strict=True))
            return ids

    def select_receipts(self, business_keys: Sequence[str]) -> dict[str, Receipt]:
        with self._database_lock:
            return {k: self.receipts[k] for k in business_keys if k in self.receipts}

    def select_existing_items(self, item_ids: Sequence[UUID]) -> set[UUID]:
        with self._database_lock:
            return {i for i in item_ids if 1 in self._stored_events_index.get(str(i), {})}

    def version_at(self, item_id: UUID, at: datetime) -> int | None:
        recorded = [r for r in self._all() if r.item_id == item_id and r.recorded_at <= at]
        return max((r.last_version for r in recorded), default=None)

    def select_history(self, item_id: UUID, history: HistoryFilter, limit: int) -> list[Receipt]:
        found = [
            r
            for r in self._all()
            if r.item_id == item_id
            and _kind_and_time(r, history.kinds, history.since, history.until)
            and _after_cursor(r, history)
        ]
        found.sort(key=lambda r: r.last_version, reverse=history.newest_first)
        return found[:limit]

    def select_oversells(self, limit: int, before: datetime | None) -> list[Receipt]:
        found = [
            r for r in self._all() if r.shortfall > 0 and (before is None or r.recorded_at < before)
        ]
        return sorted(found, key=lambda r: r.recorded_at, reverse=True)[:limit]

    def count_oversells(self, since: datetime) -> int:
        return sum(1 for r in self._all() if r.shortfall > 0 and r.recorded_at >= since)

    def select_audit(self, audit: AuditFilter, limit: int) -> list[Receipt]:
        found = [r for r in self._all() if _audited(r, audit)]
        found.sort(key=lambda r: (r.recorded_at, r.business_key), reverse=True)
        return found[:limit]

    def select_skus(self, contains: str, after: str | None, limit: int) -> list[str]:
        skus = {r.sku for r in self._all() if contains.casefold() in r.sku.casefold()}
        return sorted(s for s in skus if after is None or s > after)[:limit]

    def _all(self) -> list[Receipt]:
        with self._database_lock:
            return list(self.receipts.values())


class MemoryFactory(POPOFactory):
    """`PERSISTENCE_MODULE` for an in-memory ledger: ledgers whose environment names the same
    `INVSYNC_MEMORY_STORE` share one recorder, as processes share one database."""

    def application_recorder(self) -> ApplicationRecorder:
        name = self.env.get(STORE) or f"own-{next(_names)}"
        return _STORES.setdefault(name, MemoryRecorder())


MEMORY_FACTORY_TOPIC = f"{MemoryFactory.__module__}:{MemoryFactory.__qualname__}"


def memory_env(store: str | None = None) -> dict[str, str]:
    """A ledger's settings for an in-memory store of its own, or the one named `store`."""
    env = {"PERSISTENCE_MODULE": MEMORY_FACTORY_TOPIC}
    return {**env, STORE: store} if store else env


def memory_ledger(store: str | None = None) -> Ledger:
    """A ledger on an in-memory store (see `memory_env`)."""
    return Ledger(env=memory_env(store))


def _kind_and_time(
    receipt: Receipt,
    kinds: Iterable[ChangeKind],
    since: datetime | None,
    until: datetime | None,
) -> bool:
    kinds = frozenset(kinds)
    return (
        (not kinds or receipt.kind in kinds)
        and (since is None or receipt.recorded_at >= since)
        and (until is None or receipt.recorded_at < until)
    )


def _after_cursor(receipt: Receipt, history: HistoryFilter) -> bool:
    if history.cursor is None:
        return True
    if history.newest_first:
        return receipt.last_version < history.cursor
    return receipt.first_version > history.cursor


def _audited(receipt: Receipt, audit: AuditFilter) -> bool:
    exact = {
        "sku": audit.sku,
        "source": audit.source,
        "location": audit.location,
        "reference": audit.reference,
    }
    if any(v is not None and getattr(receipt, k) != v for k, v in exact.items()):
        return False
    if audit.order is not None:
        order = audit.order.rstrip("/")
        if receipt.reference != order and not receipt.reference.startswith(order + "/"):
            return False
    if audit.cursor is not None and (receipt.recorded_at, receipt.business_key) >= audit.cursor:
        return False
    return _kind_and_time(receipt, audit.kinds, audit.since, audit.until)
