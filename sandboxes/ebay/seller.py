"""An eBay seller account to test against (CHANNELS.md §4, §7): inventory items and their
published offers, Fulfillment API orders, OAuth tokens, the Notification API's key and its
deliveries, and eBay's limits.

What it imitates: OAuth (`/identity/v1/oauth2/token`) with the application's client id and
secret as HTTP Basic credentials, the client-credentials grant (application tokens) and the
refresh-token grant (user tokens), tokens that expire (`token_lifetime`, two hours as eBay's, or
at once with `expire_tokens`) and answer 401 after; the Notification API's public key, signed
notifications and the endpoint validation (`notifications.py`); Fulfillment orders listed by
`lastmodifieddate` with offset paging; inventory items paged and read 25 at a time; offers by
SKU; `bulk_update_price_quantity` of at most 25 items (400 beyond), each published offer's listing
revised at most `revisions_per_day` times (250) a calendar day (eBay's day, US Pacific), the next
refused per offer; a listing shows the least of its offer's `availableQuantity` and the item's
quantity. eBay's daily call limit (`calls_per_day`: 429 past it), a host's limits (`throttle`: 429)
and outages (`faults`) as the shared framework has.

Simplified: one marketplace, one offer (listing) per SKU unless asked for more, no prices;
an order is checked out and paid at once; a cancellation puts its units back, a refund moves no
stock (returns are another API); the error ids of refusals eBay does not document are the
sandbox's own (`REVISION_LIMIT`).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette

from sandboxes.ebay.api import InventoryApi
from sandboxes.ebay.control import ControlApi
from sandboxes.ebay.notifications import (
    ACCOUNT_DELETION,
    EbaySigner,
    notification,
    sender,
    validate_endpoint,
)
from sandboxes.server import CallLog, Faults
from sandboxes.webhooks import Message

EBAY_DAY = ZoneInfo("America/Los_Angeles")  # eBay's calendar day is US Pacific time
REVISIONS_PER_DAY = 250


class OutOfStock(Exception):
    """Raised when a shopper asks for more than a listing shows."""


@dataclass
class Offer:
    offer_id: str
    sku: str
    listing_id: str
    available_quantity: int


@dataclass
class Item:
    sku: str
    quantity: int
    offers: list[Offer] = field(default_factory=list)

    def shown(self) -> int:
        """What the listing shows: the least of the item's and each offer's quantity."""
        return min([self.quantity, *(o.available_quantity for o in self.offers)])


@dataclass
class LineItem:
    line_item_id: str
    sku: str
    quantity: int
    status: str = "NOT_STARTED"  # lineItemFulfillmentStatus


@dataclass
class Order:
    order_id: str
    created: datetime
    modified: datetime
    lines: list[LineItem]
    cancel_state: str = "NONE_REQUESTED"
    payment_status: str = "PAID"


@dataclass
class Throttle:
    """The next `calls` API calls (all, if None) answer 429."""

    calls: int | None = None


class EbaySandbox:
    """One eBay seller and application; serve `.app` with `SandboxServer`.

    Parameters:
        client_id, client_secret: the application's OAuth client.
        refresh_token: the seller's consent.
        token_lifetime: seconds an access token lasts (eBay: 7,200).
        revisions_per_day: revisions of one listing a calendar day (eBay: 250).
        calls_per_day: API calls the application may make a calendar day (eBay's daily call
            limits, 2,000,000 for the Inventory API); past it, 429 until the next day. None:
            unlimited.
        retry_delays: seconds before each retry of a notification not answered 2xx.
    """

    def __init__(
        self,
        client_id: str = "sandbox-app",
        client_secret: str = "sandbox-cert",
        refresh_token: str = "sandbox-refresh",
        *,
        token_lifetime: float = 7200.0,
        revisions_per_day: int = REVISIONS_PER_DAY,
        calls_per_day: int | None = None,
        retry_delays: tuple[float, ...] = (0.1, 0.5, 2.0),
        faults: Faults | None = None,
        log: CallLog | None = None,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token = refresh_token
        self.token_lifetime, self.revisions_per_day = token_lifetime, revisions_per_day
        self.calls_per_day = calls_per_day
        self.calls_today: dict[str, int] = {}  # eBay day -> API calls answered
        self.faults, self.log = faults or Faults(), log or CallLog()
        self.throttling: Throttle | None = None
        self.items: dict[str, Item] = {}
        self.orders: dict[str, Order] = {}
        self.tokens: dict[str, tuple[str, datetime]] = {}  # token -> grant, expiry
        self.revisions: dict[tuple[str, str], int] = {}  # (listing, eBay day) -> revisions
        self.lock = threading.RLock()
        self._ids = itertools.count(110_000_000_001)
        self._order_numbers = itertools.count(1_042_117)
        self._last_modified = datetime.now(UTC)
        self.signer = EbaySigner(ec.generate_private_key(ec.SECP256R1()), str(uuid.uuid4()))
        self.notifications = sender(self.signer, retry_delays)
        self.app = Starlette(routes=InventoryApi(self).routes() + ControlApi(self).routes())

    # Catalogue ----------------------------------------------------------------------------

    def add_item(self, sku: str, quantity: int = 0, *, offers: int = 1) -> list[str]:
        """An inventory item with `offers` published offers (listings); their listing ids."""
        with self.lock:
            item = Item(sku, quantity)
            for _ in range(offers):
                number = next(self._ids)
                item.offers.append(Offer(str(number), sku, str(number + 7), quantity))
            self.items[sku] = item
            return [offer.listing_id for offer in item.offers]

    def shown(self, sku: str) -> int:
        with self.lock:
            return self.items[sku].shown()

    def stock(self, sku: str) -> int | None:
        """What the listing shows; None for a SKU the account does not list."""
        with self.lock:
            item = self.items.get(sku)
            return None if item is None else item.shown()

    def set_quantity(self, sku: str, quantity: int) -> None:
        """The seller edits the listing on eBay (Seller Hub): item and offers alike."""
        with self.lock:
            item = self.items[sku]
            item.quantity = quantity
            for offer in item.offers:
                offer.available_quantity = quantity

    def revisions_today(self, listing_id: str) -> int:
        with self.lock:
            return self.revisions.get((listing_id, self.today()), 0)

    def today(self) -> str:
        return datetime.now(EBAY_DAY).date().isoformat()

    def over_daily_limit(self) -> bool:
        """Count a call against the day's limit; True when it is past it."""
        with self.lock:
            day = self.today()
            self.calls_today[day] = self.calls_today.get(day, 0) + 1
            return self.calls_per_day is not None and self.calls_today[day] > self.calls_per_day

    def throttle(self, calls: int | None = None) -> None:
        """Answer the next `calls` API calls (all, until `lift_throttle`) with 429."""
        self.throttling = Throttle(calls)

    def lift_throttle(self) -> None:
        self.throttling = None

    # Shoppers and the seller --------------------------------------------------------------

    def buy(self, sku: str, quantity: int = 1) -> str:
        """A paid checkout of one SKU; the order's id."""
        return self.checkout({sku: quantity})

    def checkout(self, items: Mapping[str, int]) -> str:
        """A paid checkout, one line per SKU: the listings show fewer units at once."""
        with self.lock:
            for sku, quantity in items.items():
                if self.items[sku].shown() < quantity:
                    raise OutOfStock(f"only {self.items[sku].shown()} of {sku!r} listed")
            lines = [self._sold(sku, quantity) for sku, quantity in items.items()]
            now = self._moment()
            number = next(self._order_numbers)
            order_id = f"27-{number // 100_000:05d}-{number % 100_000:05d}"
            order = Order(order_id, now, now, lines)
            self.orders[order.order_id] = order
            return order.order_id

    def _sold(self, sku: str, quantity: int) -> LineItem:
        item = self.items[sku]
        item.quantity -= quantity
        for offer in item.offers:
            offer.available_quantity -= quantity
        return LineItem(str(next(self._ids)), sku, quantity)

    def cancel(self, order_id: str) -> None:
        """The order is cancelled before shipping: its units are listed again."""
        with self.lock:
            order = self.orders[order_id]
            if order.cancel_state != "CANCELED":
                for line in order.lines:
                    self._put_back(line)
            order.cancel_state, order.payment_status = "CANCELED", "FULLY_REFUNDED"
            order.modified = self._moment()

    def _put_back(self, line: LineItem) -> None:
        item = self.items.get(line.sku)
        if item is None or line.status == "FULFILLED":
            return
        item.quantity += line.quantity
        for offer in item.offers:
            offer.available_quantity += line.quantity

    def ship(self, order_id: str) -> None:
        with self.lock:
            order = self.orders[order_id]
            for line in order.lines:
                line.status = "FULFILLED"
            order.modified = self._moment()

    def refund(self, order_id: str) -> None:
        """A refund without a return: no stock moves."""
        with self.lock:
            order = self.orders[order_id]
            order.payment_status = "FULLY_REFUNDED"
            order.modified = self._moment()

    def _moment(self) -> datetime:
        """Now, and at least a millisecond after the last change (eBay's resolution)."""
        self._last_modified = max(
            datetime.now(UTC), self._last_modified + timedelta(milliseconds=1)
        )
        return self._last_modified

    # OAuth --------------------------------------------------------------------------------

    def issue(self, grant: str) -> dict[str, Any]:
        """A new access token of `grant` (`application` or `user`)."""
        token = f"v^1.1#{grant}#{secrets.token_urlsafe(24)}"
        with self.lock:
            lifetime = timedelta(seconds=self.token_lifetime)
            self.tokens[token] = (grant, datetime.now(UTC) + lifetime)
        kind = "Application Access Token" if grant == "application" else "User Access Token"
        return {"access_token": token, "expires_in": int(self.token_lifetime), "token_type": kind}

    def grant_of(self, token: str) -> str | None:
        """The grant of a token still valid; None for an unknown or expired one."""
        with self.lock:
            found = self.tokens.get(token)
        return found[0] if found is not None and found[1] > datetime.now(UTC) else None

    def expire_tokens(self) -> None:
        """Every access token given so far expires now."""
        with self.lock:
            self.tokens.clear()

    # Notifications ------------------------------------------------------------------------

    def subscribe(self, url: str, verification_token: str, endpoint: str) -> bool:
        """Set the destination: eBay validates it first (the challenge GET to `url`, hashed
        with `endpoint` as registered); deliveries go to `url` only if it answers right."""
        valid = validate_endpoint(url, verification_token, endpoint)
        self.notifications.url = url if valid else None
        return valid

    def delete_account(self, username: str, user_id: str) -> Message | None:
        """A buyer closed their eBay account: `MARKETPLACE_ACCOUNT_DELETION` is sent."""
        data = {"username": username, "userId": user_id, "eiasToken": secrets.token_urlsafe(30)}
        return self.notifications.send(notification(ACCOUNT_DELETION, data))

    def close(self) -> None:
        self.notifications.close()
