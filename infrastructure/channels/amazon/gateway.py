"""Amazon SP-API inventory writes: each listing's merchant-fulfilled quantity (CHANNELS.md §3.3).

Amazon addresses a listing by seller id and SKU, but accepts a patch for a SKU the seller does
not list (answering ACCEPTED, perhaps making an offer-only stub of it). So before a SKU's first
push the gateway asks `getListingsItem` (404: no listing), or for many SKUs
`searchListingsItems` (20 a call, where getListingsItem takes one), and keeps the answer: a SKU
without a listing is UNKNOWN_SKU and never patched (looked at again after `recheck_unlisted`
seconds).

One SKU goes as a Listings Items `patchListingsItem`, a JSON Patch `merge` of
`fulfillment_availability`: only the quantity changes, and the seller's
`lead_time_to_ship_max_days` and `restock_date` stay (a `replace` would drop them). Amazon
answers `ACCEPTED` and applies it a little later: APPLIED, the quantity accepted to show. More
go as one `JSON_LISTINGS_FEED` of the same patches (create a feed document, upload it, create
the feed) when the feed operations' rates allow one now: those pushes are SUBMITTED under the
feed's id, and `settle` follows the feed (`getFeed`, then its processing report) on later
rounds, so a feed that takes minutes holds no worker. When no feed may be created, the first
push goes as a patch and the rest wait for the next call, as do SKUs not yet looked at when
`timeout` seconds of looking have passed (and a feed waits until none is left to look at:
the next may be minutes away).

SP-API limits each operation apart (CHANNELS.md §3.3): `rates` holds the documented default
rates, and the gateway takes a turn from `turns` (shared by every worker) before each call. A
write (a patch, or a feed) also goes on the channel's own turn: the caller's (`turn_taken`), or
the next one when a look at a listing took the caller's. A 429 waits for the bucket's next token
at the rate it names, or at the operation's documented one (see `client.py`, which makes every
call with an LWA access token). Quantities are absolute and there is no compare-and-set, so
`Push.acknowledged` is not used and no result is STALE.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Self
from urllib.parse import quote

import httpx

from infrastructure.channels.amazon.client import SpApi, describe, json_of
from infrastructure.channels.amazon.lwa import TOKEN_URL, LwaCredentials
from infrastructure.channels.gateway import (
    CHANNEL_CALL,
    ChannelError,
    Push,
    PushResult,
    PushStatus,
    Throttled,
    Turns,
    Unlimited,
)

LISTINGS = "/listings/2021-08-01/items"
FEEDS = "/feeds/2021-06-30"
FEED_TYPE = "JSON_LISTINGS_FEED"
FEED_CONTENT_TYPE = "application/json; charset=UTF-8"
FEED_MESSAGE_LIMIT = 25_000  # messages in one JSON_LISTINGS_FEED document
SEARCH_LIMIT = 20  # SKUs one searchListingsItems call looks for (identifiers, pageSize)
MFN_CHANNEL = "DEFAULT"  # the fulfillment channel code of merchant-fulfilled stock
# Issue codes saying the seller has no listing with the SKU (legacy feeds' 13013, "SKU does not
# exist"; not confirmed for the JSON feed in CHANNELS.md).
UNKNOWN_SKU_CODES = frozenset({"13013"})
_FINISHED = frozenset({"DONE", "FATAL", "CANCELLED"})
# Default usage plans, calls a second (CHANNELS.md §3.3; getFeedDocument's from the Feeds model).
RATES = MappingProxyType(
    {
        "patchListingsItem": 5.0,
        "getListingsItem": 5.0,
        "searchListingsItems": 5.0,
        "createFeedDocument": 0.5,
        "createFeed": 0.0083,
        "getFeed": 2.0,
        "getFeedDocument": 0.0222,
    }
)


class AmazonGateway:
    """One seller's merchant-fulfilled stock in one marketplace, through SP-API.

    Parameters:
        base_url: the SP-API regional endpoint (`https://sellingpartnerapi-na.amazon.com`).
        seller_id: the selling partner id (merchant token) the listings belong to.
        marketplace_id: the marketplace whose quantity is set (`ATVPDKIKX0DER`).
        credentials: the LWA client and the seller's refresh token (see `AccessTokens`).
        token_url: the LWA token endpoint.
        channel_id: the channel account's id in invsync.
        product_type: the `productType` sent with each patch; `PRODUCT` serves offer-only
            updates whatever the listing's real type.
        max_batch: the most pushes one `push` takes, all in one feed (at most 25,000).
        timeout: seconds for each HTTP call, and the most a patch or a read waits for its turn.
        transport: an httpx transport, for tests.
        feed_poll_interval: seconds between two looks at a feed being processed.
        refresh_margin: seconds before expiry an access token is replaced.
        rates: the operations' rates (calls a second), replacing the documented defaults named.
        recheck_unlisted: seconds a SKU found without a listing is taken to have none.
        feed_memory: seconds a feed is followed at most (the pusher gives up on it sooner).
    """

    turns: Turns = Unlimited()

    def __init__(
        self,
        base_url: str,
        seller_id: str,
        marketplace_id: str,
        credentials: LwaCredentials,
        *,
        token_url: str = TOKEN_URL,
        channel_id: str = "amazon",
        product_type: str = "PRODUCT",
        max_batch: int = 10_000,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        feed_poll_interval: float = 30.0,
        refresh_margin: float = 60.0,
        rates: Mapping[str, float] | None = None,
        recheck_unlisted: float = 600.0,
        feed_memory: float = 7200.0,
    ) -> None:
        if not 1 <= max_batch <= FEED_MESSAGE_LIMIT:
            raise ValueError(f"max_batch must be 1 to {FEED_MESSAGE_LIMIT} (one feed)")
        self.channel_id, self.max_batch = channel_id, max_batch
        self.seller_id, self.marketplace_id = seller_id, marketplace_id
        self.product_type = product_type
        self.feed_poll_interval, self.timeout = feed_poll_interval, timeout
        self.rates: Mapping[str, float] = MappingProxyType({**RATES, **(rates or {})})
        self.recheck_unlisted, self.feed_memory = recheck_unlisted, feed_memory
        self._listed: set[str] = set()  # SKUs getListingsItem found
        self._unlisted: dict[str, float] = {}  # SKU → when getListingsItem found no listing
        self._feeds: dict[str, _Followed] = {}  # the feeds followed, by id
        self._prepaid = False  # the caller took the channel's turn for the next call
        self._api = SpApi(
            base_url,
            credentials,
            token_url=token_url,
            timeout=timeout,
            rates=self.rates,
            transport=transport,
            refresh_margin=refresh_margin,
        )

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set each SKU's merchant-fulfilled quantity: one patch for one push; a feed for more
        when one may be created now (each SUBMITTED under its id), else a patch of the first.
        A SKU without a listing is UNKNOWN_SKU; one not looked at in time gets no result.

        Raises:
            Throttled: an operation's turn did not come in time, or its token bucket was empty
                (nothing of a feed was submitted then).
            ChannelUnavailable: SP-API or LWA could not be reached, timed out or answered 5xx.
            ChannelAuthFailed: LWA refused the credentials, or SP-API refused a fresh token.
        """
        if len(pushes) > self.max_batch:
            raise ValueError(f"{len(pushes)} pushes exceed max_batch {self.max_batch}")
        if not pushes:
            return []
        listed, results = self._sorted(pushes)
        if not listed:
            return results
        if not self._channel_turn():
            if results:
                return results  # the listed go on a later call
            raise Throttled(f"no turn to call {self.channel_id} in {self.timeout} s", 1.0)
        # A feed waits until every SKU is sorted: the next may be minutes away.
        sorted_all = len(listed) + len(results) == len(pushes)
        if len(listed) > 1 and sorted_all and self._may_create_feed():
            return results + self._submit_feed(listed)
        results.append(self._patch(listed[0]))
        return results

    def turn_taken(self) -> None:
        """The caller took the channel's turn for the next call: the write, or the look at a
        SKU's listing before it (the write then takes the channel's next turn)."""
        self._prepaid = True

    def settle(self, ticket: str, skus: Sequence[str]) -> list[PushResult] | None:
        """The results of the feed `ticket` carrying `skus` (in message order), None while
        Amazon processes it (or before `feed_poll_interval` has passed since the last look).

        Raises:
            Throttled, ChannelUnavailable, ChannelAuthFailed: as `push`.
        """
        self._forget_old_feeds()
        followed = self._feeds.setdefault(ticket, _Followed(time.monotonic()))
        feed = followed.finished or self._feed_status(ticket, followed)
        if feed is None:
            return None
        if not self.turns.take("getFeedDocument", 0):
            return None  # its report is read on a later look
        report = self._report(feed.get("resultFeedDocumentId"))
        self._feeds.pop(ticket, None)
        if feed["processingStatus"] != "DONE":
            detail = f"feed {ticket} {feed['processingStatus']}: {_feed_issues(report)}"
            return [PushResult(sku, PushStatus.REJECTED, detail=detail) for sku in skus]
        issues: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for issue in _objects(report.get("issues")):
            if isinstance(issue.get("messageId"), int):
                issues[issue["messageId"]].append(issue)
        return [_refused(sku, issues[n]) for n, sku in enumerate(skus, start=1)]

    def followed_feeds(self) -> list[str]:
        """The ids of the feeds submitted or settled here that Amazon has not yet answered for,
        or whose report is not read yet (none older than `feed_memory`)."""
        self._forget_old_feeds()
        return list(self._feeds)

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The merchant-fulfilled quantity Amazon shows for each SKU (`getListingsItem`, one call
        per SKU); None for a SKU the seller does not list or that has no such quantity."""
        return {sku: self._quantity(sku) for sku in dict.fromkeys(skus)}

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Is there a listing? -------------------------------------------------------------------

    def _sorted(self, pushes: Sequence[Push]) -> tuple[list[Push], list[PushResult]]:
        """The pushes of SKUs with a listing, and the results of those without. SKUs not looked
        at yet are (see `_look_at`) while `timeout` seconds last and Amazon does not throttle
        the looks; the SKUs left get no result (they go again).

        Raises:
            Throttled: no SKU could be sorted for want of a turn, or Amazon throttled the look.
        """
        refused: dict[str, str] = {}
        throttled = None
        try:
            self._look_at([p.sku for p in pushes if self._found(p.sku) is None], refused)
        except Throttled as error:
            throttled = error  # what was sorted goes now; the rest go again
        listed: list[Push] = []
        results: list[PushResult] = []
        for push in pushes:
            found = self._found(push.sku)
            if push.sku in refused:
                results.append(PushResult(push.sku, PushStatus.REJECTED, detail=refused[push.sku]))
            elif found:
                listed.append(push)
            elif found is False:
                detail = "the seller has no listing with this SKU (getListingsItem, search)"
                results.append(_unknown(push.sku, detail))
        if throttled is not None and not listed and not results:
            raise throttled
        return listed, results

    def _found(self, sku: str) -> bool | None:
        """Whether the seller lists `sku`, as last found; None if not looked at (lately)."""
        if sku in self._listed:
            return True
        found = self._unlisted.get(sku)
        if found is not None and time.monotonic() - found < self.recheck_unlisted:
            return False
        return None

    def _look_at(self, skus: Sequence[str], refused: dict[str, str]) -> None:
        """Find which of `skus` the seller lists: many at a time with `searchListingsItems` (20
        SKUs a call), one alone, or with a comma (it would split the search's list), with
        `getListingsItem` (404: none). Each call on its operation's turn, for `timeout` seconds
        at most; SKUs SP-API refuses to look at go in `refused`.

        Raises:
            Throttled: a turn did not come in time, or Amazon throttled a look.
        """
        skus = list(dict.fromkeys(skus))
        searched = [sku for sku in skus if "," not in sku]
        if len(searched) < 2:
            searched = []
        deadline = time.monotonic() + self.timeout
        for start in range(0, len(searched), SEARCH_LIMIT):
            group = searched[start : start + SEARCH_LIMIT]
            self._look_turn("searchListingsItems", deadline)
            try:
                self._search(group)
            except _Refused as error:
                refused.update(dict.fromkeys(group, str(error)))
        for sku in skus:
            if sku not in searched:
                self._look_turn("getListingsItem", deadline)
                try:
                    self._listing(sku)
                except _Refused as error:
                    refused[sku] = str(error)

    def _look_turn(self, operation: str, deadline: float) -> None:
        self._turn(operation, deadline - time.monotonic())
        self._prepaid = False  # the caller's turn goes to the first look

    def _search(self, skus: Sequence[str]) -> None:
        """Which of `skus` (at most 20, none with a comma) the seller lists, kept for `_found`.

        Raises:
            _Refused: SP-API refused the search (4xx but 404, which finds none).
        """
        params = {
            **self._marketplace(),
            "identifiers": ",".join(skus),
            "identifiersType": "SKU",
            "pageSize": str(SEARCH_LIMIT),
        }
        path = f"{LISTINGS}/{quote(self.seller_id, safe='')}"
        response = self._api.call("searchListingsItems", "GET", path, params=params)
        answer = json_of(response) if response.status_code != 404 else {"items": []}
        if response.status_code not in (200, 404) or not isinstance(answer, dict):
            raise _Refused(f"SP-API refused to search for {len(skus)} SKUs: {describe(response)}")
        found = {item.get("sku") for item in _objects(answer.get("items"))}
        for sku in skus:
            self._keep(sku, sku in found)

    def _keep(self, sku: str, listed: bool) -> None:
        if listed:
            self._listed.add(sku)
            self._unlisted.pop(sku, None)
        else:
            self._unlisted[sku] = time.monotonic()
            self._listed.discard(sku)

    def _listing(self, sku: str) -> dict[str, Any] | None:
        """The listing with its fulfillment availability; None when the seller has none with
        `sku` (404). What it finds is kept for `_found`.

        Raises:
            _Refused: SP-API refused the request (4xx other than 404).
        """
        params = {**self._marketplace(), "includedData": "fulfillmentAvailability"}
        response = self._api.call("getListingsItem", "GET", self._item_path(sku), params=params)
        if response.status_code == 404:
            self._keep(sku, listed=False)
            return None
        answer = json_of(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise _Refused(f"SP-API refused to read {sku!r}: {describe(response)}")
        self._keep(sku, listed=True)
        return answer

    # One SKU -----------------------------------------------------------------------------

    def _patch(self, push: Push) -> PushResult:
        self._turn("patchListingsItem")
        body = {"productType": self.product_type, "patches": _patches(push.quantity)}
        response = self._api.call(
            "patchListingsItem",
            "PATCH",
            self._item_path(push.sku),
            params=self._marketplace(),
            json=body,
        )
        if response.status_code == 404:
            return _unknown(push.sku, describe(response))
        answer = json_of(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            return PushResult(push.sku, PushStatus.REJECTED, detail=describe(response))
        if answer.get("status") == "ACCEPTED":
            return PushResult(
                push.sku, PushStatus.APPLIED, detail=f"submission {answer.get('submissionId')}"
            )
        return _refused(push.sku, _objects(answer.get("issues")))

    def _quantity(self, sku: str) -> int | None:
        self._turn("getListingsItem")
        try:
            answer = self._listing(sku)
        except _Refused as refused:
            raise ChannelError(str(refused)) from None
        for entry in (answer or {}).get("fulfillmentAvailability") or []:
            if isinstance(entry, dict) and entry.get("fulfillmentChannelCode") == MFN_CHANNEL:
                quantity = entry.get("quantity")
                return quantity if isinstance(quantity, int) else None
        return None

    def _channel_turn(self) -> bool:
        """Before a write: the caller's turn if no look took it, else the channel's next one
        (at most `timeout` away), so writes keep to the channel's configured rate."""
        if self._prepaid:
            self._prepaid = False
            return True
        return self.turns.take(CHANNEL_CALL, self.timeout)

    def _item_path(self, sku: str) -> str:
        return f"{LISTINGS}/{quote(self.seller_id, safe='')}/{quote(sku, safe='')}"

    def _marketplace(self) -> dict[str, str]:
        return {"marketplaceIds": self.marketplace_id}

    # Many SKUs: one JSON_LISTINGS_FEED ---------------------------------------------------------

    def _may_create_feed(self) -> bool:
        # The document's turn first: a wasted one costs seconds, a wasted createFeed minutes.
        return self.turns.take("createFeedDocument", 0) and self.turns.take("createFeed", 0)

    def _submit_feed(self, pushes: Sequence[Push]) -> list[PushResult]:
        document = self._api.call_json(
            "createFeedDocument",
            "POST",
            f"{FEEDS}/documents",
            json={"contentType": FEED_CONTENT_TYPE},
        )
        self._api.transfer(
            "createFeedDocument",
            "PUT",
            _required(document, "url"),
            content=json.dumps(self._feed_document(pushes)).encode(),
            headers={"Content-Type": FEED_CONTENT_TYPE},
        )
        created = self._api.call_json(
            "createFeed",
            "POST",
            f"{FEEDS}/feeds",
            json={
                "feedType": FEED_TYPE,
                "marketplaceIds": [self.marketplace_id],
                "inputFeedDocumentId": _required(document, "feedDocumentId"),
            },
        )
        feed_id = _required(created, "feedId")
        self._forget_old_feeds()
        now = time.monotonic()
        self._feeds[feed_id] = _Followed(now, looked_at=now)
        detail = f"feed {feed_id}"
        return [
            PushResult(p.sku, PushStatus.SUBMITTED, detail=detail, ticket=feed_id) for p in pushes
        ]

    def _feed_document(self, pushes: Sequence[Push]) -> dict[str, Any]:
        messages = [
            {
                "messageId": number,
                "sku": push.sku,
                "operationType": "PATCH",
                "productType": self.product_type,
                "patches": _patches(push.quantity),
            }
            for number, push in enumerate(pushes, start=1)
        ]
        return {"header": {"sellerId": self.seller_id, "version": "2.0"}, "messages": messages}

    def _feed_status(self, feed_id: str, followed: _Followed) -> dict[str, Any] | None:
        """The feed once Amazon has finished with it; None before, or too soon to look."""
        if time.monotonic() - followed.looked_at < self.feed_poll_interval:
            return None
        if not self.turns.take("getFeed", 0):
            return None
        followed.looked_at = time.monotonic()
        feed = self._api.call_json("getFeed", "GET", f"{FEEDS}/feeds/{quote(feed_id, safe='')}")
        if feed.get("processingStatus") not in _FINISHED:
            return None
        followed.finished = feed
        return feed

    def _forget_old_feeds(self) -> None:
        """Stop following feeds older than `feed_memory` (given up by the pusher)."""
        now = time.monotonic()
        for feed_id, followed in list(self._feeds.items()):
            if now - followed.since > self.feed_memory:
                self._feeds.pop(feed_id, None)

    def _report(self, document_id: object) -> dict[str, Any]:
        """The feed's processing report ({} when the feed has none)."""
        if not isinstance(document_id, str) or not document_id:
            return {}
        document = self._api.call_json(
            "getFeedDocument", "GET", f"{FEEDS}/documents/{quote(document_id, safe='')}"
        )
        content = self._api.transfer("getFeedDocument", "GET", _required(document, "url")).content
        if document.get("compressionAlgorithm") == "GZIP":
            content = gzip.decompress(content)
        try:
            report = json.loads(content)
        except ValueError:
            raise ChannelError(f"the processing report {document_id} is not JSON") from None
        return report if isinstance(report, dict) else {}

    def _turn(self, operation: str, wait: float | None = None) -> None:
        """Wait for the operation's turn under the shared limits, at most `wait` seconds
        (`timeout` when None).

        Raises:
            Throttled: no turn came in time; try again once the operation's rate gives one.
        """
        wait = self.timeout if wait is None else wait
        if wait < 0 or not self.turns.take(operation, wait):
            raise Throttled(
                f"no {operation} turn within {self.timeout} s", 1.0 / self.rates[operation]
            )


@dataclass
class _Followed:
    """A feed followed until its results are read: since when, when its status was last read,
    and its final status once Amazon has finished with it."""

    since: float
    looked_at: float = 0.0
    finished: dict[str, Any] | None = None


class _Refused(ChannelError):
    """Raised when SP-API refuses to say whether the seller lists a SKU (4xx but 404)."""


def _patches(quantity: int) -> list[dict[str, Any]]:
    """`merge`, so only the quantity changes: `replace` would drop the seller's other fields of
    the attribute (`lead_time_to_ship_max_days`, `restock_date`)."""
    availability = [{"fulfillment_channel_code": MFN_CHANNEL, "quantity": quantity}]
    return [{"op": "merge", "path": "/attributes/fulfillment_availability", "value": availability}]


def _refused(sku: str, issues: Sequence[Mapping[str, Any]]) -> PushResult:
    """The result of a submission with these issues: only ERRORs refuse it."""
    errors = [issue for issue in issues if issue.get("severity") == "ERROR"]
    if not errors:
        return PushResult(sku, PushStatus.APPLIED)
    detail = "; ".join(f"{e.get('code')}: {e.get('message', '')}" for e in errors)
    if any(str(e.get("code")) in UNKNOWN_SKU_CODES for e in errors):
        return _unknown(sku, detail)
    return PushResult(sku, PushStatus.REJECTED, detail=detail)


def _required(answer: Mapping[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise ChannelError(f"SP-API answered without {key}: {answer}")
    return value


def _unknown(sku: str, detail: str) -> PushResult:
    return PushResult(sku, PushStatus.UNKNOWN_SKU, detail=detail)


def _objects(value: object) -> list[dict[str, Any]]:
    """The objects in a list (issues, items); none if it is no list."""
    return [issue for issue in value if isinstance(issue, dict)] if isinstance(value, list) else []


def _feed_issues(report: Mapping[str, Any]) -> str:
    issues = _objects(report.get("issues"))
    return "; ".join(f"{i.get('code')}: {i.get('message', '')}" for i in issues) or "no report"
