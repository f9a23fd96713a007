"""Folding channel deliveries into stock without a database: the domain's own `ChannelOrder` and
`InventoryItem` aggregates, in memory, as the ledger applies them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from application.intake import Delivery, Translation
from domain.inventory import InventoryItem
from domain.orders import ChannelOrder
from domain.stock import ChangeKind, Levels, StockChange


def delivery(channel_id: str, topic: str, payload: Any, received_at: datetime | None = None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Delivery(1, channel_id, "k", topic, {}, body, received_at or datetime.now(UTC))


@dataclass
class Stock:
    """Stock and channel orders in memory, each change applied as the ledger would."""

    items: dict[str, InventoryItem] = field(default_factory=dict)
    orders: dict[tuple[str, str], ChannelOrder] = field(default_factory=dict)
    changes: list[StockChange] = field(default_factory=list)

    def receive(self, sku: str, units: int, location: str = "main") -> None:
        self._record(
            StockChange(
                kind=ChangeKind.RECEIPT,
                sku=sku,
                location=location,
                quantity=units,
                business_key=f"opening:{sku}:{location}",
                source="test",
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )

    def apply(self, translation: Translation) -> None:
        assert translation.parked is None, translation.parked
        for change in translation.changes:
            self._record(change)
        for update in translation.orders:
            key = (update.channel_id, update.order_id)
            if key in self.orders:
                changes = self.orders[key].learn(update)
            else:
                self.orders[key], changes = ChannelOrder.open(update)
            for change in changes:
                self._record(change)

    def apply_all(self, translations: Iterable[Translation]) -> Stock:
        for translation in translations:
            self.apply(translation)
        return self

    def levels(self) -> dict[tuple[str, str], Levels]:
        return {
            (sku, location): levels
            for sku, item in sorted(self.items.items())
            for location, levels in item.locations.items()
        }

    def _record(self, change: StockChange) -> None:
        item = self.items.setdefault(change.sku, InventoryItem(change.sku))
        item.record(change)
        self.changes.append(change)


def levels_after(
    translations: Iterable[Translation], opening: Mapping[str, int]
) -> dict[tuple[str, str], Levels]:
    stock = Stock()
    for sku, units in opening.items():
        stock.receive(sku, units)
    return stock.apply_all(translations).levels()
