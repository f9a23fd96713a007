"""Compare-and-set for WooCommerce, whose writes are absolute: read, compare, then write.

A quantity the ledger computed before the store's latest sales reached it would, written as is,
put those units back on sale: the store showed 1 (acknowledged), sold it (0), and a push of 1
computed a moment earlier lists a unit that no longer exists. Shopify refuses such a write
(`changeFromQuantity`, CHANGE_FROM_QUANTITY_STALE); WooCommerce cannot. So the gateway reads what
the store shows (`current`) before a push with an acknowledgement, in one call for the batch,
and decides here, as Shopify would:

- the store shows what it last acknowledged (or there is no acknowledgement, or its stock is not
  managed): the target is written, or nothing where it is the target already;
- the store moved under us (its shoppers bought, a merchant edited): nothing is written, and the
  push is answered STALE with what the store shows. The pusher keeps the row and takes the units
  the store lost as sales the ledger may not have recorded yet: what does not raise the store
  goes at once, a raise only as far as those sales, once recorded, allow (`push/decisions.py`).

A decrease on a moved store is answered STALE too, though it could be written safely: written,
the units the store lost would be forgotten, and the next raise would list them again. So is a
store that moved to the very target: it needs no write, but the units it lost must still be
remembered, or a receipt soon after would list them again (found by the property test).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    WRITE = "write"
    UNCHANGED = "unchanged"  # the store shows the target: nothing to write
    MOVED = "moved"  # the store is not what it acknowledged: answer STALE


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    quantity: int  # what to write (WRITE) or what the store shows (UNCHANGED, MOVED)


def decide(target: int, acknowledged: int | None, current: int | None) -> Decision:
    """What to do with a push of `target` to a store that last acknowledged `acknowledged`
    (None: never pushed) and shows `current` now (None: not read, or stock not managed)."""
    if current is None:
        return Decision(Verdict.WRITE, target)
    if acknowledged is not None and current != acknowledged:
        return Decision(Verdict.MOVED, current)
    if target == current:
        return Decision(Verdict.UNCHANGED, current)
    return Decision(Verdict.WRITE, target)


def needs_read(acknowledged: int | None) -> bool:
    """Whether a push must read the store first: any push after an acknowledgement (a
    decrease too, as the store may have sold below it)."""
    return acknowledged is not None
