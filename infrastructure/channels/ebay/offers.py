"""What an eBay gateway knows of its SKUs' published offers (offer id, listing id), and which it
asks eBay for before a call: `GET /offer?sku=` is a call, and a turn of the channel's rate, per
SKU, so lookups come out of the same budget as the pushes waiting for them.

A lookup holds an hour (`in_force`), in memory and in the offer file, where a gateway started
afresh finds it. A call whose other pushes are ready makes at most `LOOKUPS_BESIDE_PUSHES`
lookups and leaves the other new SKUs to later calls (`to_look_up_now`): SKUs first pushed under
load (levels that matched until then, or lookups lapsed an hour after a start) made every call
wait 25 lookups before (1.2-1.8 s at eBay's 20 a second). A call with nothing else ready looks
all of its new SKUs up: only they wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from cachetools import TTLCache

from infrastructure.channels.offer_file import OFFER_SECONDS, Lookup, OfferFile, Offers, in_force

LOOKUPS_BESIDE_PUSHES = 2  # at eBay's 20 calls a second, ready pushes wait 0.1 s at most
# A SKU left for a later call this long is looked up before newer ones, whatever its rank: a
# slow seller is not put off for as long as faster SKUs new to the gateway keep coming.
OVERDUE_SECONDS = 5.0


def to_look_up_now(
    unknown: Sequence[str],
    pushes_ready: bool,
    left_since: Mapping[str, float],
    now: float,
    most: int = LOOKUPS_BESIDE_PUSHES,
) -> list[str]:
    """Which of `unknown` (SKUs without offers known, in the pusher's order: at risk first,
    then by velocity) a call looks up before it goes: all when no push of the call is ready
    without them (`pushes_ready`); else `most`, those left since (`left_since`, seconds) at
    least `OVERDUE_SECONDS` before `now` first.

    Raises:
        ValueError: `most` is below 1 (a call would never look a new SKU up).
    """
    if most < 1:
        raise ValueError(f"a call looks up at least one SKU beside its pushes, not {most}")
    if not pushes_ready:
        return list(unknown)
    overdue = [s for s in unknown if now - left_since.get(s, now) >= OVERDUE_SECONDS]
    late = set(overdue)
    rest = [s for s in unknown if s not in late]
    return (overdue + rest)[:most]


class OfferBook:
    """One gateway's offers: kept in memory and filed, looked up by `lookup` (one call each)."""

    def __init__(
        self,
        channel_id: str,
        file: OfferFile,
        lookup: Callable[[str], Offers],
        clock: Callable[[], datetime],
    ) -> None:
        self.channel_id, self._file, self._lookup, self._clock = channel_id, file, lookup, clock
        self._kept: TTLCache[str, Lookup] = TTLCache(100_000, OFFER_SECONDS)
        # When each SKU was first left for a later call (monotonic); a SKU unseen this long
        # loses its place, as a pusher no longer asking for it would.
        self._left_since: TTLCache[str, float] = TTLCache(100_000, 600.0)

    def known(self, skus: Sequence[str]) -> dict[str, Offers]:
        """The offers of those of `skus` looked up within the hour, here or on file."""
        now = self._clock()
        found, unknown = in_force(skus, self._kept, now, OFFER_SECONDS)
        if unknown:
            filed, _ = in_force(
                unknown, self._file.filed_offers(self.channel_id, unknown), now, OFFER_SECONDS
            )
            self._kept.update(filed)
            found |= filed
        return {sku: found[sku].offers for sku in skus if sku in found}

    def look_up(self, unknown: Sequence[str], pushes_ready: bool) -> dict[str, Offers]:
        """The offers of those of `unknown` a call looks up now (`to_look_up_now`), kept and
        filed, those looked up before a lookup fails too; the others are left for later."""
        now = time.monotonic()
        chosen = to_look_up_now(unknown, pushes_ready, self._left_since, now)
        for sku in unknown:
            if sku not in chosen:
                self._left_since.setdefault(sku, now)
        found: dict[str, Lookup] = {}
        try:
            for sku in chosen:
                found[sku] = Lookup(self._lookup(sku), self._clock())
                self._left_since.pop(sku, None)
        finally:
            self._kept.update(found)
            self._file.file_offers(self.channel_id, found)
        return {sku: lookup.offers for sku, lookup in found.items()}

    def forget(self, skus: Sequence[str]) -> None:
        """Forget the offers of `skus`, here and on file: eBay no longer has them."""
        for sku in skus:
            self._kept.pop(sku, None)
        if skus:
            self._file.forget_offers(self.channel_id, sorted(skus))
