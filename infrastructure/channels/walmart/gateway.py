"""Walmart inventory writes and reads (CHANNELS.md §5).

A push of a few SKUs, and of urgent ones (the pusher's verdict: at risk or hot), goes one SKU a
call: `PUT /v3/inventory?sku=` (with `shipNode` when the channel names one), the absolute
quantity, shown at once (APPLIED); one such call a push by default (`put_most`), so the pusher
decides afresh at each turn, and urgent pushes beyond it wait for the next call's. The long
tail of a large push goes as one bulk feed (`feeds.py`) when the channel's `feed` turn allows
one (its `feeds_per_hour`, shared by every worker); its pushes are SUBMITTED and `settle`
follows the feed. Which go how is `split.py`'s decision; the gateway keeps when each push was
first left pending, so one outranked call after call goes in a feed after `put_wait` seconds.
Quantities are absolute and there is no compare-and-set, so `Push.acknowledged` is not used and
no result is STALE.

The PUTs go before the feed: a push that raises has then submitted no feed. The pusher records
nothing of a call that raised, so a feed sent before a throttled PUT went untracked, its SKUs
pending as if never sent, and one PUT meanwhile at a newer quantity was set back to the feed's
when Walmart processed it. A SKU in a feed the pusher tracks is not pushed again until the feed
is settled (`push/submissions.py`).

Every call takes a turn of the channel's rate: the pusher's for the first, its own for the
others; a 429 pauses the channel for what Walmart asked (`client.py`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx

from infrastructure.channels.gateway import (
    CHANNEL_CALL,
    UNGATED,
    AnswersAtOnce,
    ChannelError,
    Gate,
    Push,
    PushResult,
    PushStatus,
)
from infrastructure.channels.http import json_of
from infrastructure.channels.walmart.client import WalmartApi, describe
from infrastructure.channels.walmart.feeds import FEED_ITEMS, Feeds
from infrastructure.channels.walmart.split import (
    PUT_WAIT,
    Split,
    left_since,
    overdue,
    split,
    without_feed,
)

INVENTORY = "/v3/inventory"
FEED = "feed"  # the operation whose turns space the feeds


class WalmartGateway(AnswersAtOnce):
    """One seller's quantities on Walmart Marketplace. It takes its turns as a channel that
    answers at once does (`AnswersAtOnce`), but settles the feeds it submits.

    Parameters:
        base_url: `https://marketplace.walmartapis.com` (or a sandbox's).
        client_id, client_secret: the seller's API client.
        channel_id: the channel account's id in invsync.
        ship_node: the ship node whose quantities are set and read; Walmart's default if "".
        feeds_per_hour: the feeds Walmart allows an hour (the `feed` turn's rate).
        feed_poll_interval: seconds between two looks at a feed being processed.
        put_most: the most single-SKU calls one push makes. One: each takes a turn of the
            channel's rate, and the pusher decides its next call afresh at each turn, so a SKU
            at risk goes at the next turn instead of behind the rest of a longer call.
        put_wait: seconds a push may be left pending, call after call, before it goes in the
            next feed (`split.PUT_WAIT`).
        timeout: seconds for each HTTP call, and the most a call waits for its turn.
        transport: an httpx transport, for tests.
        gate: where each call takes its turn of the channel's rate, and each feed its own.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        channel_id: str = "walmart",
        ship_node: str = "",
        feeds_per_hour: float = 10.0,
        feed_poll_interval: float = 60.0,
        put_most: int = 1,
        put_wait: float = PUT_WAIT,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        gate: Gate = UNGATED,
    ) -> None:
        self.channel_id, self.ship_node = channel_id, ship_node
        self.max_batch, self.put_most, self.put_wait = FEED_ITEMS, put_most, put_wait
        # SKU -> when this worker's calls first left it pending (monotonic). Each worker sees
        # its own calls: a drain that moves to another starts counting again there.
        self._left: dict[str, float] = {}
        self.turn_wait = timeout
        self.turns = gate.turns({FEED: feeds_per_hour / 3600})
        self.api = WalmartApi(
            base_url,
            client_id,
            client_secret,
            timeout=timeout,
            transport=transport,
            turn=lambda: AnswersAtOnce.take_turn(self),
        )
        self._feeds = Feeds(self.api, ship_node, feed_poll_interval, self.take_turn)

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set each SKU's quantity: urgent pushes (`Push.urgent`) and small calls one SKU a
        call, at most `put_most` of them, then the rest of a large call (urgent ones beyond
        `put_most` first) in one feed when one may be submitted now (else as many one by one
        as `put_most` allows), and pushes left pending for `put_wait` seconds in that feed too;
        the rest get no result and go again.

        Raises:
            Throttled: Walmart answered 429, or no turn came in time (nothing more is sent).
            ChannelUnavailable: Walmart could not be reached, timed out or answered 5xx.
            ChannelAuthFailed: Walmart refused the client credentials.
        """
        if len(pushes) > self.max_batch:
            raise ValueError(f"{len(pushes)} pushes exceed max_batch {self.max_batch}")
        now = time.monotonic()
        planned = split(pushes, self.put_most, overdue(self._left, now, self.put_wait))
        results = [self._put(p) for p in planned.singles]
        went, submitted = self._bulk(planned)
        self._left = left_since(self._left, pushes, went, now)
        return [*results, *submitted]

    def take_turn(self) -> None:
        """The channel's turn for the next call, a token fetched first if one is due (taking a
        turn of its own, before the call's, so the two do not go back to back)."""
        self.api.tokens.current()
        super().take_turn()

    def settle(self, ticket: str, skus: Sequence[str]) -> list[PushResult] | None:
        """The results of feed `ticket` carrying `skus`; None while Walmart processes it, or
        before the feed poll interval has passed, or when the channel has no turn now.

        Raises:
            ChannelError: Walmart refused the status call; and as `push` (Throttled too when
                a later page of the status found no turn in time).
        """
        # Too soon to look takes no turn: a turn taken for no call is lost to the pushes.
        if not self._feeds.due(ticket) or not self.turns.take(CHANNEL_CALL, 0):
            return None
        return self._feeds.settle(ticket, skus)

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The quantity Walmart shows for each SKU (`GET /v3/inventory`, one call a SKU); None
        for a SKU it does not list.

        Raises:
            ChannelError: Walmart refused a read; and as `push`.
        """
        return {sku: self._quantity(sku) for sku in dict.fromkeys(skus)}

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """One read on the channel's turn, answered with its JSON object; None for a 404. For
        the order listing and the level reading.

        Raises:
            ChannelError: Walmart refused the read or answered no JSON object; and as `push`.
        """
        self.take_turn()
        response = self.api.call("GET", path, params=params)
        if response.status_code == 404:
            return None
        answer = json_of(response)
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise ChannelError(f"Walmart refused GET {path}: {describe(response)}")
        return answer

    def post(self, path: str) -> httpx.Response:
        """One POST on the channel's turn (an order's acknowledgement), answered as Walmart
        answered it.

        Raises:
            Throttled, ChannelUnavailable, ChannelAuthFailed: as `push`.
        """
        self.take_turn()
        return self.api.call("POST", path)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _bulk(self, planned: Split) -> tuple[Split, list[PushResult]]:
        """What went of `planned`, its singles PUT, and the results of its bulk: in one feed
        when one may be submitted now, else as much of it one by one as `put_most` allows."""
        if not planned.bulk:
            return planned, []
        if self.turns.take(FEED, 0):
            self.take_turn()
            return planned, self._feeds.submit(planned.bulk)
        went = without_feed(planned, self.put_most)
        return went, [self._put(p) for p in went.singles[len(planned.singles) :]]

    def _put(self, push: Push) -> PushResult:
        self.take_turn()
        body = {"sku": push.sku, "quantity": {"unit": "EACH", "amount": push.quantity}}
        response = self.api.call("PUT", INVENTORY, params=self._where(push.sku), json=body)
        if response.status_code == 404:
            return PushResult(push.sku, PushStatus.UNKNOWN_SKU, detail=describe(response))
        if response.status_code >= 400:
            return PushResult(push.sku, PushStatus.REJECTED, detail=describe(response))
        return PushResult(push.sku, PushStatus.APPLIED, channel_quantity=_amount(response))

    def _quantity(self, sku: str) -> int | None:
        answer = self.get(INVENTORY, self._where(sku))
        return None if answer is None else _amount_of(answer)

    def _where(self, sku: str) -> dict[str, str]:
        return {"sku": sku, "shipNode": self.ship_node} if self.ship_node else {"sku": sku}


def _amount(response: httpx.Response) -> int | None:
    answer = json_of(response)
    return _amount_of(answer) if isinstance(answer, dict) else None


def _amount_of(answer: Mapping[str, Any]) -> int | None:
    quantity = answer.get("quantity")
    amount = quantity.get("amount") if isinstance(quantity, dict) else None
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return None
    return int(amount)
