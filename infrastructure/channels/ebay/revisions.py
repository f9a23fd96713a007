"""eBay's revision budget (CHANNELS.md §4.3): each listing may be revised at most 250 times a
calendar day, and a push of a SKU revises each of its listings. A best seller pushed on every
sale would run out by mid-morning and then show its last quantity, whatever is sold, until
midnight. So its pushes are paced over the day, and the last revisions are kept for the moves
that matter: moves down (a listing showing more than we have sells what we do not have) and,
last of all, a move to zero.

The day is eBay's: US Pacific time (eBay's official time), so the budget starts again at
midnight there, as eBay's does. A pure policy: what it is given was read elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

EBAY_DAY = ZoneInfo("America/Los_Angeles")


@dataclass(frozen=True)
class RevisionBudget:
    """How a listing's revisions of a day are spent.

    Attributes:
        per_day: eBay's limit (250).
        zero_reserve: the last revisions, spent only on a move to zero.
        down_reserve: the revisions before those, spent only on moves down.
        burst: revisions spent freely at the start of the day, before pacing holds back.
    """

    per_day: int = 250
    zero_reserve: int = 10
    down_reserve: int = 40
    burst: int = 50


DEFAULT_BUDGET = RevisionBudget()


def may_revise(
    budget: RevisionBudget, used: int, elapsed: float, shows: int | None, quantity: int
) -> bool:
    """Whether a push of `quantity` may spend a revision of a listing that has `used` revisions
    today, `elapsed` (0 to 1) of eBay's day gone, the listing showing `shows` (None: not known,
    taken as a move down). Raises (moves up) may spend the day's budget less both reserves,
    moves down all but the last `zero_reserve`, each paced over the day after the first
    `burst`; a move to zero spends any revision left."""
    if used >= budget.per_day:
        return False
    if quantity == 0 and shows != 0:
        return True
    down = shows is None or quantity < shows
    tier = budget.per_day - budget.zero_reserve - (0 if down else budget.down_reserve)
    return used < paced(tier, elapsed, budget.burst)


def paced(tier: int, elapsed: float, burst: int) -> int:
    """The revisions of a `tier` that may be spent once `elapsed` of the day is gone: `burst`
    at once, the rest evenly over the day."""
    share = burst + math.floor((tier - burst) * min(1.0, max(0.0, elapsed)))
    return max(0, min(tier, share))


def ebay_day(now: datetime) -> tuple[str, float]:
    """eBay's calendar day at `now` (ISO date, US Pacific) and how much of it is gone (0 to
    1; a day of a daylight-saving change has 23 or 25 hours)."""
    local = now.astimezone(EBAY_DAY)
    # In UTC: Python subtracts two times of one zone by their wall clocks.
    start = datetime.combine(local.date(), time(), EBAY_DAY).astimezone(UTC)
    end = datetime.combine(local.date() + timedelta(days=1), time(), EBAY_DAY).astimezone(UTC)
    return local.date().isoformat(), (now - start) / (end - start)
