"""The Amazon sandbox's Listings Items API: `patchListingsItem`, `getListingsItem` and
`searchListingsItems` over the seller's listings (see `seller.py` for what it imitates).

A listing keeps its `fulfillment_availability` attribute as Amazon does, every entry with all its
fields, so a `merge` patch keeps the seller's `lead_time_to_ship_max_days` and `restock_date`
and a `replace` drops them (`feeds.patched`).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandboxes.amazon.feeds import (
    INVALID_MESSAGE,
    check_patches,
    patched,
    sp_error,
)

if TYPE_CHECKING:
    from sandboxes.amazon.seller import AmazonSandbox
    from sandboxes.timeline import Timeline


@dataclass
class Listing:
    """A listing's `fulfillment_availability` attribute (its entries as Amazon keeps them) and
    when it was created and last changed."""

    availability: list[dict[str, Any]]
    created: str = field(default_factory=lambda: amazon_time(datetime.now(UTC)))
    updated: str = field(default_factory=lambda: amazon_time(datetime.now(UTC)))

    def quantity(self) -> int:
        """The merchant-fulfilled quantity (0 when the attribute holds none)."""
        for entry in self.availability:
            if entry.get("fulfillment_channel_code") == "DEFAULT":
                return int(entry.get("quantity") or 0)
        return 0

    def patch(self, patches: list[dict[str, Any]]) -> None:
        self.availability = patched(self.availability, patches)
        self.updated = amazon_time(datetime.now(UTC))


class ListingsDesk:
    """The Listings Items routes of one `AmazonSandbox`."""

    def __init__(self, seller: AmazonSandbox, timeline: Timeline) -> None:
        self.seller, self._timeline = seller, timeline

    async def patch_item(self, request: Request) -> Response:
        """ACCEPTED and applied `apply_delay` later; for a SKU the seller does not list too, as
        on Amazon (which may make an offer-only stub of it: the sandbox makes none)."""
        sku = request.path_params["sku"]
        if (wrong := self.wrong_marketplace(request)) is not None:
            return wrong
        try:
            body = await request.json()
            product_type, patches = body["productType"], body["patches"]
        except (ValueError, KeyError, TypeError) as error:
            return sp_error(400, "InvalidInput", f"Invalid request body: {error}")
        if not isinstance(product_type, str) or not product_type:
            return sp_error(400, "InvalidInput", "productType is required")
        answer: dict[str, Any] = {"sku": sku, "submissionId": uuid.uuid4().hex, "issues": []}
        try:
            check_patches(patches)
        except (ValueError, TypeError, AttributeError) as error:
            issue = {
                "code": INVALID_MESSAGE,
                "message": str(error),
                "severity": "ERROR",
                "attributeNames": ["fulfillment_availability"],
                "categories": ["INVALID_ATTRIBUTE"],
            }
            return JSONResponse({**answer, "status": "INVALID", "issues": [issue]})
        if request.query_params.get("mode") == "VALIDATION_PREVIEW":
            return JSONResponse({**answer, "status": "VALID"})
        self._timeline.after(
            self.seller.apply_delay, lambda: self.seller.apply_patches(sku, patches)
        )
        return JSONResponse({**answer, "status": "ACCEPTED"})

    async def get_item(self, request: Request) -> Response:
        sku = request.path_params["sku"]
        if (wrong := self.wrong_marketplace(request)) is not None:
            return wrong
        item = self.item(sku, included(request))
        if item is None:
            return sp_error(404, "NOT_FOUND", f"SKU '{sku}' not found in marketplace")
        return JSONResponse(item)

    async def search_items(self, request: Request) -> Response:
        """The listings of the SKUs in `identifiers` (SKUs only here), or of every SKU the
        seller lists, filtered by creation and last change, sorted, paged by `pageToken`; a SKU
        the seller does not list is simply not among them. As the model says, no more than the
        first 1,000 can be paged through."""
        if (wrong := self.wrong_marketplace(request)) is not None:
            return wrong
        query = request.query_params
        if "identifiers" in query and query.get("identifiersType") != "SKU":
            return sp_error(400, "InvalidInput", "The sandbox searches by identifiers of SKUs.")
        try:
            skus, start = self.searched(query), _offset(query.get("pageToken"))
        except ValueError as error:
            return sp_error(400, "InvalidInput", str(error))
        size = int(query.get("pageSize", "10"))
        page = skus[start : min(start + size, PAGED_AT_MOST)]
        found = [i for sku in page if (i := self.item(sku, included(request))) is not None]
        answer: dict[str, Any] = {"numberOfResults": len(skus), "items": found}
        if start + size < min(len(skus), PAGED_AT_MOST):
            answer["pagination"] = {"nextToken": _token(start + size)}
        return JSONResponse(answer)

    def searched(self, query: Any) -> list[str]:
        """The SKUs a search selects, in its order.

        Raises:
            ValueError: a date that is not ISO 8601, or an unknown sort.
        """
        if "identifiers" in query:
            named = dict.fromkeys(query["identifiers"].split(","))
            return [sku for sku in named if self.seller.listing(sku) is not None]
        field = _SORTS[query.get("sortBy", "lastUpdatedDate")]
        bounds = {name: amazon_time(_date(query[name])) for name in _BOUNDS if name in query}
        listings = [(sku, listing) for sku, listing in self.seller.listed()]
        chosen = [(sku, listing) for sku, listing in listings if _admits(listing, bounds)]
        chosen.sort(key=lambda pair: field(*pair), reverse=query.get("sortOrder") != "ASC")
        return [sku for sku, _ in chosen]

    def item(self, sku: str, included: list[str]) -> dict[str, Any] | None:
        """A listings item with the data sets `included`; None when the seller has no listing."""
        listing = self.seller.listing(sku)
        if listing is None:
            return None
        availability, created, updated = listing.availability, listing.created, listing.updated
        item: dict[str, Any] = {"sku": sku}
        if "summaries" in included:
            summary = {
                "marketplaceId": self.seller.marketplace_id,
                "productType": "PRODUCT",
                "status": ["BUYABLE", "DISCOVERABLE"],
                "createdDate": created,
                "lastUpdatedDate": updated,
            }
            item["summaries"] = [summary]
        if "attributes" in included:
            item["attributes"] = {"fulfillment_availability": availability}
        if "issues" in included:
            item["issues"] = []
        if "fulfillmentAvailability" in included:
            item["fulfillmentAvailability"] = [
                {"fulfillmentChannelCode": e["fulfillment_channel_code"], "quantity": e["quantity"]}
                for e in availability
                if "fulfillment_channel_code" in e and isinstance(e.get("quantity"), int)
            ]
        return item

    def wrong_marketplace(self, request: Request) -> Response | None:
        if request.query_params.get("marketplaceIds") == self.seller.marketplace_id:
            return None
        return sp_error(400, "InvalidInput", f"marketplaceIds must be {self.seller.marketplace_id}")


PAGED_AT_MOST = 1000  # items a search can be paged through, whatever it finds (the model's note)

# A listing's dates are all `amazon_time` texts, which sort as the moments they name: compared
# as texts, a search of 20,000 listings parses no date but its own bounds.
_SORTS: dict[str, Callable[[str, Listing], Any]] = {
    "sku": lambda sku, listing: sku,
    "createdDate": lambda sku, listing: (listing.created, sku),
    "lastUpdatedDate": lambda sku, listing: (listing.updated, sku),
}
_BOUNDS = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")


def _admits(listing: Listing, bounds: dict[str, str]) -> bool:
    created, updated = listing.created, listing.updated
    return (
        created >= bounds.get("createdAfter", created)
        and created <= bounds.get("createdBefore", created)
        and updated >= bounds.get("lastUpdatedAfter", updated)
        and updated <= bounds.get("lastUpdatedBefore", updated)
    )


def _date(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "offset" and offset.isdigit():
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValueError("Invalid pageToken")


def included(request: Request) -> list[str]:
    """The data sets a read asks for (`includedData`, `summaries` by default)."""
    return request.query_params.get("includedData", "summaries").split(",")


def amazon_time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
