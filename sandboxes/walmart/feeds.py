"""The Walmart sandbox's bulk inventory feeds (CHANNELS.md §5): `POST /v3/feeds?feedType=
inventory` (spec 1.4 JSON, the default ship node) or `MP_INVENTORY` (spec 1.5, ship nodes named),
a multipart upload of at most 5 MB (413 beyond), processed `feed_delay` seconds later; `GET
/v3/feeds/{feedId}?includeDetails=true` shows it RECEIVED, then PROCESSED with each item's
ingestion status (a SKU the seller does not list is a DATA_ERROR), `offset` and `limit` (at most
1,000) paging the items; a file that is not a feed is an ERROR. How many feeds an hour is the
seller's bucket of the `feeds` operation (10 an hour)."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandboxes.timeline import Timeline
from sandboxes.walmart.orders import walmart_error

if TYPE_CHECKING:
    from sandboxes.walmart.seller import WalmartSandbox

MOST_BYTES = 5 * 1024 * 1024
MOST_DETAILS = 1000


@dataclass
class Feed:
    feed_id: str
    items: list[tuple[str, str, int]]  # (sku, ship node, quantity)
    status: str = "RECEIVED"
    results: list[dict[str, Any]] = field(default_factory=list)


class FeedDesk:
    def __init__(self, seller: WalmartSandbox, feed_delay: float, timeline: Timeline) -> None:
        self._seller, self.feed_delay, self._timeline = seller, feed_delay, timeline
        self.feeds: dict[str, Feed] = {}
        self._lock = threading.Lock()

    async def submit(self, request: Request) -> Response:
        feed_type = request.query_params.get("feedType")
        if feed_type not in ("inventory", "MP_INVENTORY"):
            return walmart_error(400, "INVALID_REQUEST_PARAM", f"feedType {feed_type!r}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MOST_BYTES + 64 * 1024:
            return walmart_error(413, "REQUEST_ENTITY_TOO_LARGE", "a feed file is at most 5 MB")
        async with request.form(max_part_size=MOST_BYTES + 1) as form:
            upload = form.get("file")
            content = (
                await upload.read() if upload is not None and not isinstance(upload, str) else b""
            )
        if len(content) > MOST_BYTES:
            return walmart_error(413, "REQUEST_ENTITY_TOO_LARGE", "a feed file is at most 5 MB")
        feed = Feed(f"{uuid.uuid4().hex.upper()}@AQMB", [])
        try:
            feed.items = _items(json.loads(content), feed_type)
        except (ValueError, KeyError, TypeError):
            feed.status = "ERROR"
        with self._lock:
            self.feeds[feed.feed_id] = feed
        if feed.status != "ERROR":
            self._timeline.after(self.feed_delay, lambda: self._process(feed))
        return JSONResponse({"feedId": feed.feed_id})

    async def status(self, request: Request) -> Response:
        with self._lock:
            feed = self.feeds.get(request.path_params["feed_id"])
        if feed is None:
            return walmart_error(404, "CONTENT_NOT_FOUND", "no such feed")
        query = request.query_params
        offset, limit = int(query.get("offset", "0")), int(query.get("limit", "50"))
        if not 1 <= limit <= MOST_DETAILS:
            return walmart_error(400, "INVALID_REQUEST_PARAM", "limit is 1 to 1000")
        answer: dict[str, Any] = {
            "feedId": feed.feed_id,
            "feedStatus": feed.status,
            "itemsReceived": len(feed.items),
            "itemsSucceeded": sum(r["ingestionStatus"] == "SUCCESS" for r in feed.results),
            "itemsFailed": sum(r["ingestionStatus"] != "SUCCESS" for r in feed.results),
            "itemsProcessing": len(feed.items) - len(feed.results),
            "offset": offset,
            "limit": limit,
        }
        if feed.status == "ERROR":
            answer["ingestionErrors"] = {
                "ingestionError": [
                    {
                        "type": "DATA_ERROR",
                        "code": "ERR_FEED",
                        "description": "not an inventory feed",
                    }
                ]
            }
        if query.get("includeDetails") == "true":
            page = feed.results[offset : offset + limit]
            answer["itemDetails"] = {"itemIngestionStatus": page}
        return JSONResponse(answer)

    def _process(self, feed: Feed) -> None:
        results = []
        for index, (sku, node, quantity) in enumerate(feed.items):
            known = self._seller.set_stock(sku, quantity, node, only_listed=True)
            result: dict[str, Any] = {"sku": sku, "index": index, "shipNode": node}
            if known:
                result["ingestionStatus"] = "SUCCESS"
            else:
                result["ingestionStatus"] = "DATA_ERROR"
                result["ingestionErrors"] = {
                    "ingestionError": [
                        {
                            "type": "DATA_ERROR",
                            "code": "ERR_EXT_DATA_0101",
                            "description": f"Item not found for SKU {sku}",
                        }
                    ]
                }
            results.append(result)
        with self._lock:
            feed.results, feed.status = results, "PROCESSED"


def _items(document: dict[str, Any], feed_type: str) -> list[tuple[str, str, int]]:
    """(sku, ship node, quantity) of each item of a spec 1.4 or 1.5 document."""
    version = document["InventoryHeader"]["version"]
    if (feed_type, version) not in (("inventory", "1.4"), ("MP_INVENTORY", "1.5")):
        raise ValueError(f"{feed_type} feeds are not spec {version}")
    found = []
    for item in document["Inventory"]:
        if feed_type == "inventory":
            found.append((str(item["sku"]), "", _quantity(item["quantity"])))
            continue
        for node in item["shipNodes"]:
            found.append((str(item["sku"]), str(node["shipNode"]), _quantity(node["quantity"])))
    return found


def _quantity(quantity: dict[str, Any]) -> int:
    if quantity["unit"] != "EACH":
        raise ValueError("quantities are in EACH")
    return int(quantity["amount"])
