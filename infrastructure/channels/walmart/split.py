"""Which pushes go one by one (`PUT /v3/inventory`, shown within seconds) and which wait for a
bulk feed (`POST /v3/feeds`, processed in minutes, 10 an hour): pure decisions of the Walmart
gateway, from what it is asked and how often it pushed each SKU lately.

A push at risk (a move to or from zero, or to `LOW_UNITS` or fewer) goes on its own first: a feed
is processed in minutes, long enough for the last units to sell twice. Then a hot SKU (pushed
`HOT_PUSHES` times or more within the last hour: a best seller) goes on its own, then every
other push of a call small enough (`SMALL_CALL`) that a feed would waste one of the hour's few.
Each single takes a turn of the channel's rate, so a call makes few of them (`put_most`): the
rest get no result and go in the pusher's next call, which is decided afresh at its turn, so a
SKU that falls to its last units meanwhile goes first there instead of behind this call's queue.
The long tail of a large call goes in one feed when one may be submitted now; when none may,
as many of it go one by one as the call's budget allows, and the rest wait for a later call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from infrastructure.channels.gateway import Push

HOT_PUSHES = 2  # pushes of a SKU within the hour that make it hot
LOW_UNITS = 5  # a quantity this low may sell out while a feed is processed
SMALL_CALL = 10  # a call of this many pushes or fewer submits no feed: they go one by one


@dataclass(frozen=True)
class Split:
    """`singles` go one by one now; `bulk` goes in one feed, if one may be submitted. A push
    in neither waits for a later call."""

    singles: list[Push] = field(default_factory=list)
    bulk: list[Push] = field(default_factory=list)


def split(pushes: Sequence[Push], recent: Mapping[str, int], put_most: int) -> Split:
    """Pushes at risk, then hot SKUs, one by one (at most `put_most` of them, each group in the
    order given: the pusher's, most urgent first); a call of no more than `SMALL_CALL` pushes
    goes one by one in that order, `put_most` of it now and the rest in later calls; a larger
    call sends the rest as a feed.

    Parameters:
        recent: each SKU's pushes within the last hour.
        put_most: the most single pushes one call makes.
    """
    at_risk = [p for p in pushes if _at_risk(p)]
    hot = [p for p in pushes if recent.get(p.sku, 0) >= HOT_PUSHES and not _at_risk(p)]
    first = [*at_risk, *hot]
    taken = {id(p) for p in first}
    rest = [p for p in pushes if id(p) not in taken]
    if len(pushes) <= SMALL_CALL:
        return Split(singles=[*first, *rest][:put_most])
    singles = first[:put_most]
    going = {id(p) for p in singles}
    return Split(singles=singles, bulk=[p for p in pushes if id(p) not in going])


def _at_risk(push: Push) -> bool:
    return push.quantity <= LOW_UNITS or push.acknowledged == 0


def without_feed(planned: Split, put_most: int) -> Split:
    """What goes when no feed may be submitted now: the singles, and as much of the bulk as
    the call's `put_most` leaves room for (the rest waits for a later call)."""
    room = max(put_most - len(planned.singles), 0)
    return Split(singles=[*planned.singles, *planned.bulk[:room]])
