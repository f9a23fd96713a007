"""What a push may set after a channel moved under us: pure decisions, no I/O.

A compare-and-set refusal (Shopify's `CHANGE_FROM_QUANTITY_STALE`) says the channel no longer
shows what we last saw it show: its own shoppers bought (or a merchant edited) in between. Read
again, it shows `shows`; the units it lost since are sales the ledger may not have recorded yet
(their webhooks are on their way). Until it has, the ledger's available-to-sell is too high by
that much for this channel, so:

- a push that does not raise the channel (target <= what it shows) goes at once;
- a raise goes only as far as the ATS less the channel's sales not recorded yet;
- after `wait` seconds without them, what the channel lost is taken as no sale (a merchant's
  edit, a lost webhook: reconciliation's business) and the full target goes.

The count is cumulative, so no sale is counted twice or missed whatever order the refusals and
the webhooks come in: `Drift(lost, sold)` says the channel lost `lost` units on its own since a
moment it had no sale unrecorded and the ledger held `sold` of its units sold; its sales not
recorded now are `lost` less what the ledger recorded since. A push the channel accepted proves
it had lost nothing since we last saw it, so once nothing is missing the count starts again
there (`settled`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Drift:
    """Units a channel lost on its own (`lost`) since the ledger held `sold` of its units sold
    and none of its sales were unrecorded; `at`: when it last lost some, in seconds of a clock
    the caller keeps throughout (the wait runs from there)."""

    lost: int
    sold: int
    at: float
    # Whether the channel's stock is taken to follow its recorded sales (`expected`): on from
    # a SKU's first count (`settled`) and once a read found it moved by exactly those, off once
    # a read found it did not move for them.
    guesses: bool = False


def unrecorded(drift: Drift | None, sold: int, now: float, wait: float) -> int:
    """The channel's sales the ledger has not recorded yet (`sold`: what it has), as far as
    they can be known; 0 once `wait` seconds have passed. A sale cancelled since (recorded
    sales going down) never makes it grow beyond what the channel lost."""
    if drift is None or now - drift.at >= wait:
        return 0
    return min(drift.lost, max(0, drift.lost - (sold - drift.sold)))


def refused(
    drift: Drift | None,
    before: int,
    shows: int,
    sold: int,
    *,
    now: float,
    wait: float,
    guessed: int | None = None,
) -> Drift:
    """The drift once the channel, last seen showing `before`, refused a push (made against
    `guessed`, when `expected` guessed a drop) and was read to show `shows`; `sold`: the
    channel's units sold the ledger held before the push (the base of a count that starts
    here, as none older is known).

    What it shows reflects every sale recorded so far: those the count has not seen as losses
    are counted seen (sales the ledger holds that never moved the channel's stock), so the next
    push expects nothing of them."""
    lost = before - shows  # negative: it gained (a cancellation restocked, an edit)
    guesses = drift is not None and drift.guesses
    if drift is not None and shows < before == shows + sold - drift.sold - drift.lost:
        guesses = True  # it moved by exactly its sales recorded since: expect that of them
    if guessed is not None and guessed < before and shows == before:
        guesses = False  # it did not move for its recorded sales: expect nothing of them
    if drift is None or (drift.lost and now - drift.at >= wait):  # waited out: start afresh
        return Drift(max(0, lost), sold, now, guesses)
    return Drift(max(0, drift.lost + lost, sold - drift.sold), drift.sold, now, guesses)


def settled(drift: Drift | None, sold: int, now: float, wait: float) -> Drift | None:
    """After the channel accepted a push: a count that starts again at `sold` (the channel's
    units sold the ledger held before the push) when nothing is missing any more; None when
    the drift must be kept as it is (sales still unrecorded). A SKU's first count guesses:
    a channel's stock follows its own sales, and a guess proved wrong costs the read that
    not guessing costs every time (the channel's sale of a SKU pushed once was refused,
    read again and pushed again, three calls where one does)."""
    if unrecorded(drift, sold, now, wait) > 0:
        return None
    return Drift(0, sold, now, drift is None or drift.guesses)


def expected(
    acknowledged: int | None, drift: Drift | None, sold: int
) -> tuple[int | None, Drift | None]:
    """What the channel shows now if nothing moved it since we last saw it show `acknowledged`
    but its own sales the ledger recorded since (`sold` against the count's base), and the
    count with those seen: the base of the next push's compare-and-set, which proves it (or
    refuses, and the channel is read). So a push that follows a sale recorded in the ledger
    is not refused, and needs no read. Only while the channel is taken to move by its recorded
    sales (`Drift.guesses`): one whose stock ignores them (untracked, or sales recorded for it
    that it never made) would refuse every such push."""
    if acknowledged is None or drift is None or not drift.guesses:
        return acknowledged, drift
    recorded = sold - drift.sold - drift.lost  # beyond the losses already seen
    if recorded <= 0:
        return acknowledged, drift
    return acknowledged - recorded, replace(drift, lost=sold - drift.sold)


def allowed(target: int, shows: int | None, missing: int) -> int | None:
    """What a push may set the channel to, wanting `target`, while it shows `shows` (None: not
    known, a first push) and `missing` of its sales are not recorded yet; None: nothing may go
    now (any raise would list units the channel already sold)."""
    if shows is None or target <= shows or missing == 0:
        return target
    ceiling = target - missing
    return ceiling if ceiling > shows else None
