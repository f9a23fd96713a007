"""Sales velocity: how fast each channel sells a SKU, counted from the SKU's own ledger events.

Velocity-weighted channels split their shares by it (see `domain.allocation`), so an answer about
the past needs the velocity of the past: these functions take the events and the window, and
read no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from domain.inventory import InventoryItem

# The trailing window velocity is measured over.
VELOCITY_WINDOW = timedelta(days=7)


def units_sold_per_channel(
    events: Iterable[InventoryItem.StockEvent], since: datetime, until: datetime | None = None
) -> dict[str, int]:
    """Net units each channel sold in a window: sales less the units their cancellations released.

    Parameters:
        events: a SKU's ledger events, in any order; kinds other than sales and cancellations
            count nothing.
        since, until: the window, `since` included and `until` (when given) excluded, by when
            each event `occurred_at` the source.

    Returns:
        Units per channel (the event's `source`), for each channel with a sale or cancellation in
        the window; negative where cancellations outweigh sales.
    """
    sold: Counter[str] = Counter()
    for event in events:
        if event.occurred_at >= since and (until is None or event.occurred_at < until):
            sold[event.source] += event.units_sold()
    return {channel: units for channel, units in sold.items() if units}


def velocities(sold: Mapping[str, int], window: timedelta = VELOCITY_WINDOW) -> dict[str, float]:
    """Units per day per channel over `window`, from `units_sold_per_channel`; never below zero."""
    days = window / timedelta(days=1)
    return {channel: max(0, units) / days for channel, units in sold.items()}
