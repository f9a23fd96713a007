"""Which pushes go one by one (`PUT /v3/inventory`, shown within seconds) and which wait for a
bulk feed (`POST /v3/feeds`, processed in minutes, 10 an hour): pure decisions of the Walmart
gateway, from what it is asked and how often it pushed each SKU lately.

A push at risk (a move to or from zero, or to `LOW_UNITS` or fewer) goes on its own first: a feed
is processed in minutes, long enough for the last units to sell twice. Then a hot SKU (pushed
`HOT_PUSHES` times or more within the last hour: a best seller) goes on its own, as does every
push of a call small enough that a feed would waste one of the hour's few.
The long tail of a large call goes in one feed when one may be submitted now; when none may,
as many of it go one by one as the call's budget allows, and the rest wait for a later call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from infrastructure.channels.gateway import Push

HOT_PUSHES = 2  # pushes of a SKU within the hour that make it hot
LOW_UNITS = 5  # a quantity this low may sell out while a feed is processed


@dataclass(frozen=True)
class Split:
    """`singles` go one by one now; `bulk` goes in one feed, if one may be submitted."""

    singles: list[Push] = field(default_factory=list)
    bulk: list[Push] = field(default_factory=list)


def split(pushes: Sequence[Push], recent: Mapping[str, int], put_most: int) -> Split:
    """Pushes at risk, then hot SKUs, one by one (at most `put_most` of them); everything one by
    one when the call holds no more than `put_most`; else the rest as a feed.

    Parameters:
        recent: each SKU's pushes within the last hour.
        put_most: the most single pushes one call makes.
    """
    if len(pushes) <= put_most:
        return Split(singles=list(pushes))
    at_risk = [p for p in pushes if _at_risk(p)]
    hot = [p for p in pushes if recent.get(p.sku, 0) >= HOT_PUSHES and not _at_risk(p)]
    singles = [*at_risk, *hot][:put_most]
    taken = {id(p) for p in singles}
    return Split(singles=singles, bulk=[p for p in pushes if id(p) not in taken])


def _at_risk(push: Push) -> bool:
    return push.quantity <= LOW_UNITS or push.acknowledged == 0


def without_feed(planned: Split, put_most: int) -> Split:
    """What goes when no feed may be submitted now: the singles, and as much of the bulk as
    the call's `put_most` leaves room for (the rest waits for a later call)."""
    room = max(put_most - len(planned.singles), 0)
    return Split(singles=[*planned.singles, *planned.bulk[:room]])
