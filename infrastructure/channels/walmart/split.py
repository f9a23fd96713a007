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
behind this call's queue. The rest of a large call, urgent pushes beyond `put_most` among them,
goes in one feed when one may be submitted now; when none may, as many of it go one by one as
the call's budget allows, and the rest wait for a later call. Urgent pushes beyond `put_most`
were once left out of the feed for the next calls' PUTs (ae03659): under load some 40 urgent
SKUs stayed pending against 5 PUTs a second and each call read them all again; its 2 runs had
every store slower (Shopify p50 0.43-0.49 s), though a later run with them in the feed was slow
too, so how much of that was the rule is not established (README, fourth round).

A push that others keep outranking (three hot SKUs changing all the time, and one PUT a call:
the two fastest take turns and the third never gets one) would wait for ever; one left pending
for `PUT_WAIT` seconds (`overdue`) goes in the next feed instead, whatever the call's size.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from infrastructure.channels.gateway import Push

SMALL_CALL = 10  # a call of this many pushes or fewer submits no feed: they go one by one
# Seconds a push may be left pending, call after call, before it goes in the next feed: at
# Walmart's 5 calls a second a minute is some 300 PUTs, ample for a backlog of urgent SKUs after
# an outage; one still waiting is outranked without end, and a feed is sooner than never.
PUT_WAIT = 60.0


@dataclass(frozen=True)
class Split:
    """`singles` go one by one now; `bulk` goes in one feed, if one may be submitted. A push
    in neither waits for a later call."""

    singles: list[Push] = field(default_factory=list)
    bulk: list[Push] = field(default_factory=list)


def split(pushes: Sequence[Push], put_most: int, overdue: Collection[str] = ()) -> Split:
    """Urgent pushes one by one, at most `put_most` of them, in the order given (the
    pusher's, most urgent first); a call of no more than `SMALL_CALL` pushes goes one by one,
    the urgent first, `put_most` of it now and the rest in later calls; a larger call sends
    the rest as a feed. Pushes of `overdue` SKUs that go in neither way go in the feed too,
    first.

    Parameters:
        put_most: the most single pushes one call makes.
        overdue: SKUs left pending for too long (`overdue`).
    """
    urgent, other = _apart(pushes)
    ranked = [*urgent, *other]
    if len(pushes) <= SMALL_CALL:
        singles, bulk = ranked[:put_most], []
    else:
        singles, bulk = urgent[:put_most], [*urgent[put_most:], *other]
    going = {p.sku for p in [*singles, *bulk]}
    late = [p for p in ranked if p.sku in overdue and p.sku not in going]
    return Split(singles=singles, bulk=[*late, *bulk])


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


def left_since(
    before: Mapping[str, float], pushes: Sequence[Push], went: Split, now: float
) -> dict[str, float]:
    """When each of `pushes` that went neither way (`went`) was first left pending, in seconds
    of the caller's clock: as `before` says when earlier calls left it too, else `now`. A SKU
    that went, or that the call did not carry, starts afresh."""
    gone = {p.sku for p in [*went.singles, *went.bulk]}
    return {p.sku: before.get(p.sku, now) for p in pushes if p.sku not in gone}


def overdue(left: Mapping[str, float], now: float, wait: float) -> set[str]:
    """The SKUs of `left` (`left_since`) left pending for `wait` seconds or more by `now`."""
    return {sku for sku, since in left.items() if now - since >= wait}
