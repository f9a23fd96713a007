"""Value objects of the stock domain: what a stock change says, and the quantities it moves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.errors import InvalidChange, InvalidQuantity, SameLocationTransfer


class ChangeKind(StrEnum):
    """What happened to the stock, one kind per ledger event class."""

    RECEIPT = "receipt"  # a purchase-order receipt: on_hand rises
    SALE = "sale"  # an order line: committed rises
    SALE_CANCELLATION = "sale_cancellation"  # committed falls again
    SHIPMENT = "shipment"  # fulfilment: on_hand and committed fall
    RETURN = "return"  # a refund with the item back: on_hand rises
    ADJUSTMENT = "adjustment"  # ± with a reason from AdjustmentReason
    COUNT = "count"  # a cycle count: observed against expected
    TRANSFER = "transfer"  # on_hand moves between two locations
    RESERVATION = "reservation"  # a hold: reserved rises
    RESERVATION_RELEASE = "reservation_release"  # the hold ends


class AdjustmentReason(StrEnum):
    """The fixed list of reasons an operator may give for an adjustment."""

    DAMAGED = "damaged"
    SHRINKAGE = "shrinkage"
    THEFT = "theft"
    FOUND = "found"
    CORRECTION = "correction"
    EXPIRED = "expired"
    QUALITY_CONTROL = "quality_control"
    RETURNED_TO_SUPPLIER = "returned_to_supplier"


class QuantityState(StrEnum):
    """The named states a location's units are in, modelled on Shopify's."""

    ON_HAND = "on_hand"  # physically there
    COMMITTED = "committed"  # sold, not yet shipped
    RESERVED = "reserved"  # held for a pending order or a manual hold
    UNAVAILABLE = "unavailable"  # there, but not for sale (damaged, quality control)


@dataclass(frozen=True, slots=True)
class Levels:
    """The quantities of one SKU at one location (or summed over locations)."""

    on_hand: int = 0
    committed: int = 0
    reserved: int = 0
    unavailable: int = 0

    @property
    def available(self) -> int:
        """Units free to sell; negative after an oversell."""
        return self.on_hand - self.committed - self.reserved - self.unavailable

    def __add__(self, other: Levels) -> Levels:
        return Levels(
            self.on_hand + other.on_hand,
            self.committed + other.committed,
            self.reserved + other.reserved,
            self.unavailable + other.unavailable,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "on_hand": self.on_hand,
            "committed": self.committed,
            "reserved": self.reserved,
            "unavailable": self.unavailable,
            "available": self.available,
        }


# Kinds whose `quantity` is a signed delta rather than a positive count.
_SIGNED_KINDS = frozenset({ChangeKind.ADJUSTMENT})

# The longest identifiers and texts a stock change may carry, in characters: bounded so that no
# single change can overflow an index entry or a column and stop everybody's work behind it.
LIMITS = {
    "sku": 255,
    "location": 255,
    "to_location": 255,
    "source": 255,
    "reservation_id": 255,
    "business_key": 512,
    "reason": 512,
    "reference": 2048,
}
# The most units one change may move: larger figures are typing errors or attacks, and would
# overflow the ledger's counters.
MAX_UNITS = 1_000_000_000
_CONTROL = frozenset(chr(c) for c in range(32)) | {chr(127)}


def check_text(name: str, value: str) -> str:
    """`value` if it fits `LIMITS[name]` and holds no control characters (NUL cannot even be
    stored); else raises `InvalidChange` naming the field."""
    limit = LIMITS[name]
    if len(value) > limit:
        raise InvalidChange(f"{name} is {len(value)} characters long; at most {limit} are allowed")
    if not _CONTROL.isdisjoint(value):
        raise InvalidChange(f"{name} {value[:40]!r} holds a control character")
    if not value.isascii() and any("\ud800" <= c <= "\udfff" for c in value):
        raise InvalidChange(f"{name} {value[:40]!r} is not valid Unicode (a lone surrogate)")
    return value


@dataclass(frozen=True, slots=True)
class StockChange:
    """One business fact about stock, as a channel, a system or an operator reports it.

    `business_key` identifies the fact itself (a sale is keyed by channel account, order id and
    line id), so the same fact learned twice is applied once. `quantity` is a positive count of
    units, except for adjustments, where it is a non-zero signed delta, and for counts, where it is
    the observed quantity (zero allowed).
    """

    kind: ChangeKind
    sku: str
    location: str
    quantity: int
    business_key: str
    source: str
    occurred_at: datetime
    reference: str = ""
    reason: str = ""
    to_location: str | None = None  # transfers only
    restock: bool = True  # returns only: False puts the returned units in `unavailable`
    expected: int | None = None  # counts only: the on_hand the counter expected
    reservation_id: str | None = None  # reservations and releases only
    state: QuantityState = QuantityState.ON_HAND  # adjustments only: on_hand or unavailable

    def __post_init__(self) -> None:
        for name in ("sku", "location", "business_key", "source"):
            if not getattr(self, name).strip():
                raise InvalidChange(f"a stock change needs a non-empty {name}")
        for name in LIMITS:
            value = getattr(self, name)
            if isinstance(value, str):
                check_text(name, value)
        if self.occurred_at.tzinfo is None:
            raise InvalidChange("occurred_at must carry a time zone")
        self._check_quantity()
        self._check_kind_fields()

    def _check_quantity(self) -> None:
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise InvalidQuantity(f"quantity must be a whole number, got {self.quantity!r}")
        for name in ("quantity", "expected"):
            value = getattr(self, name)
            if value is not None and abs(value) > MAX_UNITS:
                raise InvalidQuantity(f"{name} {value} is beyond {MAX_UNITS:,} units")
        if self.kind is ChangeKind.COUNT:
            if self.quantity < 0:
                raise InvalidQuantity(f"a counted quantity cannot be negative ({self.quantity})")
            if self.expected is not None and self.expected < 0:
                raise InvalidQuantity(f"an expected quantity cannot be negative ({self.expected})")
        elif self.kind in _SIGNED_KINDS:
            if self.quantity == 0:
                raise InvalidQuantity("an adjustment of zero units changes nothing")
        elif self.quantity <= 0:
            raise InvalidQuantity(f"a {self.kind} needs a positive quantity, got {self.quantity}")

    def _check_kind_fields(self) -> None:
        if self.kind is ChangeKind.TRANSFER:
            if not self.to_location:
                raise InvalidChange("a transfer needs a to_location")
            if self.to_location == self.location:
                raise SameLocationTransfer(
                    f"a transfer from {self.location!r} to itself moves nothing"
                )
        elif self.to_location is not None:
            raise InvalidChange(f"only a transfer takes a to_location, not a {self.kind}")
        if self.kind is ChangeKind.ADJUSTMENT and self.reason not in set(AdjustmentReason):
            allowed = ", ".join(AdjustmentReason)
            raise InvalidChange(f"adjustment reason {self.reason!r} is not one of: {allowed}")
        if self.kind is not ChangeKind.ADJUSTMENT and self.state is not QuantityState.ON_HAND:
            raise InvalidChange(f"only an adjustment takes a state, not a {self.kind}")
        if self.state not in (QuantityState.ON_HAND, QuantityState.UNAVAILABLE):
            raise InvalidChange("an adjustment moves on_hand or unavailable units only")
        needs_reservation = self.kind in (ChangeKind.RESERVATION, ChangeKind.RESERVATION_RELEASE)
        if needs_reservation and not self.reservation_id:
            raise InvalidChange(f"a {self.kind} needs a reservation_id")
        if self.expected is not None and self.kind is not ChangeKind.COUNT:
            raise InvalidChange(f"only a count takes an expected quantity, not a {self.kind}")
