"""eBay Inventory API stock (CHANNELS.md §4.3): `bulk_update_price_quantity`, at most 25 SKUs a
call, setting the item's `shipToLocationAvailability.quantity` and each published offer's
`availableQuantity` (a listing shows the least of them, so both are set). A SKU's offers are
learned by `GET /offer?sku=` once and kept an hour (offers are made and ended rarely; a call
per SKU per push would double the calls), in memory and in the offer file the gateway is given,
where a gateway started afresh finds them, a call with other pushes ready looking up a few new
SKUs at most (`offers.py`); an offer eBay no longer has (25713, ended or deleted since) leaves
its SKU with no result and its offers forgotten, on file too, to be looked up again.

Each push revises the SKU's listings, of which eBay allows 250 a listing a day: the revisions
are counted per listing and eBay day in the channel's gate (shared by every worker), and a push
the budget does not allow now (`revisions.py`) is held: answered SUBMITTED under a ticket that
settles, with no call, `HOLD_SECONDS` later with no result, so the SKU rests meanwhile (no call,
no turn spent on it) and then goes again with whatever quantity is due by then (a move to zero
goes at once). A push of what the listing already shows by our last acknowledgement costs
nothing.

Calls carry a user access token (the refresh-token grant, `oauth.py`), kept until it expires
and replaced once when eBay answers 401. A 429 without `Retry-After` waits twice as long as the
one before it in a row, up to eBay's next day, when its daily call limits start again
(`call_limits.py`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from infrastructure.channels.ebay.answers import by_sku, described, offer_gone, sku_result
from infrastructure.channels.ebay.call_limits import throttled_wait
from infrastructure.channels.ebay.oauth import EbayTokens, user_grant
from infrastructure.channels.ebay.offers import OfferBook
from infrastructure.channels.ebay.revisions import (
    DEFAULT_BUDGET,
    RevisionBudget,
    ebay_day,
    may_revise,
)
from infrastructure.channels.gateway import (
    NO_RATES,
    UNGATED,
    AnswersAtOnce,
    ChannelAuthFailed,
    ChannelError,
    Gate,
    Push,
    PushResult,
    PushStatus,
)
from infrastructure.channels.http import exchange, json_object
from infrastructure.channels.offer_file import UNFILED, OfferFile, Offers

log = logging.getLogger(__name__)

INVENTORY = "/sell/inventory/v1"
FULFILLMENT = "/sell/fulfillment/v1"
BULK_LIMIT = 25  # SKUs per bulk update or bulk read
PAGE_LIMIT = 200  # items or orders per page
REVISIONS_KEPT = 2 * 86400.0  # a day's counts outlive the day
# A held push is looked at again this long after: what is due then may be a move to zero.
HOLD_SECONDS = 30.0
HOLD = "revisions-held:"


class EbayGateway(AnswersAtOnce):
    """One eBay seller's stock and orders, through the Sell APIs with a user token.

    Parameters:
        api_base_url: `https://api.ebay.com`, or a sandbox's.
        client_id, client_secret, refresh_token: the application and the seller's consent.
        channel_id: the channel account's id in invsync.
        marketplace_id: sent as `X-EBAY-C-MARKETPLACE-ID` when given.
        timeout: seconds for each API call.
        gate: where each call takes its turn, and where revisions are counted.
        budget: how a listing's daily revisions are spent.
        clock: the time now, for eBay's day (tests).
        default_retry_after: seconds to wait after a 429 that names none, doubled for each
            such 429 in a row up to eBay's next day (its daily call limits).
        offers: where the SKUs' offers looked up are filed, and first looked for.
    """

    max_batch = BULK_LIMIT

    def __init__(
        self,
        api_base_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        channel_id: str = "ebay",
        marketplace_id: str = "",
        timeout: float = 10.0,
        gate: Gate = UNGATED,
        budget: RevisionBudget = DEFAULT_BUDGET,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        default_retry_after: float = 5.0,
        offers: OfferFile = UNFILED,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.channel_id, self.budget, self._clock = channel_id, budget, clock
        self.turns = gate.turns(NO_RATES)
        self.revisions = gate.tally("revisions")
        self.default_retry_after = default_retry_after
        self._throttled_in_a_row = 0  # 429s naming no wait since eBay last served a call
        headers = {"Accept": "application/json", "User-Agent": "invsync"}
        if marketplace_id:
            headers["X-EBAY-C-MARKETPLACE-ID"] = marketplace_id
        self._client = httpx.Client(
            base_url=api_base_url.rstrip("/"), timeout=timeout, headers=headers, transport=transport
        )
        grant = user_grant(refresh_token)
        self._tokens = EbayTokens(
            self._client, api_base_url, client_id, client_secret, grant, turn=self.take_turn
        )
        self._offers = OfferBook(channel_id, offers, self._lookup_offers, clock)

    # Pushes -------------------------------------------------------------------------------

    def push(self, pushes: Sequence[Push]) -> list[PushResult]:
        """Set each SKU's quantity on eBay, a result per push: APPLIED, UNKNOWN_SKU where
        eBay has no such item, REJECTED with eBay's error where it refused the item, SUBMITTED
        (held, see `settle`) where the revision budget does not allow it now; none where eBay
        failed the item on its side (a 5xx `statusCode`) or its offers wait for a later lookup
        (`offers.to_look_up_now`): it goes again.

        Raises:
            Throttled: eBay answered 429.
            ChannelUnavailable: eBay could not be reached, timed out or answered 5xx.
            ChannelAuthFailed: eBay refused the refresh token or our token twice.
        """
        if len(pushes) > BULK_LIMIT:
            raise ValueError(f"at most {BULK_LIMIT} SKUs a bulk update, not {len(pushes)}")
        unchanged = [p for p in pushes if p.quantity == p.acknowledged]
        changing = [p for p in pushes if p not in unchanged]
        offers = self._offers.known([p.sku for p in changing])
        going = self._allowed([p for p in changing if p.sku in offers], offers)
        new = [p.sku for p in changing if p.sku not in offers]
        offers |= self._offers.look_up(new, pushes_ready=bool(going)) if new else {}
        going += self._allowed([p for p in changing if p.sku in new and p.sku in offers], offers)
        results = [PushResult(p.sku, PushStatus.APPLIED, p.quantity) for p in unchanged]
        # Unique, as a submission's ticket is: the time it is up, and a name of its own.
        until = (self._clock() + timedelta(seconds=HOLD_SECONDS)).isoformat()
        ticket = f"{HOLD}{until}#{uuid.uuid4().hex[:12]}"
        held = [p for p in changing if p.sku in offers and p not in going]
        results += [PushResult(p.sku, PushStatus.SUBMITTED, ticket=ticket) for p in held]
        if going:
            results += self._bulk_update(going, offers)
        return results

    def settle(self, ticket: str, skus: Sequence[str]) -> list[PushResult] | None:
        """A hold's SKUs go again once its time is up: no results (so they stay pending), no
        call; None before.

        Raises:
            ValueError: not a ticket this gateway gave.
        """
        if not ticket.startswith(HOLD):
            raise ValueError(f"{ticket!r} is not a hold of eBay's revision budget")
        until = datetime.fromisoformat(ticket.removeprefix(HOLD).partition("#")[0])
        return [] if self._clock() >= until else None

    def _allowed(
        self, pushes: list[Push], offers: Mapping[str, Sequence[tuple[str, str]]]
    ) -> list[Push]:
        day, elapsed = ebay_day(self._clock())
        listings = [[f"{day}:{listing}" for _, listing in offers[p.sku]] for p in pushes]
        counts = self.revisions.counts([name for names in listings for name in names])
        allowed, at = [], 0
        for push, names in zip(pushes, listings, strict=True):
            used = max(counts[at : at + len(names)], default=0)
            at += len(names)
            if may_revise(self.budget, used, elapsed, push.acknowledged, push.quantity):
                allowed.append(push)
            else:
                log.debug(
                    "%s: %s=%d held: %d revisions today",
                    self.channel_id,
                    push.sku,
                    push.quantity,
                    used,
                )
        return allowed

    def _bulk_update(
        self, pushes: list[Push], offers: Mapping[str, Sequence[tuple[str, str]]]
    ) -> list[PushResult]:
        body = {"requests": [_request(p, offers[p.sku]) for p in pushes]}
        response = self._call("POST", f"{INVENTORY}/bulk_update_price_quantity", json=body)
        if response.status_code not in (200, 207):
            raise _refused(response, "a bulk update")
        answers = by_sku(json_object(response).get("responses"))
        stale = {p.sku for p in pushes if offer_gone(answers.get(p.sku, []))}
        self._offers.forget(sorted(stale))
        found = [
            (p, None if p.sku in stale else sku_result(p, answers.get(p.sku, []))) for p in pushes
        ]
        for push, result in found:
            if result is None:
                sku, quantity, why = push.sku, push.quantity, _again(push.sku in stale)
                log.warning("%s: %s=%d goes again: %s", self.channel_id, sku, quantity, why)
        results = [result for _, result in found if result is not None]
        day, _ = ebay_day(self._clock())
        revised = [
            f"{day}:{listing}"
            for p, r in found
            if r is not None and r.status is PushStatus.APPLIED
            for _, listing in offers[p.sku]
        ]
        self.revisions.add(revised, REVISIONS_KEPT)
        return results

    def _lookup_offers(self, sku: str) -> Offers:
        response = self._call("GET", f"{INVENTORY}/offer", params={"sku": sku})
        if response.status_code == 404:
            return ()
        if response.status_code != 200:
            raise _refused(response, f"the offers of {sku!r}")
        offers = json_object(response).get("offers")
        return tuple(
            (str(o["offerId"]), str((o.get("listing") or {}).get("listingId") or o["offerId"]))
            for o in (offers if isinstance(offers, list) else [])
            if isinstance(o, dict) and o.get("status") == "PUBLISHED" and o.get("offerId")
        )

    # Reads --------------------------------------------------------------------------------

    def read(self, skus: Sequence[str]) -> Mapping[str, int | None]:
        """The item quantity eBay keeps for each SKU (at most 25 a call); None where it has no
        such item."""
        found: dict[str, int | None] = {}
        for start in range(0, len(skus), BULK_LIMIT):
            found.update(self._bulk_get(skus[start : start + BULK_LIMIT]))
        return {sku: found.get(sku) for sku in skus}

    def _bulk_get(self, skus: Sequence[str]) -> dict[str, int | None]:
        body = {"requests": [{"sku": sku} for sku in skus]}
        response = self._call("POST", f"{INVENTORY}/bulk_get_inventory_item", json=body)
        if response.status_code not in (200, 207):
            raise _refused(response, "a bulk read")
        answers = json_object(response).get("responses")
        return {
            str(a.get("sku")): item_quantity(a.get("inventoryItem"))
            if a.get("statusCode") == 200
            else None
            for a in (answers if isinstance(answers, list) else [])
            if isinstance(a, dict)
        }

    def pages(
        self, path: str, params: Mapping[str, str], name: str
    ) -> Iterator[list[dict[str, Any]]]:
        """The pages of a listing (`inventory_item`, `order`), 200 a page, by offset.

        Raises:
            ChannelError: eBay refused the listing or answered something unreadable.
        """
        offset: int | None = 0
        while offset is not None:
            found, offset = self.page(path, params, name, offset)
            yield found

    def page(
        self, path: str, params: Mapping[str, str], name: str, offset: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of a listing from `offset`, and the offset of the next (None: the last).

        Raises:
            ChannelError: eBay refused the listing or answered something unreadable.
        """
        query = {**params, "limit": str(PAGE_LIMIT), "offset": str(offset)}
        response = self._call("GET", path, params=query)
        if response.status_code != 200:
            raise _refused(response, path)
        page = json_object(response)
        found = page.get(name)
        items = [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []
        after = offset + PAGE_LIMIT
        ended = not page.get("next") or after >= _count(page.get("total"))
        return items, None if ended else after

    # Calls --------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One call with the user token, replaced once if eBay says it expired. A token fetched
        takes a turn of its own, before the call's, so the two do not go back to back."""
        token = self._tokens.current()
        self.take_turn()
        response = self._send(method, path, token, **options)
        if response.status_code == 401:
            self._tokens.forget(token)
            token = self._tokens.current()
            self.take_turn()
            response = self._send(method, path, token, **options)
        self._throttled_in_a_row = 0
        if response.status_code in (401, 403):
            raise ChannelAuthFailed(
                f"eBay refused our user token for {path} (HTTP {response.status_code}): "
                "check the refresh token's scopes, or have the seller consent again"
            )
        return response

    def _send(self, method: str, path: str, token: str, **options: Any) -> httpx.Response:
        return exchange(
            self._client,
            "eBay",
            method,
            path,
            retry_after=self._retry_after,
            headers={"Authorization": f"Bearer {token}"},
            **options,
        )

    def _retry_after(self, response: httpx.Response) -> float:
        """eBay's `Retry-After`, else a wait doubling with each 429 in a row up to eBay's next
        day, when a spent daily call limit starts again (`call_limits.py`)."""
        given = response.headers.get("retry-after", "")
        if given.isdigit():
            return float(given)
        self._throttled_in_a_row += 1
        return throttled_wait(self.default_retry_after, self._throttled_in_a_row, self._clock())

    def close(self) -> None:
        self._client.close()


def _request(push: Push, offers: Sequence[tuple[str, str]]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "sku": push.sku,
        "shipToLocationAvailability": {"quantity": push.quantity},
    }
    if offers:
        request["offers"] = [{"offerId": o, "availableQuantity": push.quantity} for o, _ in offers]
    return request


def _refused(response: httpx.Response, what: str) -> ChannelError:
    return ChannelError(
        f"eBay answered {response.status_code} to {what}: {described(json_object(response))}"
    )


def _again(offer_gone: bool) -> str:
    return "an offer eBay no longer has, looked up again" if offer_gone else "eBay failed it"


def item_quantity(item: object) -> int | None:
    """`availability.shipToLocationAvailability.quantity` of an inventory item, if it has one."""
    availability = item.get("availability") if isinstance(item, dict) else None
    ship_to = (
        availability.get("shipToLocationAvailability") if isinstance(availability, dict) else None
    )
    quantity = ship_to.get("quantity") if isinstance(ship_to, dict) else None
    return quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0
