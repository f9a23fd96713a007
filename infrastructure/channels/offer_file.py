"""A channel's published offers of each SKU (eBay's offer and listing ids), as its gateway
looked them up, and the file where a gateway started afresh finds them (`OfferFile`) instead of
asking the channel again: after a restart (or in another worker) a SKU's first push would
otherwise cost a lookup ahead of it, on the channel's call budget.

The gateway is given the file when it is built (`kinds.push_gateway`, by the composition root);
it never opens the database itself. A lookup, in memory or on file, holds for as long as the
gateway would keep it (`in_force`): an offer published since is found at the next lookup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

# (offer id, listing id) of each of a SKU's published offers; empty: it has none.
Offers = tuple[tuple[str, str], ...]
# How long a lookup holds (`in_force`), in memory or on file; one older is never used again.
OFFER_SECONDS = 3600.0


@dataclass(frozen=True)
class Lookup:
    """A SKU's published offers as the channel answered for them `at`."""

    offers: Offers
    at: datetime


class OfferFile(Protocol):
    """Where a channel's gateways file the offers they looked up, shared by every worker and
    kept across restarts (`PushStore`, over `infrastructure/channel_offers.py`)."""

    def filed_offers(self, channel_id: str, skus: Sequence[str]) -> dict[str, Lookup]:
        """The lookups on file of those of `skus` that have one, however old."""
        ...

    def file_offers(self, channel_id: str, found: Mapping[str, Lookup]) -> None:
        """File `found`, each SKU's in place of an older lookup on file."""
        ...

    def forget_offers(self, channel_id: str, skus: Sequence[str]) -> None:
        """Forget the lookups of `skus` on file: the channel no longer has an offer of theirs."""
        ...


class Unfiled:
    """No file: a gateway keeps its lookups in its own memory alone (reads, tests)."""

    def filed_offers(self, channel_id: str, skus: Sequence[str]) -> dict[str, Lookup]:
        return {}

    def file_offers(self, channel_id: str, found: Mapping[str, Lookup]) -> None:
        pass

    def forget_offers(self, channel_id: str, skus: Sequence[str]) -> None:
        pass


UNFILED = Unfiled()


def in_force(
    skus: Sequence[str], kept: Mapping[str, Lookup], now: datetime, seconds: float
) -> tuple[dict[str, Lookup], list[str]]:
    """Those of `skus` whose lookup in `kept` is under `seconds` old at `now`, with it, and the
    others in the order given (none kept, or kept too long: to be looked for further)."""
    since = now - timedelta(seconds=seconds)
    found = {
        sku: lookup for sku in skus if (lookup := kept.get(sku)) is not None and lookup.at > since
    }
    return found, [sku for sku in skus if sku not in found]
