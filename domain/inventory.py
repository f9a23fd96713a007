"""The `InventoryItem` aggregate: every unit of one SKU, at every location, as a stream of events.

Events are stored forever under their module path and class name: rename nothing here; evolve an
event with `class_version` and an `upcast_vN_vN+1` static method instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import (
    DuplicateReservation,
    InsufficientStock,
    UnknownLocation,
    UnknownReservation,
)
from domain.stock import ChangeKind, Levels, QuantityState, StockChange

ON_HAND = QuantityState.ON_HAND.value
COMMITTED = QuantityState.COMMITTED.value
RESERVED = QuantityState.RESERVED.value
UNAVAILABLE = QuantityState.UNAVAILABLE.value

_STATES = tuple(state.value for state in QuantityState)

Delta = tuple[str, str, int]  # (location, state, signed units)


@functools.lru_cache(maxsize=65536)  # hashing is a measurable share of a batch's time
def inventory_item_id(sku: str) -> UUID:
    """The aggregate id of a SKU: stable, so every process finds the same stream."""
    return uuid5(NAMESPACE_URL, f"invsync:/skus/{sku}")


class InventoryItem(Aggregate):
    """All the stock of one SKU, per location, in the states of `QuantityState`."""

    class Created(Aggregate.Created):
        sku: str

    class StockEvent(Aggregate.Event):
        """What every ledger event says: where, why, which fact, from whom and when."""

        location: str
        business_key: str
        source: str
        reference: str
        reason: str
        occurred_at: datetime

        kind: ClassVar[ChangeKind]

        def deltas(self) -> tuple[Delta, ...]:
            """The signed changes this event makes to the quantities, derived from its data only."""
            raise NotImplementedError

        def units_sold(self) -> int:
            """Net units this event sells on its channel (`source`): what sales velocity counts."""
            return 0

        def apply(self, aggregate: Any) -> None:
            item: InventoryItem = aggregate
            for location, state, units in self.deltas():
                item._add(location, state, units)

    class Received(StockEvent):
        quantity: int
        kind = ChangeKind.RECEIPT

        def deltas(self) -> tuple[Delta, ...]:
            return ((self.location, ON_HAND, self.quantity),)

    class Sold(StockEvent):
        """A sale commits stock. `shortfall` counts the units sold beyond what was available:
        the sale is recorded all the same (it already happened on the channel) and flagged."""

        quantity: int
        shortfall: int
        kind = ChangeKind.SALE

        def deltas(self) -> tuple[Delta, ...]:
            return ((self.location, COMMITTED, self.quantity),)

        def units_sold(self) -> int:
            return self.quantity

    class SaleCancelled(StockEvent):
        """`released` is the part of `quantity` that was still committed."""

        quantity: int
        released: int
        kind = ChangeKind.SALE_CANCELLATION

        def deltas(self) -> tuple[Delta, ...]:
            return ((self.location, COMMITTED, -self.released),)

        def units_sold(self) -> int:
            # Only the units still committed were counted as sold, so only they come back off.
            return -self.released

    class Shipped(StockEvent):
        """Fulfilment: the units leave the building. `released` is the committed part."""

        quantity: int
        released: int
        kind = ChangeKind.SHIPMENT

        def deltas(self) -> tuple[Delta, ...]:
            return (
                (self.location, ON_HAND, -self.quantity),
                (self.location, COMMITTED, -self.released),
            )

    class Returned(StockEvent):
        """Units come back; unless restocked they are held as unavailable."""

        quantity: int
        restock: bool
        kind = ChangeKind.RETURN

        def deltas(self) -> tuple[Delta, ...]:
            moves: tuple[Delta, ...] = ((self.location, ON_HAND, self.quantity),)
            if not self.restock:
                moves += ((self.location, UNAVAILABLE, self.quantity),)
            return moves

    class Adjusted(StockEvent):
        """An operator's signed correction of on_hand or unavailable, `reason` from a fixed list."""

        delta: int
        state: str
        kind = ChangeKind.ADJUSTMENT

        def deltas(self) -> tuple[Delta, ...]:
            return ((self.location, self.state, self.delta),)

    class Counted(StockEvent):
        """A cycle count. `delta` = `counted` - `expected`, applied to on_hand as it is now, so
        sales recorded between the count and its recording are kept, never overwritten."""

        counted: int
        expected: int
        delta: int
        kind = ChangeKind.COUNT

        def deltas(self) -> tuple[Delta, ...]:
            return ((self.location, ON_HAND, self.delta),) if self.delta else ()

    class Transferred(StockEvent):
        quantity: int
        to_location: str
        kind = ChangeKind.TRANSFER

        def deltas(self) -> tuple[Delta, ...]:
            return (
                (self.location, ON_HAND, -self.quantity),
                (self.to_location, ON_HAND, self.quantity),
            )

    class Reserved(StockEvent):
        quantity: int
        reservation_id: str
        kind = ChangeKind.RESERVATION

        def deltas(self) -> tuple[Delta, ...]:
            return ((self.location, RESERVED, self.quantity),)

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate._reservations[self.reservation_id] = self.quantity

    class ReservationReleased(StockEvent):
        quantity: int
        reservation_id: str
        kind = ChangeKind.RESERVATION_RELEASE

        def deltas(self) -> tuple[Delta, ...]:
            return ((self.location, RESERVED, -self.quantity),)

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            left = aggregate._reservations.pop(self.reservation_id) - self.quantity
            if left:
                aggregate._reservations[self.reservation_id] = left

    @staticmethod
    def create_id(sku: str) -> UUID:
        return inventory_item_id(sku)

    def __init__(self, sku: str) -> None:
        self.sku = sku
        # Plain dicts, so snapshots transcode to JSON without custom transcodings.
        self._levels: dict[str, dict[str, int]] = {}
        self._reservations: dict[str, int] = {}

    # Queries -------------------------------------------------------------------------------

    @property
    def locations(self) -> dict[str, Levels]:
        return {name: Levels(**levels) for name, levels in sorted(self._levels.items())}

    def levels_at(self, location: str) -> Levels:
        return Levels(**self._levels.get(location, {}))

    @property
    def totals(self) -> Levels:
        return sum(self.locations.values(), Levels())

    def reservation(self, reservation_id: str) -> int | None:
        return self._reservations.get(reservation_id)

    # Commands ------------------------------------------------------------------------------

    def record(self, change: StockChange) -> None:
        """Apply one stock change, raising a `DomainError` (and changing nothing) if it breaks a
        rule."""
        if change.sku != self.sku:
            raise ValueError(f"change for {change.sku!r} sent to item {self.sku!r}")
        self._commands[change.kind](self, change)

    def _receive(self, change: StockChange) -> None:
        self._trigger(self.Received, change, quantity=change.quantity)

    def _sell(self, change: StockChange) -> None:
        levels = self._levels.get(change.location)
        # Read from the dict, not through Levels: this runs once per sale on the hot path.
        available = (
            levels[ON_HAND] - levels[COMMITTED] - levels[RESERVED] - levels[UNAVAILABLE]
            if levels
            else 0
        )
        shortfall = change.quantity - max(0, min(change.quantity, available))
        self._trigger(self.Sold, change, quantity=change.quantity, shortfall=shortfall)

    def _cancel_sale(self, change: StockChange) -> None:
        released = min(change.quantity, self.levels_at(change.location).committed)
        self._trigger(self.SaleCancelled, change, quantity=change.quantity, released=released)

    def _ship(self, change: StockChange) -> None:
        released = min(change.quantity, self.levels_at(change.location).committed)
        self._trigger(self.Shipped, change, quantity=change.quantity, released=released)

    def _return(self, change: StockChange) -> None:
        self._trigger(self.Returned, change, quantity=change.quantity, restock=change.restock)

    def _adjust(self, change: StockChange) -> None:
        levels = self.levels_at(change.location)
        if change.state is QuantityState.UNAVAILABLE:
            after = levels.unavailable + change.quantity
            if after < 0 or after > levels.on_hand:
                raise InsufficientStock(
                    f"{change.sku} at {change.location}: unavailable would become {after} "
                    f"with {levels.on_hand} on hand"
                )
        elif levels.on_hand + change.quantity < 0:
            raise InsufficientStock(
                f"{change.sku} at {change.location}: cannot remove {-change.quantity} "
                f"of {levels.on_hand} on hand"
            )
        self._trigger(self.Adjusted, change, delta=change.quantity, state=change.state.value)

    def _count(self, change: StockChange) -> None:
        on_hand = self.levels_at(change.location).on_hand
        expected = on_hand if change.expected is None else change.expected
        delta = max(change.quantity - expected, -on_hand)
        self._trigger(self.Counted, change, counted=change.quantity, expected=expected, delta=delta)

    def _transfer(self, change: StockChange) -> None:
        if change.location not in self._levels:
            raise UnknownLocation(f"{change.sku} has no stock record at {change.location!r}")
        on_hand = self._levels[change.location][ON_HAND]
        if change.quantity > on_hand:
            raise InsufficientStock(
                f"{change.sku} at {change.location}: cannot move {change.quantity} "
                f"of {on_hand} on hand"
            )
        assert change.to_location is not None  # StockChange guarantees it for transfers
        self._trigger(
            self.Transferred, change, quantity=change.quantity, to_location=change.to_location
        )

    def _reserve(self, change: StockChange) -> None:
        if change.reservation_id in self._reservations:
            raise DuplicateReservation(f"reservation {change.reservation_id!r} is already open")
        self._trigger(
            self.Reserved, change, quantity=change.quantity, reservation_id=change.reservation_id
        )

    def _release(self, change: StockChange) -> None:
        held = self._reservations.get(change.reservation_id or "")
        if held is None:
            raise UnknownReservation(f"no open reservation {change.reservation_id!r} on {self.sku}")
        if change.quantity > held:
            raise InsufficientStock(
                f"reservation {change.reservation_id!r} holds {held}, cannot release "
                f"{change.quantity}"
            )
        self._trigger(
            self.ReservationReleased,
            change,
            quantity=change.quantity,
            reservation_id=change.reservation_id,
        )

    _commands: ClassVar[dict[ChangeKind, Callable[[InventoryItem, StockChange], None]]] = {
        ChangeKind.RECEIPT: _receive,
        ChangeKind.SALE: _sell,
        ChangeKind.SALE_CANCELLATION: _cancel_sale,
        ChangeKind.SHIPMENT: _ship,
        ChangeKind.RETURN: _return,
        ChangeKind.ADJUSTMENT: _adjust,
        ChangeKind.COUNT: _count,
        ChangeKind.TRANSFER: _transfer,
        ChangeKind.RESERVATION: _reserve,
        ChangeKind.RESERVATION_RELEASE: _release,
    }

    # Mechanics -----------------------------------------------------------------------------

    def _trigger(self, event_class: type[StockEvent], change: StockChange, **fields: Any) -> None:
        self.trigger_event(
            event_class,
            location=change.location,
            business_key=change.business_key,
            source=change.source,
            reference=change.reference,
            reason=change.reason or change.kind.value,
            occurred_at=change.occurred_at,
            **fields,
        )

    def _add(self, location: str, state: str, units: int) -> None:
        if location not in self._levels:
            self._levels[location] = dict.fromkeys(_STATES, 0)
        self._levels[location][state] += units
