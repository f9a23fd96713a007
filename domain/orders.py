"""Per-line accounting of channel orders: what a channel has told us about an order, and what the
ledger holds for each of its lines, so that any order and any repetition of its deliveries ends
in the same ledger state.

Channels send overlapping facts about the same units: a line is cancelled by the order's
cancellation and again by a refund that cancels it; its fulfilment arrives before the order; an
edit shrinks it. Keys per fact cannot see that they overlap. So each delivery only adds to what
is known of the order (`Facts`, merged so that the result does not depend on the order of
arrival, and learning the same thing twice changes nothing), the channel's policy derives from
everything known what each line should hold in the ledger (`LineTarget`), and the order moves
the ledger by the difference between that and what the line holds already (`Held`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidChange
from domain.stock import ChangeKind, StockChange, check_text

MAX_ID = 100  # characters of a channel's order or line id


class LineConflict(DomainError):
    """Raised when what a channel says of an order line contradicts what the ledger holds for
    it (a line that changed SKU while holding stock): a person must look."""


@dataclass(frozen=True)
class Facts:
    """What is known of an order or one of its lines, as a join-semilattice: `merge` is
    commutative, associative and idempotent, so the facts of any permutation of deliveries,
    with repeats, are the same.

    - `latest`: name → (stamp, value), the value of the newest stamp wins (the channel's own
      modification time; ties keep the larger value);
    - `peaks`: name → the largest value seen (quantities that only grow, e.g. units shipped);
    - `tallies`: name → id → units, one entry per channel document (a refund, a fulfilment, an
      edit), so the same document seen twice counts once;
    - `flags`: names that, once true, stay true (an order cancelled).
    """

    latest: Mapping[str, tuple[str, Any]] = field(default_factory=dict)
    peaks: Mapping[str, int] = field(default_factory=dict)
    tallies: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()

    def merge(self, other: Facts) -> Facts:
        latest = dict(self.latest)
        for name, (stamp, value) in other.latest.items():
            mine = latest.get(name)
            if mine is None or (stamp, _order_key(value)) > (mine[0], _order_key(mine[1])):
                latest[name] = (stamp, value)
        peaks = dict(self.peaks)
        for name, value in other.peaks.items():
            peaks[name] = max(value, peaks.get(name, value))
        tallies = {name: dict(entries) for name, entries in self.tallies.items()}
        for name, entries in other.tallies.items():
            mine_entries = tallies.setdefault(name, {})
            for key, units in entries.items():
                mine_entries[key] = max(units, mine_entries.get(key, units))
        return Facts(latest, peaks, tallies, self.flags | other.flags)

    def value(self, name: str, default: Any = None) -> Any:
        found = self.latest.get(name)
        return default if found is None else found[1]

    def stamp(self, name: str) -> str | None:
        found = self.latest.get(name)
        return None if found is None else found[0]

    def peak(self, name: str, default: int = 0) -> int:
        return self.peaks.get(name, default)

    def total(self, name: str) -> int:
        return sum(self.tallies.get(name, {}).values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "latest": {name: [stamp, value] for name, (stamp, value) in self.latest.items()},
            "peaks": dict(self.peaks),
            "tallies": {name: dict(entries) for name, entries in self.tallies.items()},
            "flags": sorted(self.flags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Facts:
        return cls(
            latest={name: (pair[0], pair[1]) for name, pair in data.get("latest", {}).items()},
            peaks=dict(data.get("peaks", {})),
            tallies={name: dict(e) for name, e in data.get("tallies", {}).items()},
            flags=frozenset(data.get("flags", ())),
        )


def _order_key(value: Any) -> tuple[int, Any]:
    # Values of one name share a type in practice; this keeps ties total whatever they are.
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def stamp(moment: datetime) -> str:
    """A `Facts` stamp: UTC, fixed width, so stamps compare as the moments they name."""
    if moment.tzinfo is None:
        raise ValueError("a stamp needs a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


@dataclass(frozen=True)
class Units:
    """What one order line holds in the ledger at one location."""

    committed: int = 0  # sold, not shipped
    shipped: int = 0  # left the building for this line
    restocked: int = 0  # came back, sellable
    unrestocked: int = 0  # came back, held as unavailable

    def as_dict(self) -> dict[str, int]:
        return {
            "committed": self.committed,
            "shipped": self.shipped,
            "restocked": self.restocked,
            "unrestocked": self.unrestocked,
        }


@dataclass(frozen=True)
class LineTarget:
    """What an order line should hold in the ledger, per location, given all that is known."""

    sku: str
    locations: Mapping[str, Units]


Targets = Callable[[Facts, Mapping[str, Facts]], Mapping[str, LineTarget]]


@dataclass(frozen=True)
class OrderUpdate:
    """What one delivery teaches about one channel order.

    `targets` is the channel's policy: from everything known of the order (order-level facts,
    facts per line id) it derives what each line should hold. `reference` names the source
    document (the order, or its fulfilment or refund); `reason` says what happened.
    """

    channel_id: str
    order_id: str
    facts: Facts
    lines: Mapping[str, Facts]
    targets: Targets
    occurred_at: datetime
    reference: str
    reason: str

    def __post_init__(self) -> None:
        # Every id here ends up in business keys and receipts: bounded and printable, so one
        # hostile delivery can be refused alone instead of failing a whole batch at the database.
        for what, value in (("order id", self.order_id), *(("line id", i) for i in self.lines)):
            if not value or len(value) > MAX_ID or not value.isprintable():
                raise InvalidChange(f"{what} {value[:40]!r} is empty, too long or unprintable")
        for facts in self.lines.values():
            sku = facts.value("sku")
            if sku is not None:
                check_text("sku", str(sku))
            location = facts.value("location")
            if location is not None:
                check_text("location", str(location))

    @property
    def order_key(self) -> str:
        return f"{self.channel_id}:order:{self.order_id}"

    def skus(self) -> set[str]:
        """The SKUs this update names (what the ledger must know before applying it)."""
        return {t.sku for t in self.targets(self.facts, self.lines).values()}


def channel_order_id(channel_id: str, order_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"invsync:/channels/{channel_id}/orders/{order_id}")


class ChannelOrder(Aggregate):
    """One channel order: everything learned of it, and what each of its lines holds in the
    ledger. Saved in the same transaction as the stock events its lessons cause, under
    optimistic concurrency, so two workers can never apply one lesson twice."""

    @staticmethod
    def create_id(channel_id: str, order_id: str) -> UUID:
        return channel_order_id(channel_id, order_id)

    @event("Opened")
    def __init__(
        self,
        channel_id: str,
        order_id: str,
        facts: dict[str, Any],
        lines: dict[str, dict[str, Any]],
        held: dict[str, Any],
    ) -> None:
        self.channel_id = channel_id
        self.order_id = order_id
        # Plain dicts, so snapshots transcode to JSON without custom transcodings.
        self._facts, self._lines, self._held = facts, lines, held

    @classmethod
    def open(cls, update: OrderUpdate) -> tuple[ChannelOrder, list[StockChange]]:
        """The order as its first lesson leaves it (one event), and the stock changes that
        lesson causes.

        Raises:
            LineConflict: as `learn`.
        """
        state, moves = _lesson(update.order_id, _State({}, {}, {}), update, version=1)
        order = cls(update.channel_id, update.order_id, state.facts, state.lines, state.held)
        return order, moves

    @property
    def facts(self) -> Facts:
        return Facts.from_dict(self._facts)

    @property
    def lines(self) -> dict[str, Facts]:
        return {line_id: Facts.from_dict(data) for line_id, data in self._lines.items()}

    def held(self, line_id: str) -> tuple[str, dict[str, Units]] | None:
        return _held(self._held, line_id)

    def learn(self, update: OrderUpdate) -> list[StockChange]:
        """Merge what `update` teaches and return the stock changes that take the ledger from
        what the lines hold to what they should hold now (none: nothing new was learned).

        Raises:
            LineConflict: a line holding stock would change SKU.
        """
        before = _State(self._facts, self._lines, self._held)
        state, moves = _lesson(self.order_id, before, update, version=self.version + 1)
        if state.facts == before.facts and state.lines == before.lines and not moves:
            return []
        self._learned(facts=state.facts, lines=state.lines, held=state.held)
        return moves

    @event("Learned")
    def _learned(
        self, facts: dict[str, Any], lines: dict[str, dict[str, Any]], held: dict[str, Any]
    ) -> None:
        self._facts, self._lines, self._held = facts, lines, held


@dataclass(frozen=True)
class _State:
    """An order's state as its events store it: plain dicts."""

    facts: dict[str, Any]
    lines: dict[str, dict[str, Any]]
    held: dict[str, Any]


def _held(held: Mapping[str, Any], line_id: str) -> tuple[str, dict[str, Units]] | None:
    data = held.get(line_id)
    if data is None:
        return None
    return data["sku"], {loc: Units(**units) for loc, units in data["locations"].items()}


def _lesson(
    order_id: str, before: _State, update: OrderUpdate, version: int
) -> tuple[_State, list[StockChange]]:
    """What `update` makes of an order's state, and the stock changes for it, keyed with the
    version the order will have once this lesson is recorded."""
    facts = Facts.from_dict(before.facts).merge(update.facts)
    lines = {line_id: Facts.from_dict(data) for line_id, data in before.lines.items()}
    for line_id, line_facts in update.lines.items():
        lines[line_id] = lines[line_id].merge(line_facts) if line_id in lines else line_facts
    held_all = dict(before.held)
    moves: list[StockChange] = []
    for line_id, target in sorted(update.targets(facts, lines).items()):
        held = _held(before.held, line_id)
        if held is not None and held[0] != target.sku:
            if any(u != Units() for u in held[1].values()):
                raise LineConflict(
                    f"line {line_id} of order {order_id} changed SKU from {held[0]!r} to "
                    f"{target.sku!r} while holding stock: move the stock by hand, then retry"
                )
            held = None
        held_units = held[1] if held else {}
        after: dict[str, Units] = {}
        for location in sorted(set(held_units) | set(target.locations)):
            was = held_units.get(location, Units())
            now = target.locations.get(location, Units())
            step = _LineStep(update, line_id, target.sku, location, version)
            moves.extend(step.moves(was, now))
            after[location] = Units(
                committed=now.committed,
                shipped=max(was.shipped, now.shipped),
                restocked=max(was.restocked, now.restocked),
                unrestocked=max(was.unrestocked, now.unrestocked),
            )
        held_all[line_id] = {
            "sku": target.sku,
            "locations": {loc: units.as_dict() for loc, units in after.items()},
        }
    state = _State(
        facts.as_dict(), {line_id: f.as_dict() for line_id, f in lines.items()}, held_all
    )
    return state, moves


@dataclass(frozen=True)
class _LineStep:
    update: OrderUpdate
    line_id: str
    sku: str
    location: str
    version: int  # the order's, once the lesson is recorded: part of every business key

    def moves(self, was: Units, now: Units) -> Iterator[StockChange]:
        """The changes from `was` to `now` at one location. A shipment releases committed
        units, so what it ships is committed first (a fulfilment learned before its order is
        sold, then shipped); committed units neither still owed nor shipped are released last.
        Shipped and returned units never go back: a later, smaller figure is a stale view."""
        shipping = max(0, now.shipped - was.shipped)
        needed = now.committed + shipping
        if needed > was.committed:
            yield self._change(ChangeKind.SALE, needed - was.committed)
        if shipping:
            yield self._change(ChangeKind.SHIPMENT, shipping)
        if was.committed > needed:
            yield self._change(ChangeKind.SALE_CANCELLATION, was.committed - needed)
        if now.restocked > was.restocked:
            yield self._change(ChangeKind.RETURN, now.restocked - was.restocked, "restocked")
        if now.unrestocked > was.unrestocked:
            yield self._change(
                ChangeKind.RETURN, now.unrestocked - was.unrestocked, "unrestocked", restock=False
            )

    def _change(
        self, kind: ChangeKind, units: int, suffix: str = "", restock: bool = True
    ) -> StockChange:
        update = self.update
        name = f"{kind.value}-{suffix}" if suffix else kind.value
        return StockChange(
            kind=kind,
            sku=self.sku,
            location=self.location,
            quantity=units,
            business_key=(
                f"{update.order_key}:line:{self.line_id}:{self.location}:{name}:v{self.version}"
            ),
            source=update.channel_id,
            occurred_at=update.occurred_at,
            reference=update.reference,
            reason=update.reason,
            restock=restock,
        )
