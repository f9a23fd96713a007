"""What was true at a time: a SKU's stock and each channel's available-to-sell at a moment, and
oversells with what surrounded them, read from the ledger's events (what the answers are made
of, and the fold of the rules over time, are `application.as_of`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import date, datetime
from typing import cast
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate

from application.as_of import (
    Availability,
    OversellInContext,
    RulesHistory,
    availability_of,
    velocity_day,
    weighs_velocity,
    window_opens,
)
from application.errors import UnknownSku
from application.ledger import Ledger
from application.receipts import Receipt, receipt_queries
from domain.allocation import ChannelRule
from domain.drift import Sale
from domain.inventory import InventoryItem, inventory_item_id
from domain.rules import channel_rules_id


class TimeTravel:
    """The ledger as it stood at past moments, read through its event store and the receipts
    (`ReceiptQueries`: which version a SKU had reached by a time)."""

    def __init__(self, ledger: Ledger) -> None:
        """Raises `StorageNotConfigured` when the ledger's recorder cannot answer the reads."""
        self._ledger = ledger
        self._receipts = receipt_queries(ledger.recorder)

    def item_at(self, sku: str, at: datetime) -> InventoryItem:
        """The stock of a SKU as recorded at time `at`. Raises `UnknownSku`."""
        version = self._receipts.version_at(inventory_item_id(sku), at)
        if version is None:
            raise UnknownSku(f"no stock had been recorded for SKU {sku!r} at {at.isoformat()}")
        return self._item(inventory_item_id(sku), version)

    def rules_history(self, defaults: Sequence[ChannelRule]) -> RulesHistory:
        """Every recorded change of the configured channels' rules, to ask what was in force
        when. One read per channel, however many moments are asked about."""
        changes = {
            rule.channel_id: [
                event
                for event in self._ledger.events.get(channel_rules_id(rule.channel_id))
                if isinstance(event, Aggregate.Event)
            ]
            for rule in defaults
        }
        return RulesHistory(defaults, changes)

    def availability_at(
        self, sku: str, at: datetime, defaults: Sequence[ChannelRule]
    ) -> Availability:
        """A SKU's stock and each channel's available-to-sell as the ledger knew them at `at`,
        which is what the availability projection held (and sent the channels) then: the stock
        recorded by then, the rules in force for it then (`defaults` until a channel's first
        change, and the SKU's overrides), and the sales velocity of the window the projection
        used (see `velocity_day`).
        Raises `UnknownSku` if nothing had been recorded for the SKU by then."""
        item = self.item_at(sku, at)
        history = self.rules_history(defaults)
        rules = history.at(at, sku)
        if not weighs_velocity(rules):
            return availability_of(item, rules, [], None)
        [last] = self._ledger.events.get(item.id, gt=item.version - 1, lte=item.version)
        day = velocity_day(cast(Aggregate.Event, last), history.changed_at(at, sku))
        sales = self._window_events(item.id, rules, [day], item.version)
        return availability_of(item, rules, sales, day)

    def oversells_in_context(
        self,
        defaults: Sequence[ChannelRule],
        limit: int = 100,
        before: datetime | None = None,
        context: int = 3,
    ) -> list[OversellInContext]:
        """Oversells, newest first (as `LedgerQueries.oversells` lists them), each with up to
        `context` of its SKU's ledger events either side, and each channel's ATS just before
        and just after the sale."""
        history = self.rules_history(defaults)
        oversells = self._receipts.select_oversells(limit, before)
        return [self._in_context(receipt, history, context) for receipt in oversells]

    def _in_context(
        self, receipt: Receipt, history: RulesHistory, context: int
    ) -> OversellInContext:
        at, sale = receipt.recorded_at, receipt.last_version
        rules, changed = history.at(at, receipt.sku), history.changed_at(at, receipt.sku)
        # The context, and the event before the sale: its day anchors the velocity before it.
        read = list(
            self._ledger.events.get(
                receipt.item_id, gt=max(0, sale - 2 - context), lte=sale + context
            )
        )
        by_version = {e.originator_version: cast(Aggregate.Event, e) for e in read}
        days = [velocity_day(by_version[v], changed) for v in (sale - 1, sale)]
        sales = self._window_events(receipt.item_id, rules, days, sale)
        # The item before the sale comes from its snapshot; the sale is folded onto a copy.
        before = self._item(receipt.item_id, sale - 1)
        after = cast(InventoryItem, project_aggregate(copy.deepcopy(before), [by_version[sale]]))
        events = [e for e in read if isinstance(e, InventoryItem.StockEvent)]
        return OversellInContext(
            receipt=receipt,
            events_before=[e for e in events if sale - context <= e.originator_version < sale],
            events_after=[e for e in events if sale < e.originator_version <= sale + context],
            before=availability_of(before, rules, sales, days[0]),
            after=availability_of(after, rules, sales, days[1]),
        )

    def channel_sales(self, sku: str, channel_id: str, since: datetime) -> list[Sale]:
        """The net units of `sku` its channel `channel_id` sold itself (a cancellation counts
        back), as recorded after `since`, each when it occurred: what lowered the channel's own
        count since a push it acknowledged at `since` (reconciliation, `domain.drift`)."""
        item_id = inventory_item_id(sku)
        # Recorded after they occur: a sale that occurred after `since` follows this version.
        version = self._receipts.version_at(item_id, since) or 0
        return [
            Sale(event.units_sold(), event.occurred_at)
            for event in self._ledger.events.get(item_id, gt=version)
            if isinstance(event, InventoryItem.StockEvent)
            and event.source == channel_id
            and event.units_sold()
        ]

    def _item(self, item_id: UUID, version: int) -> InventoryItem:
        return cast(InventoryItem, self._ledger.repository.get(item_id, version=version))

    def _window_events(
        self,
        item_id: UUID,
        rules: Sequence[ChannelRule],
        days: Sequence[date | None],
        lte: int,
    ) -> list[InventoryItem.StockEvent]:
        """The SKU's events up to version `lte` that may have occurred in the velocity windows
        ending on `days`; none when no rule weighs velocity."""
        anchored = [day for day in days if day is not None]
        if not anchored or not weighs_velocity(rules):
            return []
        # Sales are recorded after they occur: those that occurred in the window follow this
        # version. One recorded before it with a later `occurred_at` (a clock ahead by more
        # than a day) is not counted.
        start = self._receipts.version_at(item_id, window_opens(min(anchored))) or 0
        return [
            event
            for event in self._ledger.events.get(item_id, gt=start, lte=lte)
            if isinstance(event, InventoryItem.StockEvent)
        ]
