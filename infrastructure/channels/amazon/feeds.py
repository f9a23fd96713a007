"""Many SKUs at once: one `JSON_LISTINGS_FEED` of listing patches, followed until Amazon has
processed it (CHANNELS.md §3.3).

A feed is created in three calls (create a feed document, upload it, create the feed); its pushes
are SUBMITTED under the feed's id, and `settle` follows the feed (`getFeed`, then its processing
report) on later rounds, so a feed that takes minutes holds no worker. Each look waits for its
operation's turn without blocking: a look that has no turn now comes on a later round.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from infrastructure.channels.amazon.client import SpApi, objects, required
from infrastructure.channels.amazon.listings import patches, submission_result
from infrastructure.channels.gateway import (
    ChannelError,
    Push,
    PushResult,
    PushStatus,
    Throttled,
    Turns,
)

FEEDS = "/feeds/2021-06-30"
FEED_TYPE = "JSON_LISTINGS_FEED"
FEED_CONTENT_TYPE = "application/json; charset=UTF-8"
FEED_MESSAGE_LIMIT = 25_000  # messages in one JSON_LISTINGS_FEED document
_FINISHED = frozenset({"DONE", "FATAL", "CANCELLED"})
# No SP-API operation: the reports feeds created now may read (`with_reports`).
REPORTS = "feedReports"
_CREATING = ("createFeedDocument", REPORTS, "createFeed")  # the turns a feed takes, in order


@dataclass
class _Followed:
    """A feed followed until its results are read: since when, when its status was last read,
    and its final status once Amazon has finished with it."""

    since: float
    looked_at: float = 0.0
    finished: dict[str, Any] | None = None


class Feeds:
    """The feeds one seller's gateway submitted, followed until their reports are read.

    Parameters:
        api: the seller authorisation's SP-API calls.
        seller_id, marketplace_id: whose listings the feeds patch, where.
        product_type: the `productType` of each message.
        poll_interval: seconds between two looks at a feed being processed.
        memory: seconds a feed is followed at most (the pusher gives up on it sooner).
    """

    def __init__(
        self,
        api: SpApi,
        seller_id: str,
        marketplace_id: str,
        *,
        product_type: str,
        poll_interval: float,
        memory: float,
    ) -> None:
        self._api, self.seller_id, self.marketplace_id = api, seller_id, marketplace_id
        self.product_type = product_type
        self.poll_interval, self.memory = poll_interval, memory
        self._followed: dict[str, _Followed] = {}  # by feed id
        self._throttled_until = 0.0  # monotonic: Amazon throttled a feed, asking this wait

    def may_create(self, turns: Turns) -> bool:
        """Whether the feed operations' rates allow one feed now, and Amazon asked for no
        wait after throttling one here."""
        if time.monotonic() < self._throttled_until:
            return False
        # The cheapest turn first, as a turn taken for a feed that does not go is wasted: the
        # document's costs 2 s, a report's 45 s, createFeed's 120 s.
        return all(turns.take(operation, 0) for operation in _CREATING)

    def submit(self, pushes: Sequence[Push]) -> list[PushResult]:
        """One feed of `pushes`, each SUBMITTED under its id.

        Raises:
            Throttled, ChannelUnavailable, ChannelAuthFailed: as `SpApi.call`; nothing is
                submitted then (and after Throttled, `may_create` no more for its wait).
            ChannelError: SP-API refused a step of it.
        """
        try:
            return self._submit(pushes)
        except Throttled as throttled:
            self._throttled_until = time.monotonic() + throttled.retry_after
            raise

    def _submit(self, pushes: Sequence[Push]) -> list[PushResult]:
        document = self._api.call_json(
            "createFeedDocument",
            "POST",
            f"{FEEDS}/documents",
            json={"contentType": FEED_CONTENT_TYPE},
        )
        self._api.transfer(
            "createFeedDocument",
            "PUT",
            required(document, "url"),
            content=json.dumps(self._document(pushes)).encode(),
            headers={"Content-Type": FEED_CONTENT_TYPE},
        )
        created = self._api.call_json(
            "createFeed",
            "POST",
            f"{FEEDS}/feeds",
            json={
                "feedType": FEED_TYPE,
                "marketplaceIds": [self.marketplace_id],
                "inputFeedDocumentId": required(document, "feedDocumentId"),
            },
        )
        feed_id = required(created, "feedId")
        self._forget_old()
        now = time.monotonic()
        self._followed[feed_id] = _Followed(now, looked_at=now)
        detail = f"feed {feed_id}"
        return [
            PushResult(p.sku, PushStatus.SUBMITTED, detail=detail, ticket=feed_id) for p in pushes
        ]

    def settle(self, ticket: str, skus: Sequence[str], turns: Turns) -> list[PushResult] | None:
        """The results of the feed `ticket` carrying `skus` (in message order), None while
        Amazon processes it (or before `poll_interval` has passed since the last look).

        Raises:
            Throttled, ChannelUnavailable, ChannelAuthFailed, ChannelError: as `submit`.
        """
        self._forget_old()
        followed = self._followed.setdefault(ticket, _Followed(time.monotonic()))
        feed = followed.finished or self._status(ticket, followed, turns)
        if feed is None:
            return None
        if not turns.take("getFeedDocument", 0):
            return None  # its report is read on a later look
        report = self._report(feed.get("resultFeedDocumentId"))
        self._followed.pop(ticket, None)
        if feed["processingStatus"] != "DONE":
            detail = f"feed {ticket} {feed['processingStatus']}: {_feed_issues(report)}"
            return [PushResult(sku, PushStatus.REJECTED, detail=detail) for sku in skus]
        issues: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for issue in objects(report.get("issues")):
            if isinstance(issue.get("messageId"), int):
                issues[issue["messageId"]].append(issue)
        return [submission_result(sku, issues[n]) for n, sku in enumerate(skus, start=1)]

    def followed(self) -> list[str]:
        """The ids of the feeds not yet answered for (none older than `memory`)."""
        self._forget_old()
        return list(self._followed)

    def _document(self, pushes: Sequence[Push]) -> dict[str, Any]:
        messages = [
            {
                "messageId": number,
                "sku": push.sku,
                "operationType": "PATCH",
                "productType": self.product_type,
                "patches": patches(push.quantity),
            }
            for number, push in enumerate(pushes, start=1)
        ]
        return {"header": {"sellerId": self.seller_id, "version": "2.0"}, "messages": messages}

    def _status(self, feed_id: str, followed: _Followed, turns: Turns) -> dict[str, Any] | None:
        """The feed once Amazon has finished with it; None before, or too soon to look."""
        if time.monotonic() - followed.looked_at < self.poll_interval:
            return None
        if not turns.take("getFeed", 0):
            return None
        followed.looked_at = time.monotonic()
        feed = self._api.call_json("getFeed", "GET", f"{FEEDS}/feeds/{quote(feed_id, safe='')}")
        if feed.get("processingStatus") not in _FINISHED:
            return None
        followed.finished = feed
        return feed

    def _forget_old(self) -> None:
        """Stop following feeds older than `memory` (given up by the pusher)."""
        now = time.monotonic()
        for feed_id, followed in list(self._followed.items()):
            if now - followed.since > self.memory:
                self._followed.pop(feed_id, None)

    def _report(self, document_id: object) -> dict[str, Any]:
        """The feed's processing report ({} when the feed has none)."""
        if not isinstance(document_id, str) or not document_id:
            return {}
        document = self._api.call_json(
            "getFeedDocument", "GET", f"{FEEDS}/documents/{quote(document_id, safe='')}"
        )
        content = self._api.transfer("getFeedDocument", "GET", required(document, "url")).content
        if document.get("compressionAlgorithm") == "GZIP":
            content = gzip.decompress(content)
        try:
            report = json.loads(content)
        except ValueError:
            raise ChannelError(f"the processing report {document_id} is not JSON") from None
        return report if isinstance(report, dict) else {}


def with_reports(
    rates: Mapping[str, float], bursts: Mapping[str, int]
) -> tuple[Mapping[str, float], Mapping[str, int]]:
    """`rates` and `bursts` with `REPORTS`: getFeedDocument's rate and burst, a turn of which
    each feed takes as it is created (`may_create`). A feed's SKUs are pushed no more until its
    report is read (`push_submissions`), one getFeedDocument call a feed: with createFeed's
    documented burst of 15 against getFeedDocument's 10, the last five feeds of a burst would
    wait for their reports up to 225 s (the two-worker stall of 583af07, where
    getFeedDocument had no burst). Holding feeds to the reports' own limiter, every feed
    created finds a turn to read its report once Amazon is done with it, and createFeed keeps
    its documented burst: after ten at once, five more come a report's interval apart (45 s),
    not createFeed's (120 s)."""
    reports = {REPORTS: rates.get("getFeedDocument", 0.0)}
    return (
        MappingProxyType({**rates, **reports}),
        MappingProxyType({**bursts, REPORTS: bursts.get("getFeedDocument", 1)}),
    )


def _feed_issues(report: Mapping[str, Any]) -> str:
    issues = objects(report.get("issues"))
    return "; ".join(f"{i.get('code')}: {i.get('message', '')}" for i in issues) or "no report"
