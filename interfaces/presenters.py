"""Plain-data views of domain objects, shared by the HTTP API and the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from application.as_of import OversellInContext
from application.availability import ChannelAvailability
from application.receipts import Receipt
from domain.allocation import Allocation, ChannelRule, allocate
from domain.inventory import InventoryItem

_COMMON = {
    "originator_id",
    "originator_version",
    "timestamp",
    "location",
    "business_key",
    "source",
    "reference",
    "reason",
    "occurred_at",
}


def item_document(item: InventoryItem) -> dict[str, Any]:
    return {
        "sku": item.sku,
        "version": item.version,
        "locations": {name: levels.as_dict() for name, levels in item.locations.items()},
        "totals": item.totals.as_dict(),
    }


def channels_document(
    item: InventoryItem,
    rules: Sequence[ChannelRule],
    *,
    explain: bool = False,
    velocities: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """`available_to_sell` per channel (and, to explain it, the steps that produced it)."""
    return allocations_document(allocate(item.locations, rules, velocities), explain=explain)


def allocations_document(
    allocations: Mapping[str, Allocation], *, explain: bool = False
) -> dict[str, Any]:
    return {
        channel_id: {
            "available_to_sell": allocation.available_to_sell,
            **(_steps(allocation) if explain else {}),
        }
        for channel_id, allocation in allocations.items()
    }


def sent_channels_document(
    channels: Mapping[str, ChannelAvailability], *, explain: bool = False
) -> dict[str, Any]:
    """Per channel, the `available_to_sell` the availability projection holds (what the channel
    was sent, or is about to be: `pending`), how its last push went, and, to explain that very
    number, the steps that produced it from the inputs the projection used."""
    return {
        channel_id: {
            "available_to_sell": channel.available_to_sell,
            "version": channel.version,
            "pending": channel.pending,
            "pushed_version": channel.pushed_version,
            "acknowledged_quantity": channel.acknowledged_quantity,
            "acknowledged_at": (
                channel.acknowledged_at.isoformat() if channel.acknowledged_at else None
            ),
            **(_steps(channel.allocation) if explain else {}),
        }
        for channel_id, channel in channels.items()
    }


def _steps(allocation: Allocation) -> dict[str, Any]:
    return {
        "steps": [
            {"step": s.name, "quantity": s.quantity, "rule": s.rule} for s in allocation.steps
        ]
    }


def event_document(event: InventoryItem.StockEvent) -> dict[str, Any]:
    details = {k: v for k, v in vars(event).items() if k not in _COMMON}
    return {
        "version": event.originator_version,
        "kind": event.kind.value,
        "event": type(event).__name__,
        "recorded_at": event.timestamp.isoformat(),
        "occurred_at": event.occurred_at.isoformat(),
        "location": event.location,
        "business_key": event.business_key,
        "source": event.source,
        "reference": event.reference,
        "reason": event.reason,
        "details": details,
        "deltas": [
            {"location": location, "state": state, "units": units}
            for location, state, units in event.deltas()
        ],
    }


def receipt_document(receipt: Receipt) -> dict[str, Any]:
    return {
        "business_key": receipt.business_key,
        "sku": receipt.sku,
        "kind": receipt.kind.value,
        "versions": [receipt.first_version, receipt.last_version],
        "recorded_at": receipt.recorded_at.isoformat(),
        "occurred_at": receipt.occurred_at.isoformat(),
        "source": receipt.source,
        "shortfall": receipt.shortfall,
        "location": receipt.location,
        "reference": receipt.reference,
        "reason": receipt.reason,
    }


def oversell_document(oversell: OversellInContext) -> dict[str, Any]:
    """The oversold sale, the events around it, and what each channel was allowed to sell just
    before it was recorded and just after."""
    return {
        **receipt_document(oversell.receipt),
        "events_before": [event_document(e) for e in oversell.events_before],
        "events_after": [event_document(e) for e in oversell.events_after],
        "channels": {
            "before": allocations_document(oversell.before.allocations),
            "after": allocations_document(oversell.after.allocations),
        },
    }
