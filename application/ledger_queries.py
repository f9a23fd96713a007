"""Reads of the ledger's current state and of its audit trail: a SKU's stock and history, the
channel orders and rules, the receipts across SKUs. Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from eventsourcing.application import AggregateNotFoundError

from application.errors import UnknownSku
from application.ledger import Ledger
from application.receipts import AuditFilter, HistoryFilter, Receipt, receipt_queries
from domain.allocation import ChannelRule
from domain.inventory import InventoryItem, inventory_item_id
from domain.orders import ChannelOrder, channel_order_id
from domain.rules import ChannelRules, channel_rules_id


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of a SKU's ledger events; `next_cursor` continues it (None: the last page)."""

    events: list[InventoryItem.StockEvent]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class RuleChange:
    """A recorded change of a channel's rules: its keys as set (`sku` None) or one SKU's
    override (`rules` empty: removed), who made it and why."""

    at: datetime
    version: int
    sku: str | None
    rules: dict[str, Any]
    changed_by: str
    reason: str


class LedgerQueries:
    """What the ledger holds now, read through its repository and the receipts (`ReceiptQueries`,
    the recorder's reads beyond the library's)."""

    def __init__(self, ledger: Ledger) -> None:
        """Raises `StorageNotConfigured` when the ledger's recorder cannot answer the reads."""
        self._ledger = ledger
        self._receipts = receipt_queries(ledger.recorder)

    def get_item(self, sku: str) -> InventoryItem:
        """The current stock of a SKU. Raises `UnknownSku`."""
        # Under the writers' lock: they change the cached item in place, and this copies it.
        with self._ledger.sku_locks.holding([sku]):
            try:
                return cast(InventoryItem, self._ledger.repository.get(inventory_item_id(sku)))
            except AggregateNotFoundError:
                raise UnknownSku(f"no stock has been recorded for SKU {sku!r}") from None

    def channel_order(self, channel_id: str, order_id: str) -> ChannelOrder | None:
        """What is known of a channel order and what its lines hold, None if never seen."""
        aggregate_id = channel_order_id(channel_id, order_id)
        try:
            return cast(ChannelOrder, self._ledger.repository.get(aggregate_id))
        except AggregateNotFoundError:
            return None

    def history(self, sku: str, history: HistoryFilter, limit: int = 50) -> HistoryPage:
        """A page of a SKU's ledger events, filtered by kind and recorded time."""
        item_id = inventory_item_id(sku)
        receipts = self._receipts.select_history(item_id, history, limit + 1)
        page, more = receipts[:limit], len(receipts) > limit
        if not page:
            return HistoryPage([], None)
        cursor = page[-1].first_version if history.newest_first else page[-1].last_version
        return HistoryPage(self._events_of(page, history.newest_first), cursor if more else None)

    def _events_of(
        self, receipts: Sequence[Receipt], newest_first: bool
    ) -> list[InventoryItem.StockEvent]:
        """The stock events the receipts (all of one SKU) recorded, in one read."""
        wanted = {v for r in receipts for v in range(r.first_version, r.last_version + 1)}
        stored = self._ledger.events.get(
            receipts[0].item_id,
            gt=min(r.first_version for r in receipts) - 1,
            lte=max(r.last_version for r in receipts),
            desc=newest_first,
        )
        return [
            event
            for event in stored
            if event.originator_version in wanted and isinstance(event, InventoryItem.StockEvent)
        ]

    def known_skus(self, skus: Iterable[str]) -> set[str]:
        """The SKUs among `skus` that have a stock record."""
        by_id = {inventory_item_id(sku): sku for sku in skus}
        return {by_id[found] for found in self._receipts.select_existing_items(list(by_id))}

    def skus(self, contains: str = "", after: str | None = None, limit: int = 50) -> list[str]:
        """SKUs with a stock record whose name contains `contains`, in order, after `after`."""
        return self._receipts.select_skus(contains, after, limit)

    def audit(self, audit: AuditFilter, limit: int = 100) -> list[Receipt]:
        """Recorded changes across SKUs, newest first, filtered for an audit."""
        return self._receipts.select_audit(audit, limit)

    def oversells(self, limit: int = 100, before: datetime | None = None) -> list[Receipt]:
        """Sales that drove available stock below zero, newest first."""
        return self._receipts.select_oversells(limit, before)

    def oversells_since(self, since: datetime) -> int:
        """How many sales drove available stock below zero at or after `since`."""
        return self._receipts.count_oversells(since)

    def channel_rules(self, defaults: ChannelRule) -> tuple[ChannelRule, ChannelRules | None]:
        """The channel's rules now: the last change recorded, else the configured defaults."""
        rules_id = channel_rules_id(defaults.channel_id)
        try:
            rules = cast(ChannelRules, self._ledger.repository.get(rules_id))
        except AggregateNotFoundError:
            return defaults, None
        return rules.rule(defaults), rules

    def rule_changes(self, channel_id: str, limit: int = 50) -> list[RuleChange]:
        """The channel's recorded rule changes and SKU overrides, newest first."""
        events = self._ledger.events.get(channel_rules_id(channel_id), desc=True, limit=limit)
        changes = (
            e for e in events if isinstance(e, ChannelRules.Changed | ChannelRules.SkuOverridden)
        )
        return [_rule_change(event) for event in changes]

    def rule_for(self, sku: str, default: ChannelRule) -> ChannelRule:
        """The rule of `default`'s channel for `sku`: its recorded changes and the SKU's
        override over `default`, the configured rule."""
        _, recorded = self.channel_rules(default)
        return recorded.rule_for(sku, default) if recorded else default

    def rules_for(self, sku: str, defaults: Sequence[ChannelRule]) -> list[ChannelRule]:
        """Each channel's rule for `sku` (see `rule_for`)."""
        return [self.rule_for(sku, default) for default in defaults]


def _rule_change(event: ChannelRules.Changed | ChannelRules.SkuOverridden) -> RuleChange:
    return RuleChange(
        at=event.timestamp,
        version=event.originator_version,
        sku=getattr(event, "sku", None),
        rules=dict(event.rules),
        changed_by=event.changed_by,
        reason=event.reason,
    )
