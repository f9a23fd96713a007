"""The `Ledger` application: records stock changes on per-SKU aggregates, exactly once each."""

from __future__ import annotations

import contextlib
import copy
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from application.as_of import (
    Availability,
    OversellInContext,
    RulesHistory,
    availability_of,
    velocity_day,
    weighs_velocity,
    window_opens,
)
from application.errors import LedgerBusy, StorageNotConfigured, UnknownSku
from application.receipts import AuditFilter, HistoryFilter, Receipt, ReceiptStore
from domain.allocation import ChannelRule
from domain.errors import DomainError
from domain.inventory import InventoryItem, inventory_item_id
from domain.orders import ChannelOrder, OrderUpdate, channel_order_id
from domain.rules import ChannelRules, channel_rules_id
from domain.stock import StockChange

# Back-off jitter from a generator of its own: retries in other threads never move the global
# random state (property tests reproduce their examples from it).
_JITTER = random.Random()


class OutcomeStatus(StrEnum):
    APPLIED = "applied"  # recorded now
    DUPLICATE = "duplicate"  # its business key was recorded before: nothing changed
    REJECTED = "rejected"  # it broke a domain rule: nothing changed


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one stock change. `receipt` is the first recording of its business key."""

    change: StockChange
    status: OutcomeStatus
    receipt: Receipt | None = None
    error: DomainError | None = None


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What became of one order update: APPLIED when it taught something new (its stock
    changes in `changes`), DUPLICATE when everything in it was known, REJECTED with `error`."""

    update: OrderUpdate
    status: OutcomeStatus
    changes: tuple[Outcome, ...] = ()
    error: DomainError | None = None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    events: list[InventoryItem.StockEvent]
    next_cursor: int | None


class _StripedLocks:
    """Serialises writers of the same SKU inside one process, so threads queue instead of
    fighting over aggregate versions (each fight costs a reload and a retry)."""

    def __init__(self, stripes: int = 64) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def holding(self, skus: Sequence[str]) -> Iterator[None]:
        # Sorted acquisition: two batches sharing stripes can never deadlock.
        indexes = sorted({hash(sku) % len(self._locks) for sku in skus})
        for index in indexes:
            self._locks[index].acquire()
        try:
            yield
        finally:
            for index in reversed(indexes):
                self._locks[index].release()


class Ledger(Application[UUID]):
    """The single source of truth for stock: every change an immutable event on its SKU's
    `InventoryItem`, with a receipt per business key saved in the same transaction."""

    name = "Ledger"
    is_snapshotting_enabled = True
    snapshot_interval: ClassVar[int] = 100
    log_section_size = 1000
    env: ClassVar[dict[str, str]] = {
        # Writers keep recently used items in memory; a stale one (another process wrote since)
        # is caught by the optimistic version check, evicted and reloaded.
        "AGGREGATE_CACHE_MAXSIZE": "50000",
    }
    max_attempts: ClassVar[int] = 30

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        if not isinstance(self.recorder, ReceiptStore):
            raise StorageNotConfigured(
                f"the ledger refuses {type(self.recorder).__name__}: it needs the invsync "
                "PostgreSQL recorder (in-memory or SQLite storage would lose or split the ledger)"
            )
        self.receipts: ReceiptStore = self.recorder
        self._locks = _StripedLocks()

    # Commands ------------------------------------------------------------------------------

    def record(self, change: StockChange) -> Outcome:
        """Apply one stock change once: a business key seen before returns its first outcome."""
        return self.record_batch([change])[0]

    def record_batch(self, changes: Sequence[StockChange]) -> list[Outcome]:
        """Apply many changes in one transaction (one `save()`), grouped by SKU.

        Returns one outcome per change, in order. A change that breaks a domain rule is rejected
        alone; the others are applied. Raises `LedgerBusy` if writers in other processes kept
        winning the race for the same SKUs.
        """
        return self.record_lessons(changes, ())[0]

    def record_lessons(
        self, changes: Sequence[StockChange], updates: Sequence[OrderUpdate]
    ) -> tuple[list[Outcome], list[OrderOutcome]]:
        """Apply stock changes and what channel orders teach, in one transaction.

        An order update is merged into its `ChannelOrder`, and the stock changes that take its
        lines to what they should now hold are recorded with it: the order and the SKUs are
        saved together under optimistic concurrency, so a lesson is applied once however many
        workers learn it at the same moment. Returns the outcomes of `changes` and of `updates`,
        each in order. Raises `LedgerBusy`.
        """
        for attempt in range(1, self.max_attempts + 1):
            try:
                # A lone command skips the receipt look-up on its first attempt: a duplicate is
                # rare there, and the unique business key still refuses it (then we look).
                look_up = attempt > 1 or len(changes) > 1
                return self._try_batch(changes, updates, look_up=look_up)
            except IntegrityError:
                # Another writer got there first: a newer version of an item or an order, or
                # the same business key. The next attempt reloads and sees which.
                time.sleep(_JITTER.uniform(0, 0.002 * attempt))
        raise LedgerBusy(f"gave up after {self.max_attempts} conflicting attempts")

    def _try_batch(
        self, changes: Sequence[StockChange], updates: Sequence[OrderUpdate], look_up: bool
    ) -> tuple[list[Outcome], list[OrderOutcome]]:
        first_of_key: dict[str, StockChange] = {}
        for change in changes:
            first_of_key.setdefault(change.business_key, change)
        known = self.receipts.select_receipts(list(first_of_key)) if look_up else {}
        fresh = [change for key, change in first_of_key.items() if key not in known]
        orders = self._load_orders({(u.channel_id, u.order_id) for u in updates})
        try:
            lessons = [self._learn(orders, u) for u in updates]
        except BaseException:
            self._forget(orders.values())
            raise
        derived = [c for lesson in lessons for c in lesson[1]]
        skus = sorted({change.sku for change in [*fresh, *derived]})
        results: dict[str, Outcome] = {}
        with self._locks.holding(skus):
            items = {sku: self._load_for_write(sku) for sku in skus}
            # Stored versions: a new item's pending Created event is not stored yet.
            versions_before = {s: i.version - len(i.pending_events) for s, i in items.items()}
            try:
                results = self._apply([*fresh, *derived], items)
                receipts = [o.receipt for o in results.values() if o.receipt is not None]
                # The event store directly, not save(): save() checks every aggregate against
                # runtime Protocols, which costs more than the insert with 1,000 items a batch.
                aggregates: list[Aggregate] = [*items.values(), *orders.values()]
                events = [event for agg in aggregates for event in agg.collect_events()]
                self.events.put(events, receipts=receipts)
            except BaseException:
                self._forget([*items.values(), *orders.values()])
                raise
            self._cache_and_snapshot(items, versions_before)
            for order in orders.values():
                self._order_cache_put(order)
        if not look_up:
            # Skipping the look-up must not turn a repeat into a refusal: a repeated fact may
            # break a rule (its reservation is already open) before its key is checked.
            refused = [k for k, o in results.items() if o.status is OutcomeStatus.REJECTED]
            known = self.receipts.select_receipts(refused) if refused else {}
        first_index: dict[str, int] = {}
        outcomes = [
            self._outcome_of(
                change, results, known, first_index.setdefault(change.business_key, i) != i
            )
            for i, change in enumerate(changes)
        ]
        return outcomes, [
            OrderOutcome(
                update,
                status,
                tuple(results[c.business_key] for c in derived_changes),
                error,
            )
            for update, (status, derived_changes, error) in zip(updates, lessons, strict=True)
        ]

    @staticmethod
    def _learn(
        orders: dict[tuple[str, str], ChannelOrder], update: OrderUpdate
    ) -> tuple[OutcomeStatus, list[StockChange], DomainError | None]:
        """Teach `update` to its order, opening the order with it when none is known yet."""
        key = (update.channel_id, update.order_id)
        order = orders.get(key)
        try:
            if order is None:
                orders[key], derived = ChannelOrder.open(update)
                return OutcomeStatus.APPLIED, derived, None
            version = order.version
            derived = order.learn(update)
        except DomainError as error:
            return OutcomeStatus.REJECTED, [], error
        status = OutcomeStatus.APPLIED if order.version > version else OutcomeStatus.DUPLICATE
        return status, derived, None

    def _load_orders(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], ChannelOrder]:
        cache = self.repository.cache
        assert cache is not None  # AGGREGATE_CACHE_MAXSIZE is set on the class
        orders: dict[tuple[str, str], ChannelOrder] = {}
        uncached: dict[UUID, tuple[str, str]] = {}
        for key in keys:
            try:
                orders[key] = cast(ChannelOrder, cache.get(channel_order_id(*key)))
            except KeyError:
                uncached[channel_order_id(*key)] = key
        # Most orders in a batch are new: one query says which are stored, instead of one
        # failed read each. A new one is opened by its first lesson (`_learn`).
        stored = self.receipts.select_existing_items(list(uncached)) if uncached else set()
        for aggregate_id in stored:
            orders[uncached[aggregate_id]] = cast(
                ChannelOrder, self.repository.get(aggregate_id, deepcopy_from_cache=False)
            )
        return orders

    def _order_cache_put(self, order: ChannelOrder) -> None:
        cache = self.repository.cache
        assert cache is not None
        cache.put(order.id, order)

    def _apply(
        self, changes: list[StockChange], items: dict[str, InventoryItem]
    ) -> dict[str, Outcome]:
        results: dict[str, Outcome] = {}
        for change in changes:
            item = items[change.sku]
            first_version = item.version + 1
            try:
                item.record(change)
            except DomainError as error:
                results[change.business_key] = Outcome(change, OutcomeStatus.REJECTED, error=error)
                continue
            event = cast(InventoryItem.StockEvent, item.pending_events[-1])
            receipt = Receipt(
                business_key=change.business_key,
                sku=change.sku,
                item_id=item.id,
                kind=change.kind,
                first_version=first_version,
                last_version=item.version,
                recorded_at=event.timestamp,
                occurred_at=change.occurred_at,
                source=change.source,
                shortfall=getattr(event, "shortfall", 0),
                location=change.location,
                reference=change.reference,
                reason=event.reason,
            )
            results[change.business_key] = Outcome(change, OutcomeStatus.APPLIED, receipt)
        return results

    @staticmethod
    def _outcome_of(
        change: StockChange, results: dict[str, Outcome], known: dict[str, Receipt], repeated: bool
    ) -> Outcome:
        receipt = known.get(change.business_key)
        first = results.get(change.business_key)
        # A key names one fact about one SKU: used again for another SKU it is a mistake to
        # refuse, saying which SKU it named first, not a duplicate to ignore in silence.
        first_sku = receipt.sku if receipt is not None else first.change.sku if first else None
        if first_sku is not None and first_sku != change.sku and (receipt or repeated):
            reused = DomainError(
                f"business key {change.business_key!r} was first used for SKU {first_sku!r}, "
                f"not {change.sku!r}: give this change a key of its own"
            )
            return Outcome(change, OutcomeStatus.REJECTED, error=reused)
        if receipt is not None:
            return Outcome(change, OutcomeStatus.DUPLICATE, receipt)
        assert first is not None  # a key not known before was tried in this batch
        if not repeated:
            return first
        # A later change in the same batch with a key already used in it.
        if first.status is OutcomeStatus.REJECTED:
            return Outcome(change, OutcomeStatus.REJECTED, error=first.error)
        return Outcome(change, OutcomeStatus.DUPLICATE, first.receipt)

    def _load_for_write(self, sku: str) -> InventoryItem:
        item_id = inventory_item_id(sku)
        cache = self.repository.cache
        assert cache is not None  # AGGREGATE_CACHE_MAXSIZE is set on the class
        try:
            return cast(InventoryItem, cache.get(item_id))
        except KeyError:
            pass
        try:
            return cast(InventoryItem, self.repository.get(item_id, deepcopy_from_cache=False))
        except AggregateNotFoundError:
            return InventoryItem(sku)

    def _forget(self, items: Any) -> None:
        cache = self.repository.cache
        assert cache is not None
        for item in items:
            with contextlib.suppress(KeyError):
                cache.get(item.id, evict=True)

    def _cache_and_snapshot(
        self, items: dict[str, InventoryItem], versions_before: dict[str, int]
    ) -> None:
        cache = self.repository.cache
        assert cache is not None
        assert self.snapshots is not None
        snapshots = []
        for sku, item in items.items():
            cache.put(item.id, item)
            if (
                item.version // self.snapshot_interval
                > versions_before[sku] // self.snapshot_interval
            ):
                # Taken from the item in hand: the library's own interval snapshots would reload
                # every such item from the database first.
                snapshots.append(InventoryItem.Snapshot.take(item))
        if snapshots:
            self.snapshots.put(snapshots)

    # Queries -------------------------------------------------------------------------------

    def get_item(self, sku: str) -> InventoryItem:
        """The current stock of a SKU. Raises `UnknownSku`."""
        with self._locks.holding([sku]):
            try:
                return cast(InventoryItem, self.repository.get(inventory_item_id(sku)))
            except AggregateNotFoundError:
                raise UnknownSku(f"no stock has been recorded for SKU {sku!r}") from None

    def channel_order(self, channel_id: str, order_id: str) -> ChannelOrder | None:
        """What is known of a channel order and what its lines hold, None if never seen."""
        try:
            return cast(ChannelOrder, self.repository.get(channel_order_id(channel_id, order_id)))
        except AggregateNotFoundError:
            return None

    def item_at(self, sku: str, at: datetime) -> InventoryItem:
        """The stock of a SKU as recorded at time `at`. Raises `UnknownSku`."""
        version = self.receipts.version_at(inventory_item_id(sku), at)
        if version is None:
            raise UnknownSku(f"no stock had been recorded for SKU {sku!r} at {at.isoformat()}")
        return cast(InventoryItem, self.repository.get(inventory_item_id(sku), version=version))

    def history(self, sku: str, history: HistoryFilter, limit: int = 50) -> HistoryPage:
        """A page of a SKU's ledger events, filtered by kind and recorded time."""
        item_id = inventory_item_id(sku)
        receipts = self.receipts.select_history(item_id, history, limit + 1)
        page, more = receipts[:limit], len(receipts) > limit
        if not page:
            return HistoryPage([], None)
        wanted = {v for r in page for v in range(r.first_version, r.last_version + 1)}
        stored = self.events.get(
            item_id,
            gt=min(r.first_version for r in page) - 1,
            lte=max(r.last_version for r in page),
            desc=history.newest_first,
        )
        events = [
            event
            for event in stored
            if event.originator_version in wanted and isinstance(event, InventoryItem.StockEvent)
        ]
        cursor = page[-1].first_version if history.newest_first else page[-1].last_version
        return HistoryPage(events, cursor if more else None)

    def known_skus(self, skus: Iterable[str]) -> set[str]:
        """The SKUs among `skus` that have a stock record."""
        by_id = {inventory_item_id(sku): sku for sku in skus}
        return {by_id[found] for found in self.receipts.select_existing_items(list(by_id))}

    def skus(self, contains: str = "", after: str | None = None, limit: int = 50) -> list[str]:
        """SKUs with a stock record whose name contains `contains`, in order, after `after`."""
        return self.receipts.select_skus(contains, after, limit)

    def audit(self, audit: AuditFilter, limit: int = 100) -> list[Receipt]:
        """Recorded changes across SKUs, newest first, filtered for an audit."""
        return self.receipts.select_audit(audit, limit)

    def channel_rules(self, defaults: ChannelRule) -> tuple[ChannelRule, ChannelRules | None]:
        """The channel's rules now: the last change recorded, else the configured defaults."""
        try:
            rules = cast(ChannelRules, self.repository.get(channel_rules_id(defaults.channel_id)))
        except AggregateNotFoundError:
            return defaults, None
        return rules.rule(defaults), rules

    def rules_for(self, sku: str, defaults: Sequence[ChannelRule]) -> list[ChannelRule]:
        """Each channel's rule for `sku`: recorded changes and the SKU's overrides over
        `defaults`, the configured rules."""
        rules = []
        for default in defaults:
            _, recorded = self.channel_rules(default)
            rules.append(recorded.rule_for(sku, default) if recorded else default)
        return rules

    def change_channel_rules(self, rule: ChannelRule, changed_by: str, reason: str) -> None:
        """Record new rules for a channel (who, why); they apply from the next computation."""
        self._change_rules(rule, lambda rules: rules.change(rule, changed_by, reason))

    def override_sku_rules(
        self, channel_id: str, sku: str, keys: dict[str, Any], changed_by: str, reason: str
    ) -> None:
        """Record the keys of the channel's rule that differ for `sku` ({} removes them).
        Raises `InvalidRule`."""
        self._change_rules(
            ChannelRule(channel_id),
            lambda rules: rules.override(sku, keys, changed_by, reason),
        )

    def _change_rules(self, rule: ChannelRule, change: Callable[[ChannelRules], None]) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                _, rules = self.channel_rules(rule)
                rules = rules or ChannelRules(rule.channel_id)
                change(rules)
                self.save(rules)
                return
            except IntegrityError:
                time.sleep(_JITTER.uniform(0, 0.002 * attempt))
        raise LedgerBusy(f"gave up after {self.max_attempts} conflicting attempts")

    def oversells(self, limit: int = 100, before: datetime | None = None) -> list[Receipt]:
        """Sales that drove available stock below zero, newest first."""
        return self.receipts.select_oversells(limit, before)

    # As of a time --------------------------------------------------------------------------

    def rules_history(self, defaults: Sequence[ChannelRule]) -> RulesHistory:
        """Every recorded change of the configured channels' rules, to ask what was in force
        when. One read per channel, however many moments are asked about."""
        changes = {
            rule.channel_id: [
                event
                for event in self.events.get(channel_rules_id(rule.channel_id))
                if isinstance(event, Aggregate.Event)
            ]
            for rule in defaults
        }
        return RulesHistory(defaults, changes)

    def availability_at(
        self, sku: str, at: datetime, defaults: Sequence[ChannelRule]
    ) -> Availability:
        """A SKU's stock and each channel's available-to-sell as the ledger knew them at `at`,
        which is what the availability projection held (and sent the channels) then: the stock
        recorded by then, the rules in force for it then (`defaults` until a channel's first
        change, and the SKU's overrides), and the sales velocity of the window the projection
        used (see `velocity_day`).
        Raises `UnknownSku` if nothing had been recorded for the SKU by then."""
        item = self.item_at(sku, at)
        history = self.rules_history(defaults)
        rules = history.at(at, sku)
        if not weighs_velocity(rules):
            return availability_of(item, rules, [], None)
        [last] = self.events.get(item.id, gt=item.version - 1, lte=item.version)
        day = velocity_day(cast(Aggregate.Event, last), history.changed_at(at, sku))
        sales = self._window_events(item.id, rules, [day], item.version)
        return availability_of(item, rules, sales, day)

    def oversells_in_context(
        self,
        defaults: Sequence[ChannelRule],
        limit: int = 100,
        before: datetime | None = None,
        context: int = 3,
    ) -> list[OversellInContext]:
        """Oversells as `oversells` lists them, each with up to `context` of its SKU's ledger
        events either side, and each channel's ATS just before and just after the sale."""
        history = self.rules_history(defaults)
        return [self._in_context(r, history, context) for r in self.oversells(limit, before)]

    def _in_context(
        self, receipt: Receipt, history: RulesHistory, context: int
    ) -> OversellInContext:
        at, sale = receipt.recorded_at, receipt.last_version
        rules, changed = history.at(at, receipt.sku), history.changed_at(at, receipt.sku)
        # The context, and the event before the sale: its day anchors the velocity before it.
        read = list(
            self.events.get(receipt.item_id, gt=max(0, sale - 2 - context), lte=sale + context)
        )
        by_version = {e.originator_version: cast(Aggregate.Event, e) for e in read}
        days = [velocity_day(by_version[v], changed) for v in (sale - 1, sale)]
        sales = self._window_events(receipt.item_id, rules, days, sale)
        # The item before the sale comes from its snapshot; the sale is folded onto a copy.
        before = cast(InventoryItem, self.repository.get(receipt.item_id, version=sale - 1))
        after = cast(InventoryItem, project_aggregate(copy.deepcopy(before), [by_version[sale]]))
        events = [e for e in read if isinstance(e, InventoryItem.StockEvent)]
        return OversellInContext(
            receipt=receipt,
            events_before=[e for e in events if sale - context <= e.originator_version < sale],
            events_after=[e for e in events if sale < e.originator_version <= sale + context],
            before=availability_of(before, rules, sales, days[0]),
            after=availability_of(after, rules, sales, days[1]),
        )

    def _window_events(
        self,
        item_id: UUID,
        rules: Sequence[ChannelRule],
        days: Sequence[date | None],
        lte: int,
    ) -> list[InventoryItem.StockEvent]:
        """The SKU's events up to version `lte` that may have occurred in the velocity windows
        ending on `days`; none when no rule weighs velocity."""
        anchored = [day for day in days if day is not None]
        if not anchored or not weighs_velocity(rules):
            return []
        # Sales are recorded after they occur: those that occurred in the window follow this
        # version. One recorded before it with a later `occurred_at` (a clock ahead by more
        # than a day) is not counted.
        start = self.receipts.version_at(item_id, window_opens(min(anchored))) or 0
        return self._stock_events(item_id, start, lte)

    def _stock_events(self, item_id: UUID, gt: int, lte: int) -> list[InventoryItem.StockEvent]:
        return [
            event
            for event in self.events.get(item_id, gt=gt, lte=lte)
            if isinstance(event, InventoryItem.StockEvent)
        ]
