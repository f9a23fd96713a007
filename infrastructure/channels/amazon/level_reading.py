"""The merchant-fulfilled quantities an Amazon seller's listings show, read in bulk for
reconciliation: `searchListingsItems` with the listings' `fulfillmentAvailability`, 20 listings
a call (the most its `pageSize` and `identifiers` take), each call on that operation's turn (5 a
second, shared with the pushes' look-ups; no turn of the channel's own rate, which paces writes).

Named SKUs go 20 to a search by their identifiers; a SKU with a comma (it would split the list)
is read alone with `getListingsItem`. Every SKU the seller lists (None) is paged in the order the
listings were created; a search pages through 1,000 listings at most (the Listings Items model's
note), so each next thousand starts at the newest creation seen (`createdAfter`), re-reading only
the listings created at that instant. `read_page` reads one search at a time, its cursor saying
where in which thousand it is.

A SKU the seller does not list, or whose listing shows no merchant-fulfilled quantity, gives no
reading: its stock is not the seller's to ship.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from infrastructure.channels.amazon.client import objects
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.amazon.gateway import AmazonGateway
from infrastructure.channels.amazon.listings import LISTINGS, merchant_fulfilled
from infrastructure.channels.base import LevelPage, LevelReading
from infrastructure.channels.gateway import ChannelError
from infrastructure.channels.levels import paged

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
    if skus is None:
        return paged(lambda cursor: read_page(channel, gateway, cursor))
    return _named_readings(channel, gateway, skus)


def _named_readings(
    channel: AmazonConfig, gateway: AmazonGateway, skus: Sequence[str]
) -> Iterator[LevelReading]:
    for item, read_at in _named(channel, gateway, skus):
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


def read_page(channel: AmazonConfig, gateway: AmazonGateway, cursor: str | None) -> LevelPage:
    """One search of the catalogue from `cursor` (None: the oldest listings), 20 listings.

    Raises what `read_levels` raises, and `ValueError` for a cursor it did not make."""
    at = _Cursor.model_validate_json(cursor) if cursor else _Cursor()
    criteria = {
        **_CATALOGUE,
        **({"createdAfter": at.after} if at.after else {}),
        **({"pageToken": at.token} if at.token else {}),
    }
    answer, read_at = _search(channel, gateway, criteria)
    items = list(objects(answer.get("items")))
    fresh = [item for item in items if item.get("sku") not in at.skip]
    shown = [found for item in fresh if (found := _reading(channel, item, read_at)) is not None]
    token = (answer.get("pagination") or {}).get("nextToken")
    return LevelPage(shown, _next(channel, _seen(at, items), token))


class _Cursor(BaseModel):
    """Where a catalogue read is (see the module's docstring): the search of the listings
    created at or after `after`, at its page `token`, having paged `count` listings; the
    newest creation time it paged and the SKUs created then; and the SKUs created at `after`
    that the search before read already."""

    after: str | None = None
    token: str | None = None
    count: int = 0
    newest: str | None = None
    at_newest: list[str] = []
    skip: list[str] = []


def _seen(at: _Cursor, items: list[dict[str, Any]]) -> _Cursor:
    newest, at_newest = at.newest, list(at.at_newest)
    for item in items:
        created = _creation(item)
        if created != newest:
            newest, at_newest = created, []
        at_newest.append(str(item.get("sku")))
    update = {"count": at.count + len(items), "newest": newest, "at_newest": at_newest}
    return at.model_copy(update=update)


def _next(channel: AmazonConfig, at: _Cursor, token: object) -> str | None:
    """The next search's cursor: the search's next page, else the next thousand's first page
    (None: the catalogue ends).

    Raises:
        ChannelError: a thousand listings share one creation time, or one has none.
    """
    if isinstance(token, str) and token:
        return at.model_copy(update={"token": token}).model_dump_json()
    if at.count < PAGED_AT_MOST:
        return None
    if at.newest is None:
        raise ChannelError("SP-API answered a listing without its creation date")
    if at.newest == at.after:
        raise ChannelError(
            f"more than {PAGED_AT_MOST} of {channel.id}'s listings were created at {at.after}: "
            "searchListingsItems cannot page past them; read them by SKU instead"
        )
    return _Cursor(after=at.newest, skip=at.at_newest).model_dump_json()


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


def _creation(item: Mapping[str, Any]) -> str | None:
    """When the listing was created, as its summary says (None: it does not say)."""
    for summary in objects(item.get("summaries")):
        if isinstance(summary.get("createdDate"), str):
            return str(summary["createdDate"])
    return None
