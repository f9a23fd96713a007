"""Which SKUs an Amazon seller lists, and what a listing patch carries and its issues mean.

Amazon addresses a listing by seller id and SKU, but accepts a patch for a SKU the seller does
not list (answering ACCEPTED, perhaps making an offer-only stub of it). So before a SKU's first
push the gateway asks `getListingsItem` (404: no listing), or for many SKUs
`searchListingsItems` (20 a call, where getListingsItem takes one), and keeps the answer: a SKU
without a listing is UNKNOWN_SKU and never patched (looked at again after `recheck_unlisted`
seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from infrastructure.channels.amazon.client import SpApi, describe, objects
from infrastructure.channels.gateway import ChannelError, PushResult, PushStatus
from infrastructure.channels.http import json_of

LISTINGS = "/listings/2021-08-01/items"
SEARCH_LIMIT = 20  # SKUs one searchListingsItems call looks for (identifiers, pageSize)
MFN_CHANNEL = "DEFAULT"  # the fulfillment channel code of merchant-fulfilled stock
# Issue codes saying the seller has no listing with the SKU (legacy feeds' 13013, "SKU does not
# exist"; not confirmed for the JSON feed in CHANNELS.md).
UNKNOWN_SKU_CODES = frozenset({"13013"})


class Refused(ChannelError):
    """Raised when SP-API refuses to say whether the seller lists a SKU (4xx but 404)."""


class Listings:
    """One seller's listings in one marketplace, as SP-API last showed them.

    Parameters:
        api: the seller authorisation's SP-API calls.
        seller_id, marketplace_id: whose listings, where.
        recheck_unlisted: seconds a SKU found without a listing is taken to have none.
    """

    def __init__(
        self, api: SpApi, seller_id: str, marketplace_id: str, recheck_unlisted: float
    ) -> None:
        self._api, self.seller_id, self.marketplace_id = api, seller_id, marketplace_id
        self.recheck_unlisted = recheck_unlisted
        self._listed: set[str] = set()  # SKUs found listed
        self._unlisted: dict[str, float] = {}  # SKU → when it was found without a listing

    def found(self, sku: str) -> bool | None:
        """Whether the seller lists `sku`, as last found; None if not looked at (lately)."""
        if sku in self._listed:
            return True
        found = self._unlisted.get(sku)
        if found is not None and time.monotonic() - found < self.recheck_unlisted:
            return False
        return None

    def look_at(
        self, skus: Sequence[str], refused: dict[str, str], turn: Callable[[str], None]
    ) -> None:
        """Find which of `skus` the seller lists: many at a time with `searchListingsItems` (20
        SKUs a call), one alone, or with a comma (it would split the search's list), with
        `getListingsItem` (404: none). `turn(operation)` comes before each call; SKUs SP-API
        refuses to look at go in `refused`.

        Raises:
            Throttled: from `turn`, or Amazon throttled a look.
        """
        skus = list(dict.fromkeys(skus))
        searched = [sku for sku in skus if "," not in sku]
        if len(searched) < 2:
            searched = []
        for start in range(0, len(searched), SEARCH_LIMIT):
            group = searched[start : start + SEARCH_LIMIT]
            turn("searchListingsItems")
            try:
                self._search(group)
            except Refused as error:
                refused.update(dict.fromkeys(group, str(error)))
        for sku in skus:
            if sku not in searched:
                turn("getListingsItem")
                try:
                    self.listing(sku)
                except Refused as error:
                    refused[sku] = str(error)

    def listing(self, sku: str) -> dict[str, Any] | None:
        """The listing with its fulfillment availability; None when the seller has none with
        `sku` (404). What it finds is kept for `found`.

        Raises:
            Refused: SP-API refused the request (4xx other than 404).
        """
        params = {**self.marketplace(), "includedData": "fulfillmentAvailability"}
        response = self._api.call("getListingsItem", "GET", self.item_path(sku), params=params)
        if response.status_code == 404:
            self._keep(sku, listed=False)
            return None
        answer = json_of(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise Refused(f"SP-API refused to read {sku!r}: {describe(response)}")
        self._keep(sku, listed=True)
        return answer

    def item_path(self, sku: str) -> str:
        return f"{LISTINGS}/{quote(self.seller_id, safe='')}/{quote(sku, safe='')}"

    def marketplace(self) -> dict[str, str]:
        return {"marketplaceIds": self.marketplace_id}

    def _search(self, skus: Sequence[str]) -> None:
        """Which of `skus` (at most 20, none with a comma) the seller lists, kept for `found`.

        Raises:
            Refused: SP-API refused the search (4xx but 404, which finds none).
        """
        params = {
            **self.marketplace(),
            "identifiers": ",".join(skus),
            "identifiersType": "SKU",
            "pageSize": str(SEARCH_LIMIT),
        }
        path = f"{LISTINGS}/{quote(self.seller_id, safe='')}"
        response = self._api.call("searchListingsItems", "GET", path, params=params)
        answer = json_of(response) if response.status_code != 404 else {"items": []}
        if response.status_code not in (200, 404) or not isinstance(answer, dict):
            raise Refused(f"SP-API refused to search for {len(skus)} SKUs: {describe(response)}")
        found = {item.get("sku") for item in objects(answer.get("items"))}
        for sku in skus:
            self._keep(sku, sku in found)

    def _keep(self, sku: str, listed: bool) -> None:
        if listed:
            self._listed.add(sku)
            self._unlisted.pop(sku, None)
        else:
            self._unlisted[sku] = time.monotonic()
            self._listed.discard(sku)


def patches(quantity: int) -> list[dict[str, Any]]:
    """`merge`, so only the quantity changes: `replace` would drop the seller's other fields of
    the attribute (`lead_time_to_ship_max_days`, `restock_date`)."""
    availability = [{"fulfillment_channel_code": MFN_CHANNEL, "quantity": quantity}]
    return [{"op": "merge", "path": "/attributes/fulfillment_availability", "value": availability}]


def merchant_fulfilled(listing: Mapping[str, Any] | None) -> int | None:
    """The merchant-fulfilled quantity a listing shows; None without one."""
    for entry in (listing or {}).get("fulfillmentAvailability") or []:
        if isinstance(entry, dict) and entry.get("fulfillmentChannelCode") == MFN_CHANNEL:
            quantity = entry.get("quantity")
            return quantity if isinstance(quantity, int) else None
    return None


def submission_result(sku: str, issues: Sequence[Mapping[str, Any]]) -> PushResult:
    """The result of a submission (a patch, a feed's message) with these issues: only ERRORs
    refuse it."""
    errors = [issue for issue in issues if issue.get("severity") == "ERROR"]
    if not errors:
        return PushResult(sku, PushStatus.APPLIED)
    detail = "; ".join(f"{e.get('code')}: {e.get('message', '')}" for e in errors)
    if any(str(e.get("code")) in UNKNOWN_SKU_CODES for e in errors):
        return unknown(sku, detail)
    return PushResult(sku, PushStatus.REJECTED, detail=detail)


def unknown(sku: str, detail: str) -> PushResult:
    return PushResult(sku, PushStatus.UNKNOWN_SKU, detail=detail)
