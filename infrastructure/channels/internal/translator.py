"""Our own stock-change documents to `StockChange`s: the fields map one to one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from application.intake import Delivery, Translation
from domain.errors import DomainError
from domain.stock import ChangeKind, QuantityState, StockChange
from infrastructure.channels.base import ChannelReads, Lane
from infrastructure.channels.config import ChannelConfig

_OPTIONAL = ("reference", "reason", "to_location", "expected", "restock", "reservation_id")


def translate(channel: ChannelConfig, delivery: Delivery, reads: ChannelReads) -> Translation:
    try:
        document = json.loads(delivery.body)
        return Translation(changes=[_change(channel, item) for item in document["changes"]])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, DomainError) as error:
        return Translation.park(f"not a stock-change document: {error!r}")


def lane(topic: str) -> Lane:
    return Lane.INCREMENTS


def _change(channel: ChannelConfig, item: dict[str, Any]) -> StockChange:
    occurred = item.get("occurred_at")
    return StockChange(
        kind=ChangeKind(item["kind"]),
        sku=item["sku"],
        location=item.get("location") or channel.default_location,
        quantity=item["quantity"],
        business_key=f"{channel.id}:{item['business_key']}",
        source=channel.id,
        occurred_at=datetime.fromisoformat(occurred) if occurred else datetime.now(UTC),
        state=QuantityState(item.get("state", "on_hand")),
        **{name: item[name] for name in _OPTIONAL if name in item},
    )
