"""eBay's daily call limits (CHANNELS.md §4.3: the Inventory API 2,000,000 calls a day, the
Fulfillment API 100,000), which start again at midnight US Pacific time. Past a limit eBay answers
429 until then, with no `Retry-After`, and with the same error as a short burst's throttling; so
a 429 naming no wait waits twice as long as the one before it in a row, never past the next
Pacific midnight: a short throttle costs one short wait, a spent day about a dozen calls, not a
call every few seconds until midnight. A pure policy: the time is given."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from infrastructure.channels.ebay.revisions import EBAY_DAY


def throttled_wait(first: float, in_a_row: int, now: datetime) -> float:
    """Seconds to wait after the `in_a_row`-th 429 in a row (from 1) that named no wait: `first`
    doubled each time, at most until eBay's next day starts (when its call limits do)."""
    doubled = first * 2.0 ** min(max(0, in_a_row - 1), 32)
    return max(0.0, min(doubled, until_next_day(now)))


def until_next_day(now: datetime) -> float:
    """Seconds from `now` to the next midnight in US Pacific time (eBay's day)."""
    local = now.astimezone(EBAY_DAY)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), EBAY_DAY)
    return (midnight.astimezone(UTC) - now.astimezone(UTC)).total_seconds()
