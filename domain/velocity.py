"""Sales velocity: how fast each channel sells a SKU, counted from the SKU's own ledger events.

Velocity-weighted channels split their shares by it (see `domain.allocation`). Velocity is
measured over the `VELOCITY_WINDOW` whole days up to a given day, from units sold per (channel,
day the sale occurred at its source), so the projection (which keeps those per-day sums) and an
answer about the past (which sums the events) count the very same units. Nothing here reads a
clock: the day is always given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from domain.inventory import InventoryItem

# The trailing window velocity is measured over, in whole days.
VELOCITY_WINDOW = timedelta(days=7)
VELOCITY_DAYS = VELOCITY_WINDOW.days

DailySales = Mapping[tuple[str, date], int]  # (channel, day occurred) -> net units sold


def daily_sales(events: Iterable[InventoryItem.StockEvent]) -> dict[tuple[str, date], int]:
    """Net units each channel sold per day: sales less the units their cancellations released.

    Parameters:
        events: a SKU's ledger events, in any order; kinds other than sales and cancellations
            count nothing.

    Returns:
        Units per (channel, day): the event's `source` and the date it `occurred_at` the
        source; a (channel, day) with sales that cancellations took back holds 0.
    """
    sold: dict[tuple[str, date], int] = {}
    for event in events:
        if units := event.units_sold():
            add_sale(sold, event, units)
    return sold


def add_sale(
    sold: dict[tuple[str, date], int], event: InventoryItem.StockEvent, units: int
) -> tuple[str, date]:
    """Count `units` (the event's `units_sold()`, non-zero) in `sold` under the (channel, day)
    `event` sold them: its `source` and the date it `occurred_at` the source. The one place
    sales are counted, for `daily_sales` and the projection's running per-day sums alike.
    Returns that (channel, day)."""
    key = (event.source, event.occurred_at.date())
    sold[key] = sold.get(key, 0) + units
    return key


def window_start(day: date) -> date:
    """The first day of the velocity window that ends on `day` (both included)."""
    return day - timedelta(days=VELOCITY_DAYS - 1)


def velocities_on(sales: DailySales, day: date) -> dict[str, float]:
    """Units sold per day per channel over the `VELOCITY_DAYS` days up to `day` included.

    Parameters:
        sales: units per (channel, day), as `daily_sales` counts them; days outside the window
            count nothing.
        day: the last day of the window.

    Returns:
        Units per day for each channel with sales in the window, never below zero.
    """
    first = window_start(day)
    totals: dict[str, int] = {}
    for (channel, sold_on), units in sales.items():
        if first <= sold_on <= day:
            totals[channel] = totals.get(channel, 0) + units
    return {channel: max(0, units) / VELOCITY_DAYS for channel, units in totals.items()}
