"""Adopting a store connected for the first time: what it shows of SKUs the ledger does not
know becomes their opening count, so invsync starts from the quantities the merchant sells
today instead of zero. SKUs the ledger knows are left alone (reconciliation judges their
drift)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from domain.stock import ChangeKind, StockChange


def opening_counts(
    shown: Mapping[str, int],
    known: Collection[str],
    *,
    channel_id: str,
    location: str,
    at: datetime,
) -> list[StockChange]:
    """A count of each SKU in `shown` (ours -> the quantity the channel showed) the ledger does
    not `know`, at `location`, keyed by the channel and SKU so adopting twice counts once;
    a negative quantity (a channel that oversold) opens at zero."""
    return [
        StockChange(
            kind=ChangeKind.COUNT,
            sku=sku,
            location=location,
            quantity=max(0, quantity),
            business_key=f"adopt:{channel_id}:{sku}",
            source=f"adopt:{channel_id}",
            occurred_at=at,
            reason=f"opening count: what {channel_id} showed when it was adopted",
        )
        for sku, quantity in sorted(shown.items())
        if sku not in known
    ]


def latest_shown(readings: Iterable[tuple[str, int, datetime]]) -> dict[str, int]:
    """Of several readings of a SKU (a listing and its variations), the latest."""
    latest: dict[str, tuple[datetime, int]] = {}
    for sku, quantity, read_at in readings:
        if sku not in latest or read_at >= latest[sku][0]:
            latest[sku] = (read_at, quantity)
    return {sku: quantity for sku, (_, quantity) in latest.items()}
