"""Walmart's bulk inventory feed (CHANNELS.md §5): many SKUs' quantities in one
`POST /v3/feeds?feedType=inventory` (spec 1.4 JSON, the default ship node), or `MP_INVENTORY`
(spec 1.5) when the channel names its ship node, followed with `GET /v3/feeds/{feedId}` until
Walmart has processed it; each item's ingestion status is then its push's result.

A feed is at most `FEED_ITEMS` items (well under Walmart's 5 MB a file) and goes on the
channel's `feed` turn (its feeds an hour, shared by every worker); its pushes are SUBMITTED
under the feed's id, and the gateway's `settle` follows it on later rounds, every
`poll_interval` seconds at most, so a feed that takes half an hour holds no worker. Each page of
its status after the first waits for a turn of the channel's rate (`turn`), as every other call:
Walmart counts them all against its limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

from infrastructure.channels.gateway import ChannelError, Push, PushResult, PushStatus
from infrastructure.channels.walmart.client import WalmartApi

FEEDS = "/v3/feeds"
FEED_ITEMS = 5_000  # items in one feed (about 400 KB of JSON)
DETAILS_PAGE = 1_000  # the most item details one status call returns
_PROCESSED = "PROCESSED"
_FAILED = "ERROR"
# Item statuses Walmart may still change: no result, the push goes again.
_UNFINISHED = frozenset({"INPROGRESS", "SYSTEM_ERROR", "TIMEOUT_ERROR"})


def document(pushes: Sequence[Push], ship_node: str) -> dict[str, Any]:
    """The feed's file: spec 1.4 (default ship node), or 1.5 naming `ship_node`."""
    if not ship_node:
        items = [{"sku": p.sku, "quantity": _each(p.quantity)} for p in pushes]
        return {"InventoryHeader": {"version": "1.4"}, "Inventory": items}
    nodes = [
        {"sku": p.sku, "shipNodes": [{"shipNode": ship_node, "quantity": _each(p.quantity)}]}
        for p in pushes
    ]
    return {"InventoryHeader": {"version": "1.5"}, "Inventory": nodes}


class Feeds:
    """The feeds one gateway submitted, and when each was last looked at; `turn` waits for the
    channel's turn before each status page after the first (raising `Throttled` when none
    comes), the caller having taken the first's."""

    def __init__(
        self, api: WalmartApi, ship_node: str, poll_interval: float, turn: Callable[[], None]
    ) -> None:
        self._api, self.ship_node, self.poll_interval = api, ship_node, poll_interval
        self._turn = turn
        self._looked_at: dict[str, float] = {}

    def submit(self, pushes: Sequence[Push]) -> list[PushResult]:
        """One feed of `pushes`, each SUBMITTED under its id.

        Raises:
            ChannelError: Walmart refused the feed (413 over its size, 4xx); and as
                `WalmartApi.call` (Throttled, ChannelUnavailable, ChannelAuthFailed).
        """
        feed_type = "MP_INVENTORY" if self.ship_node else "inventory"
        content = json.dumps(document(pushes, self.ship_node)).encode()
        answer = self._api.call_json(
            "POST",
            FEEDS,
            params={"feedType": feed_type},
            files={"file": ("inventory.json", content, "application/json")},
        )
        feed_id = answer.get("feedId")
        if not isinstance(feed_id, str) or not feed_id:
            raise ChannelError(f"Walmart answered a feed without its feedId: {answer}")
        self._looked_at[feed_id] = time.monotonic()
        return [
            PushResult(p.sku, PushStatus.SUBMITTED, detail=f"feed {feed_id}", ticket=feed_id)
            for p in pushes
        ]

    def settle(self, feed_id: str, skus: Sequence[str]) -> list[PushResult] | None:
        """The results of feed `feed_id` carrying `skus`, None while Walmart processes it.
        Items Walmart could not process for want of time or a system error get no result:
        they go again. The caller has found the feed `due` and taken the first call's turn.

        Raises:
            ChannelError: as `submit`.
        """
        self._looked_at[feed_id] = time.monotonic()
        status = self._status(feed_id, 0)
        state = status.get("feedStatus")
        if state == _FAILED:
            detail = f"feed {feed_id} failed: {_errors(status)}"
            self._looked_at.pop(feed_id, None)
            return [PushResult(sku, PushStatus.REJECTED, detail=detail) for sku in skus]
        if state != _PROCESSED:
            return None
        self._looked_at.pop(feed_id, None)
        wanted = set(skus)
        return [
            result for item in self._items(feed_id, status) if (result := _result(item, wanted))
        ]

    def due(self, feed_id: str) -> bool:
        """Whether `poll_interval` has passed since feed `feed_id` was last looked at."""
        return time.monotonic() - self._looked_at.get(feed_id, 0.0) >= self.poll_interval

    def _status(self, feed_id: str, offset: int) -> dict[str, Any]:
        return self._api.call_json(
            "GET",
            f"{FEEDS}/{quote(feed_id, safe='')}",
            params={"includeDetails": "true", "offset": str(offset), "limit": str(DETAILS_PAGE)},
        )

    def _items(self, feed_id: str, first: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page, offset = first, 0
        while True:
            items = _ingestion(page)
            yield from items
            offset += len(items)
            if not items or offset >= _count(page):
                return
            self._turn()
            page = self._status(feed_id, offset)


def _result(item: dict[str, Any], wanted: set[str]) -> PushResult | None:
    sku, status = item.get("sku"), item.get("ingestionStatus")
    if not isinstance(sku, str) or sku not in wanted or status in _UNFINISHED:
        return None
    if status == "SUCCESS":
        return PushResult(sku, PushStatus.APPLIED)
    errors = _errors(item.get("ingestionErrors") or {})
    if "NOT_FOUND" in errors.upper() or "not found" in errors:
        return PushResult(sku, PushStatus.UNKNOWN_SKU, detail=errors)
    return PushResult(sku, PushStatus.REJECTED, detail=f"{status}: {errors}")


def _ingestion(status: dict[str, Any]) -> list[dict[str, Any]]:
    details = status.get("itemDetails") or {}
    items = details.get("itemIngestionStatus") if isinstance(details, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _count(status: dict[str, Any]) -> int:
    received = status.get("itemsReceived")
    return received if isinstance(received, int) else 0


def _errors(container: dict[str, Any]) -> str:
    found = container.get("ingestionErrors") if "ingestionErrors" in container else container
    errors = found.get("ingestionError") if isinstance(found, dict) else None
    if not isinstance(errors, list):
        return "no details"
    return "; ".join(
        f"{e.get('code')}: {e.get('description', '')}" for e in errors if isinstance(e, dict)
    )


def _each(quantity: int) -> dict[str, Any]:
    return {"unit": "EACH", "amount": quantity}
