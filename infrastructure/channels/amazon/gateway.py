"""Amazon SP-API inventory writes: each listing's merchant-fulfilled quantity (CHANNELS.md §3.3).

Before a SKU's first push the gateway finds whether the seller lists it (`listings.py`): a SKU
without a listing is UNKNOWN_SKU and never patched.

One SKU goes as a Listings Items `patchListingsItem`, a JSON Patch `merge` of
`fulfillment_availability`: only the quantity changes, and the seller's
`lead_time_to_ship_max_days` and `restock_date` stay (a `replace` would drop them). Amazon
answers `ACCEPTED` and applies it a little later: APPLIED, the quantity accepted to show. A
call's first push always goes as a patch: the pusher ranks SKUs at risk first (the fewest days
of sales covered), then the fastest sellers, so the 5 patches a second go where an oversell is
nearest. The rest go as one `JSON_LISTINGS_FEED` of the same patches (`feeds.py`) when the feed
operations' rates allow one now, on the channel's next turn: those pushes are SUBMITTED under
the feed's id, and `settle` follows the feed on later rounds (a feed takes minutes, a patch a
second). When no feed may be created, the rest wait for the next call, as do SKUs not yet looked
at when `timeout` seconds of looking have passed (and a feed waits until none is left to look
at: the next may be minutes away).

SP-API limits each operation apart (CHANNELS.md §3.3): `rates` holds the documented default
rates, and the gateway takes a turn from `turns` (shared by every worker) before each call. A
write (a patch, or a feed) also goes on the channel's own turn: the caller's (`turn_taken`), or
the next one when a look at a listing took the caller's. A 429 waits for the bucket's next token
at the rate it names, or at the operation's documented one (see `client.py`, which makes every
call with an LWA access token). Quantities are absolute and there is no compare-and-set, so
`Push.acknowledged` is not used and no result is STALE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Self

import httpx

from infrastructure.channels.amazon.client import SpApi, describe, objects
from infrastructure.channels.amazon.config import LWA_TOKEN_URL
from infrastructure.channels.amazon.feeds import FEED_MESSAGE_LIMIT, Feeds, with_reports
from infrastructure.channels.amazon.listings import (
    Listings,
    Refused,
    merchant_fulfilled,
    patches,
    submission_result,
    unknown,
)
from infrastructure.channels.amazon.lwa import LwaCredentials
from infrastructure.channels.gateway import (
    CHANNEL_CALL,
    UNGATED,
    ChannelError,
    Gate,
    Push,
    PushResult,
    PushStatus,
    Throttled,
)
from infrastructure.channels.http import json_of

log = logging.getLogger(__name__)

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
        "getOrders": 0.0167,  # the Orders model's (ordersV0), as getOrderItems'
        "getOrderItems": 0.5,
    }
)
# Their bursts, calls at once after a rest (CHANNELS.md §3.3; getFeedDocument's from the Feeds
# model): a token bucket holds that many, so after a quiet spell feeds may be created several at
# once, where spacing alone made it one per 150 s. Unnamed: one at a time. The limiters hold
# feeds to their reports' turns besides (`feeds.with_reports`).
BURSTS = MappingProxyType(
    {
        "patchListingsItem": 5,
        "getListingsItem": 10,
        "searchListingsItems": 5,
        "createFeedDocument": 15,
        "createFeed": 15,
        "getFeed": 15,
        "getFeedDocument": 10,
        "getOrders": 20,
        "getOrderItems": 30,
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
        gate: where each call takes its turn of the channel's rate and its operation's.
    """

    def __init__(
        self,
        base_url: str,
        seller_id: str,
        marketplace_id: str,
        credentials: LwaCredentials,
        *,
        token_url: str = LWA_TOKEN_URL,
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
        gate: Gate = UNGATED,
    ) -> None:
        if not 1 <= max_batch <= FEED_MESSAGE_LIMIT:
            raise ValueError(f"max_batch must be 1 to {FEED_MESSAGE_LIMIT} (one feed)")
        self.channel_id, self.max_batch = channel_id, max_batch
        self.timeout = timeout
        self.rates: Mapping[str, float] = MappingProxyType({**RATES, **(rates or {})})
        self.turns = gate.turns(*with_reports(self.rates, BURSTS))
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
        self.product_type = product_type
        self._listings = Listings(self._api, seller_id, marketplace_id, recheck_unlisted)
        self._feeds = Feeds(
            self._api,
            seller_id,
            marketplace_id,
            product_type=product_type,
            poll_interval=feed_poll_interval,
            memory=feed_memory,
        )

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set each SKU's merchant-fulfilled quantity: a patch of the first listed push, and a
        feed of the rest when one may be created now (each SUBMITTED under its id). A SKU
        without a listing is UNKNOWN_SKU; one not looked at in time, or left for want of a
        feed (or by a feed Amazon throttled), gets no result.

        Raises:
            Throttled: an operation's turn did not come in time, or its token bucket was empty
                (a feed's is not raised: see `_feed`).
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
        results.append(self._patch(listed[0]))
        rest = listed[1:]
        # The feed's turns are taken before the channel's: most calls find no feed allowed, and
        # a channel turn taken for nothing would be lost to the patches.
        feed = len(rest) > 1 and sorted_all and self._feeds.may_create(self.turns)
        if feed and self.turns.take(CHANNEL_CALL, self.timeout):
            results.extend(self._feed(rest))
        return results

    def _feed(self, pushes: Sequence[Push]) -> list[PushResult]:
        """A feed of `pushes`; none when Amazon throttled it: they go again, and the patch
        before it keeps its result (raised, the patch's SKU was pushed again). Feeds wait here
        for what Amazon asked, the patches not: their own rate allows them."""
        try:
            return self._feeds.submit(pushes)
        except Throttled as throttled:
            log.warning(
                "%s: Amazon throttled a feed of %d SKUs; they go again, feeds in %.0f s",
                self.channel_id,
                len(pushes),
                throttled.retry_after,
            )
            return []

    def turn_taken(self, calls: int = 1) -> None:
        """The caller took the channel's turn for the next call: the write, or the look at a
        SKU's listing before it (the write then takes the channel's next turn); a turn for a
        second call lapses, as Amazon's calls take their operations' turns too."""
        self._prepaid = calls > 0

    def settle(self, ticket: str, skus: Sequence[str]) -> list[PushResult] | None:
        """The results of the feed `ticket` carrying `skus` (in message order), None while
        Amazon processes it (or before `feed_poll_interval` has passed since the last look).

        Raises:
            Throttled, ChannelUnavailable, ChannelAuthFailed: as `push`.
        """
        return self._feeds.settle(ticket, skus, self.turns)

    def followed_feeds(self) -> list[str]:
        """The ids of the feeds submitted or settled here that Amazon has not yet answered for,
        or whose report is not read yet (none older than `feed_memory`)."""
        return self._feeds.followed()

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The merchant-fulfilled quantity Amazon shows for each SKU (`getListingsItem`, one call
        per SKU); None for a SKU the seller does not list or that has no such quantity."""
        return {sku: self._quantity(sku) for sku in dict.fromkeys(skus)}

    def get(
        self, operation: str, path: str, params: Mapping[str, str], wait: float | None = None
    ) -> dict[str, Any] | None:
        """One read of an SP-API operation on its turn, waiting for it `wait` seconds at most
        (`timeout` when None), answered with its JSON object; None when Amazon has nothing
        there (404). For reconciliation's order listing and level reading: reads take no turn
        of the channel's own rate, which paces the writes.

        Raises:
            Throttled: no turn came within `timeout`, or Amazon throttled the read.
            ChannelError: SP-API refused the read (4xx but 404) or answered no JSON object.
            ChannelUnavailable, ChannelAuthFailed: as `push`.
        """
        self._turn(operation, wait)
        response = self._api.call(operation, "GET", path, params=params)
        if response.status_code == 404:
            return None
        answer = json_of(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise ChannelError(f"SP-API refused {operation}: {describe(response)}")
        return answer

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Is there a listing? -------------------------------------------------------------------

    def _sorted(self, pushes: Sequence[Push]) -> tuple[list[Push], list[PushResult]]:
        """The pushes of SKUs with a listing, and the results of those without. SKUs not looked
        at yet are (see `Listings.look_at`) while `timeout` seconds last and Amazon does not
        throttle the looks; the SKUs left get no result (they go again).

        Raises:
            Throttled: no SKU could be sorted for want of a turn, or Amazon throttled the look.
        """
        refused: dict[str, str] = {}
        throttled = None
        try:
            self._look_at([p.sku for p in pushes if self._listings.found(p.sku) is None], refused)
        except Throttled as error:
            throttled = error  # what was sorted goes now; the rest go again
        listed: list[Push] = []
        results: list[PushResult] = []
        for push in pushes:
            found = self._listings.found(push.sku)
            if push.sku in refused:
                results.append(PushResult(push.sku, PushStatus.REJECTED, detail=refused[push.sku]))
            elif found:
                listed.append(push)
            elif found is False:
                detail = "the seller has no listing with this SKU (getListingsItem, search)"
                results.append(unknown(push.sku, detail))
        if throttled is not None and not listed and not results:
            raise throttled
        return listed, results

    def _look_at(self, skus: Sequence[str], refused: dict[str, str]) -> None:
        """`Listings.look_at` for `timeout` seconds at most, each look on its operation's turn
        (the caller's channel turn goes to the first)."""
        deadline = time.monotonic() + self.timeout

        def turn(operation: str) -> None:
            self._turn(operation, deadline - time.monotonic())
            self._prepaid = False

        self._listings.look_at(skus, refused, turn)

    # One SKU -----------------------------------------------------------------------------

    def _patch(self, push: Push) -> PushResult:
        self._turn("patchListingsItem")
        body = {"productType": self.product_type, "patches": patches(push.quantity)}
        response = self._api.call(
            "patchListingsItem",
            "PATCH",
            self._listings.item_path(push.sku),
            params=self._listings.marketplace(),
            json=body,
        )
        if response.status_code == 404:
            return unknown(push.sku, describe(response))
        answer = json_of(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            return PushResult(push.sku, PushStatus.REJECTED, detail=describe(response))
        if answer.get("status") == "ACCEPTED":
            return PushResult(
                push.sku, PushStatus.APPLIED, detail=f"submission {answer.get('submissionId')}"
            )
        return submission_result(push.sku, objects(answer.get("issues")))

    def _quantity(self, sku: str) -> int | None:
        self._turn("getListingsItem")
        try:
            return merchant_fulfilled(self._listings.listing(sku))
        except Refused as refused:
            raise ChannelError(str(refused)) from None

    # Turns -------------------------------------------------------------------------------

    def _channel_turn(self) -> bool:
        """Before a write: the caller's turn if no look took it, else the channel's next one
        (at most `timeout` away), so writes keep to the channel's configured rate."""
        if self._prepaid:
            self._prepaid = False
            return True
        return self.turns.take(CHANNEL_CALL, self.timeout)

    def _turn(self, operation: str, wait: float | None = None) -> None:
        """Wait for the operation's turn under the shared limits, at most `wait` seconds
        (`timeout` when None).

        Raises:
            Throttled: no turn came in time; try again once the operation's rate gives one.
        """
        wait = self.timeout if wait is None else wait
        if wait < 0 or not self.turns.take(operation, wait):
            raise Throttled(f"no {operation} turn within {wait} s", 1.0 / self.rates[operation])
