"""Which pushes go one by one (`PUT /v3/inventory`, shown within seconds) and which wait for a
bulk feed (`POST /v3/feeds`, processed in minutes, 10 an hour): pure decisions of the Walmart
gateway, from what it is asked.

What goes first is the pusher's verdict, not the gateway's: an urgent push (`Push.urgent`: at
risk of selling out, or among the hot sellers by velocity, per the push policy) goes on its own,
in the pusher's order (lowest cover first, then the fastest sellers), since a feed is processed
in minutes, long enough for the last units to sell twice. Every push of a call small enough
(`SMALL_CALL`) that a feed would waste one of the hour's few goes on its own too, the urgent
first. Each single takes a turn of the channel's rate, so a call makes few of them
(`put_most`): the rest get no result and go in the pusher's next call, which is decided afresh
at its turn, so a SKU that falls to its last units meanwhile goes first there instead of
behind this call's queue. The rest of a large call goes in one feed when one may be submitted
now; when none may, as many of it go one by one as the call's budget allows, and the rest wait
for a later call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from infrastructure.channels.gateway import Push

SMALL_CALL = 10  # a call of this many pushes or fewer submits no feed: they go one by one


@dataclass(frozen=True)
class Split:
    """`singles` go one by one now; `bulk` goes in one feed, if one may be submitted. A push
    in neither waits for a later call."""

    singles: list[Push] = field(default_factory=list)
    bulk: list[Push] = field(default_factory=list)


def split(pushes: Sequence[Push], put_most: int) -> Split:
    """Urgent pushes one by one, at most `put_most` of them, in the order given (the
    pusher's, most urgent first); a call of no more than `SMALL_CALL` pushes goes one by one,
    the urgent first, `put_most` of it now and the rest in later calls; a larger call sends
    the rest, urgent ones beyond `put_most` among them, as a feed.

    Parameters:
        put_most: the most single pushes one call makes.
    """
    urgent, other = _apart(pushes)
    if len(pushes) <= SMALL_CALL:
        return Split(singles=[*urgent, *other][:put_most])
    return Split(singles=urgent[:put_most], bulk=[*urgent[put_most:], *other])


def _apart(pushes: Sequence[Push]) -> tuple[list[Push], list[Push]]:
    """The urgent pushes and the others, each in the order given."""
    urgent: list[Push] = []
    other: list[Push] = []
    for push in pushes:
        (urgent if push.urgent else other).append(push)
    return urgent, other


def without_feed(planned: Split, put_most: int) -> Split:
    """What goes when no feed may be submitted now: the singles, and as much of the bulk as
    the call's `put_most` leaves room for (the rest waits for a later call)."""
    room = max(put_most - len(planned.singles), 0)
    return Split(singles=[*planned.singles, *planned.bulk[:room]])
