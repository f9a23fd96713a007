"""Amazon SP-API inventory writes: each listing's merchant-fulfilled quantity (CHANNELS.md §3.3).

Amazon addresses a listing by seller id and SKU, so no lookup is needed. One SKU goes as a
Listings Items `patchListingsItem` (a JSON Patch `replace` of `fulfillment_availability`),
answered `ACCEPTED` and applied a little later: APPLIED, the quantity accepted to show. More go
as one `JSON_LISTINGS_FEED` (create a feed document, upload it, create the feed) when the
feed operations' rates allow one now: those pushes are SUBMITTED under the feed's id, and
`settle` follows the feed (`getFeed`, then its processing report) on later rounds, so a feed
that takes minutes holds no worker. When no feed may be created, the first push goes as a patch
and the rest wait for the next call.

SP-API limits each operation apart (CHANNELS.md §3.3): `rates` holds the documented default
rates, and the gateway takes a turn from `turns` (shared by every worker) before each call. A
429 names the operation's rate in `x-amzn-RateLimit-Limit`, so the wait for the next token of
the bucket is one over that rate. Every call carries an LWA access token (see `lwa.py`).
Quantities are absolute and there is no compare-and-set, so `Push.acknowledged` is not used and
no result is STALE.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Self
from urllib.parse import quote

import httpx

from infrastructure.channels.amazon.lwa import TOKEN_URL, AccessTokens, LwaCredentials
from infrastructure.channels.gateway import (
    ChannelAuthFailed,
    ChannelError,
    ChannelUnavailable,
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
    ) -> None:
        if not 1 <= max_batch <= FEED_MESSAGE_LIMIT:
            raise ValueError(f"max_batch must be 1 to {FEED_MESSAGE_LIMIT} (one feed)")
        self.channel_id, self.max_batch = channel_id, max_batch
        self.seller_id, self.marketplace_id = seller_id, marketplace_id
        self.product_type = product_type
        self.feed_poll_interval, self.timeout = feed_poll_interval, timeout
        self.rates: Mapping[str, float] = MappingProxyType({**RATES, **(rates or {})})
        self._looked_at: dict[str, float] = {}  # feed id → when its status was last read
        self._finished: dict[str, dict[str, Any]] = {}  # feed id → its final status
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "invsync (Language=Python)", "Accept": "application/json"},
        )
        self._tokens = AccessTokens(
            self._client, token_url, credentials, refresh_margin=refresh_margin
        )

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set each SKU's merchant-fulfilled quantity: one patch for one push; a feed for more
        when one may be created now (each SUBMITTED under its id), else a patch of the first.

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
        if len(pushes) > 1 and self._may_create_feed():
            return self._submit_feed(pushes)
        return [self._patch(pushes[0])]

    def turn_taken(self) -> None:
        """Nothing to do: each SP-API call takes a turn of its own operation's rate."""

    def settle(self, ticket: str, skus: Sequence[str]) -> list[PushResult] | None:
        """The results of the feed `ticket` carrying `skus` (in message order), None while
        Amazon processes it (or before `feed_poll_interval` has passed since the last look).

        Raises:
            Throttled, ChannelUnavailable, ChannelAuthFailed: as `push`.
        """
        feed = self._finished.get(ticket) or self._feed_status(ticket)
        if feed is None:
            return None
        if not self.turns.take("getFeedDocument", 0):
            return None  # its report is read on a later look
        report = self._report(feed.get("resultFeedDocumentId"))
        self._finished.pop(ticket, None)
        if feed["processingStatus"] != "DONE":
            detail = f"feed {ticket} {feed['processingStatus']}: {_feed_issues(report)}"
            return [PushResult(sku, PushStatus.REJECTED, detail=detail) for sku in skus]
        issues: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for issue in _issues(report.get("issues")):
            if isinstance(issue.get("messageId"), int):
                issues[issue["messageId"]].append(issue)
        return [_refused(sku, issues[n]) for n, sku in enumerate(skus, start=1)]

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The merchant-fulfilled quantity Amazon shows for each SKU (`getListingsItem`, one call
        per SKU); None for a SKU the seller does not list or that has no such quantity."""
        return {sku: self._quantity(sku) for sku in dict.fromkeys(skus)}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # One SKU -----------------------------------------------------------------------------

    def _patch(self, push: Push) -> PushResult:
        self._turn("patchListingsItem")
        body = {"productType": self.product_type, "patches": _patches(push.quantity)}
        response = self._call(
            "PATCH", self._item_path(push.sku), params=self._marketplace(), json=body
        )
        if response.status_code == 404:
            return _unknown(push.sku, _describe(response))
        answer = _json(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            return PushResult(push.sku, PushStatus.REJECTED, detail=_describe(response))
        if answer.get("status") == "ACCEPTED":
            return PushResult(
                push.sku, PushStatus.APPLIED, detail=f"submission {answer.get('submissionId')}"
            )
        return _refused(push.sku, _issues(answer.get("issues")))

    def _quantity(self, sku: str) -> int | None:
        self._turn("getListingsItem")
        params = {**self._marketplace(), "includedData": "fulfillmentAvailability"}
        response = self._call("GET", self._item_path(sku), params=params)
        if response.status_code == 404:
            return None
        answer = _json(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise ChannelError(f"SP-API refused to read {sku!r}: {_describe(response)}")
        for entry in answer.get("fulfillmentAvailability") or []:
            if isinstance(entry, dict) and entry.get("fulfillmentChannelCode") == MFN_CHANNEL:
                quantity = entry.get("quantity")
                return quantity if isinstance(quantity, int) else None
        return None

    def _item_path(self, sku: str) -> str:
        return f"{LISTINGS}/{quote(self.seller_id, safe='')}/{quote(sku, safe='')}"

    def _marketplace(self) -> dict[str, str]:
        return {"marketplaceIds": self.marketplace_id}

    # Many SKUs: one JSON_LISTINGS_FEED ---------------------------------------------------------

    def _may_create_feed(self) -> bool:
        # The document's turn first: a wasted one costs seconds, a wasted createFeed minutes.
        return self.turns.take("createFeedDocument", 0) and self.turns.take("createFeed", 0)

    def _submit_feed(self, pushes: Sequence[Push]) -> list[PushResult]:
        document = self._call_json(
            "POST", f"{FEEDS}/documents", json={"contentType": FEED_CONTENT_TYPE}
        )
        self._transfer(
            "PUT",
            _required(document, "url"),
            content=json.dumps(self._feed_document(pushes)).encode(),
            headers={"Content-Type": FEED_CONTENT_TYPE},
        )
        created = self._call_json(
            "POST",
            f"{FEEDS}/feeds",
            json={
                "feedType": FEED_TYPE,
                "marketplaceIds": [self.marketplace_id],
                "inputFeedDocumentId": _required(document, "feedDocumentId"),
            },
        )
        feed_id = _required(created, "feedId")
        self._looked_at[feed_id] = time.monotonic()
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

    def _feed_status(self, feed_id: str) -> dict[str, Any] | None:
        """The feed once Amazon has finished with it; None before, or too soon to look."""
        if time.monotonic() - self._looked_at.get(feed_id, 0.0) < self.feed_poll_interval:
            return None
        if not self.turns.take("getFeed", 0):
            return None
        self._looked_at[feed_id] = time.monotonic()
        feed = self._call_json("GET", f"{FEEDS}/feeds/{quote(feed_id, safe='')}")
        if feed.get("processingStatus") not in _FINISHED:
            return None
        self._looked_at.pop(feed_id, None)
        self._finished[feed_id] = feed
        return feed

    def _report(self, document_id: object) -> dict[str, Any]:
        """The feed's processing report ({} when the feed has none)."""
        if not isinstance(document_id, str) or not document_id:
            return {}
        document = self._call_json("GET", f"{FEEDS}/documents/{quote(document_id, safe='')}")
        content = self._transfer("GET", _required(document, "url")).content
        if document.get("compressionAlgorithm") == "GZIP":
            content = gzip.decompress(content)
        try:
            report = json.loads(content)
        except ValueError:
            raise ChannelError(f"the processing report {document_id} is not JSON") from None
        return report if isinstance(report, dict) else {}

    # HTTP -------------------------------------------------------------------------------------

    def _turn(self, operation: str) -> None:
        """Wait for the operation's turn under the shared limits (at most `timeout`)."""
        if not self.turns.take(operation, self.timeout):
            raise Throttled(
                f"no {operation} turn within {self.timeout} s", 1.0 / self.rates[operation]
            )

    def _call_json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        response = self._call(method, path, **options)
        answer = _json(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise ChannelError(f"SP-API refused {method} {path}: {_describe(response)}")
        return answer

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One SP-API call with a current access token; a refused token is replaced once, since
        Amazon may have ended it before the expiry it announced."""
        for _ in range(2):
            token = self._tokens.current()
            headers = {"x-amz-access-token": token}
            response = self._transfer(method, path, headers=headers, **options)
            if response.status_code not in (401, 403):
                return response
            self._tokens.forget(token)
        raise ChannelAuthFailed(
            f"SP-API refused a fresh access token for {path} ({_describe(response)}): check "
            "that the seller's authorisation grants the Listings and Feeds roles"
        )

    def _transfer(self, method: str, url: str, **options: Any) -> httpx.Response:
        """One HTTP exchange; throttling, 5xx and network failures become errors."""
        try:
            response = self._client.request(method, url, **options)
        except httpx.TimeoutException as error:
            raise ChannelUnavailable(f"SP-API did not answer {method} {url} in time") from error
        except httpx.TransportError as error:
            raise ChannelUnavailable(f"SP-API cannot be reached: {error}") from error
        if response.status_code == 429:
            raise Throttled(f"SP-API throttled {method} {url}", retry_after=_bucket_wait(response))
        if response.status_code >= 500:
            raise ChannelUnavailable(f"SP-API answered {response.status_code} to {method} {url}")
        return response


def _patches(quantity: int) -> list[dict[str, Any]]:
    availability = [{"fulfillment_channel_code": MFN_CHANNEL, "quantity": quantity}]
    return [
        {"op": "replace", "path": "/attributes/fulfillment_availability", "value": availability}
    ]


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


def _issues(value: object) -> list[dict[str, Any]]:
    return [issue for issue in value if isinstance(issue, dict)] if isinstance(value, list) else []


def _feed_issues(report: Mapping[str, Any]) -> str:
    issues = _issues(report.get("issues"))
    return "; ".join(f"{i.get('code')}: {i.get('message', '')}" for i in issues) or "no report"


def _bucket_wait(response: httpx.Response) -> float:
    """Seconds until the operation's bucket holds a token again: one over its rate."""
    try:
        rate = float(response.headers.get("x-amzn-ratelimit-limit", ""))
    except ValueError:
        return 1.0
    return 1.0 / rate if rate > 0 else 1.0


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _describe(response: httpx.Response) -> str:
    """SP-API errors are `{"errors": [{"code", "message", "details"}]}`."""
    body = _json(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return f"HTTP {response.status_code} {first.get('code')}: {first.get('message', '')}"
    return f"HTTP {response.status_code}"
