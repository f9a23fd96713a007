"""Which pushes go one by one (`PUT /v3/inventory`, shown within seconds) and which wait for a
bulk feed (`POST /v3/feeds`, processed in minutes, 10 an hour): pure decisions of the Walmart
gateway, from what it is asked and how often it pushed each SKU lately.

A hot SKU (pushed `HOT_PUSHES` times or more within the last hour: a best seller) goes on its
own, as does every push of a call small enough that a feed would waste one of the hour's few.
The long tail of a large call goes in one feed when one may be submitted now; when none may,
as many of it go one by one as the call's budget allows, and the rest wait for a later call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from infrastructure.channels.gateway import Push

HOT_PUSHES = 2  # pushes of a SKU within the hour that make it hot


@dataclass(frozen=True)
class Split:
    """`singles` go one by one now; `bulk` goes in one feed, if one may be submitted."""

    singles: list[Push] = field(default_factory=list)
    bulk: list[Push] = field(default_factory=list)


def split(pushes: Sequence[Push], recent: Mapping[str, int], put_most: int) -> Split:
    """Hot SKUs first, one by one (at most `put_most` of them); everything one by one when the
    call holds no more than `put_most`; else the rest as a feed.

    Parameters:
        recent: each SKU's pushes within the last hour.
        put_most: the most single pushes one call makes.
    """
    if len(pushes) <= put_most:
        return Split(singles=list(pushes))
    hot = [p for p in pushes if recent.get(p.sku, 0) >= HOT_PUSHES][:put_most]
    taken = {p.sku for p in hot}
    return Split(singles=hot, bulk=[p for p in pushes if p.sku not in taken])


def without_feed(planned: Split, put_most: int) -> Split:
    """What goes when no feed may be submitted now: the singles, and as much of the bulk as
    the call's `put_most` leaves room for (the rest waits for a later call)."""
    room = max(put_most - len(planned.singles), 0)
    return Split(singles=[*planned.singles, *planned.bulk[:room]])
