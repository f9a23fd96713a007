"""The merchant-fulfilled quantities an Amazon seller's listings show, read in bulk for
reconciliation: `searchListingsItems` with the listings' `fulfillmentAvailability`, 20 listings
a call (the most its `pageSize` and `identifiers` take), each call on that operation's turn (5 a
second, shared with the pushes' look-ups; no turn of the channel's own rate, which paces writes).

Named SKUs go 20 to a search by their identifiers; a SKU with a comma (it would split the list)
is read alone with `getListingsItem`. Every SKU the seller lists (None) is paged in the order the
listings were created; a search pages through 1,000 listings at most (the Listings Items model's
note), so each next thousand starts at the newest creation seen (`createdAfter`), re-reading only
the listings created at that instant.

A SKU the seller does not list, or whose listing shows no merchant-fulfilled quantity, gives no
reading: its stock is not the seller's to ship.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from infrastructure.channels.amazon.client import objects
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.gateway import AmazonGateway
from infrastructure.channels.amazon.listings import LISTINGS, merchant_fulfilled
from infrastructure.channels.base import LevelReading
from infrastructure.channels.gateway import ChannelError

SEARCH_PAGE = 20  # the most listings one search answers, and SKU identifiers it takes
PAGED_AT_MOST = 1000  # listings one search can be paged through, whatever it finds
_CATALOGUE = {
    "includedData": "summaries,fulfillmentAvailability",
    "sortBy": "createdDate",
    "sortOrder": "ASC",
}

Found = tuple[dict[str, Any], datetime]  # a listings item, and when Amazon showed it


def read_levels(
    channel: AmazonConfig, gateway: AmazonGateway, skus: Sequence[str] | None
) -> Iterator[LevelReading]:
    """The merchant-fulfilled quantity of each of `skus` (ours) the seller lists, or of every
    SKU it lists when None, each as our SKU.

    Raises:
        Throttled: no turn came in time, or Amazon throttled a read.
        ChannelError: SP-API refused a read, or more than 1,000 listings share one creation time.
        ChannelUnavailable, ChannelAuthFailed: as the gateway's reads.
    """
    found = _catalogue(channel, gateway) if skus is None else _named(channel, gateway, skus)
    for item, read_at in found:
        reading = _reading(channel, item, read_at)
        if reading is not None:
            yield reading


def _named(channel: AmazonConfig, gateway: AmazonGateway, skus: Sequence[str]) -> Iterator[Found]:
    theirs = list(dict.fromkeys(channel.channel_sku(sku) for sku in skus))
    searched = [sku for sku in theirs if "," not in sku]
    for start in range(0, len(searched), SEARCH_PAGE):
        group = {"identifiers": ",".join(searched[start : start + SEARCH_PAGE])}
        answer, read_at = _search(channel, gateway, {**group, "identifiersType": "SKU"})
        yield from ((item, read_at) for item in objects(answer.get("items")))
    for sku in theirs:
        if "," in sku:
            yield from _listing(channel, gateway, sku)


def _catalogue(channel: AmazonConfig, gateway: AmazonGateway) -> Iterator[Found]:
    """Every listing once, a thousand at a time (see the module's docstring)."""
    seen: set[object] = set()
    after: str | None = None
    while True:
        window = list(_window(channel, gateway, after))
        yield from ((item, at) for item, at in window if item.get("sku") not in seen)
        seen.update(item.get("sku") for item, _ in window)
        if len(window) < PAGED_AT_MOST:
            return
        newest = _created(window[-1][0])
        if newest == after:
            raise ChannelError(
                f"more than {PAGED_AT_MOST} of {channel.id}'s listings were created at {after}: "
                "searchListingsItems cannot page past them; read them by SKU instead"
            )
        after = newest


def _window(channel: AmazonConfig, gateway: AmazonGateway, after: str | None) -> Iterator[Found]:
    """The listings created at or after `after`, oldest first, as far as a search pages."""
    criteria = {**_CATALOGUE, **({"createdAfter": after} if after else {})}
    token: object = None
    while True:
        page = {**criteria, "pageToken": token} if isinstance(token, str) and token else criteria
        answer, read_at = _search(channel, gateway, page)
        yield from ((item, read_at) for item in objects(answer.get("items")))
        token = (answer.get("pagination") or {}).get("nextToken")
        if not isinstance(token, str) or not token:
            return


def _search(
    channel: AmazonConfig, gateway: AmazonGateway, criteria: Mapping[str, str]
) -> tuple[dict[str, Any], datetime]:
    params = {
        "marketplaceIds": channel.marketplace_id,
        "includedData": "fulfillmentAvailability",
        "pageSize": str(SEARCH_PAGE),
        **criteria,
    }
    path = f"{LISTINGS}/{quote(channel.seller_id, safe='')}"
    answer = gateway.get("searchListingsItems", path, params)
    return answer or {"items": []}, datetime.now(UTC)


def _listing(channel: AmazonConfig, gateway: AmazonGateway, sku: str) -> Iterator[Found]:
    params = {"marketplaceIds": channel.marketplace_id, "includedData": "fulfillmentAvailability"}
    path = f"{LISTINGS}/{quote(channel.seller_id, safe='')}/{quote(sku, safe='')}"
    answer = gateway.get("getListingsItem", path, params)
    if answer is not None:
        yield {"sku": sku, **answer}, datetime.now(UTC)


def _reading(
    channel: AmazonConfig, item: Mapping[str, Any], read_at: datetime
) -> LevelReading | None:
    sku, quantity = item.get("sku"), merchant_fulfilled(item)
    if not isinstance(sku, str) or quantity is None:
        return None
    return LevelReading(channel.our_sku(sku), quantity, read_at)


def _created(item: Mapping[str, Any]) -> str:
    """When the listing was created, as its summary says.

    Raises:
        ChannelError: the item has no summary with a creation date.
    """
    for summary in objects(item.get("summaries")):
        if isinstance(summary.get("createdDate"), str):
            return str(summary["createdDate"])
    raise ChannelError(f"SP-API answered a listing without its creation date: {item.get('sku')}")
