"""The `Ledger` application's commands: stock changes, what channel orders teach, and rule
changes, recorded on their aggregates exactly once each. Its reads are `LedgerQueries`
(`application.ledger_queries`) and `TimeTravel` (`application.time_travel`)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, Cache
from eventsourcing.domain import Aggregate, MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import EnvType

from application.errors import LedgerBusy
from application.outcomes import (
    Lesson,
    OrderKey,
    OrderOutcome,
    Outcome,
    apply_changes,
    first_of_each_key,
    learn,
    order_outcomes,
    outcomes_of,
    refused_keys,
)
from application.receipts import receipt_store
from domain.allocation import ChannelRule
from domain.inventory import InventoryItem, inventory_item_id
from domain.orders import ChannelOrder, OrderUpdate, channel_order_id
from domain.rules import ChannelRules, channel_rules_id
from domain.stock import StockChange

# Back-off jitter from a generator of its own: retries in other threads never move the global
# random state (property tests reproduce their examples from it).
_JITTER = random.Random()

T = TypeVar("T")


class StripedLocks:
    """Serialises writers of the same SKU inside one process, so threads queue instead of
    fighting over aggregate versions (each fight costs a reload and a retry)."""

    def __init__(self, stripes: int = 64) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def holding(self, skus: Iterable[str]) -> Iterator[None]:
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
    `InventoryItem`, with a receipt per business key saved in the same transaction.

    Its recorder must keep those receipts (`ReceiptStore`); which store that may be in
    production (PostgreSQL only) is the composition root's decision."""

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

    def __init__(self, env: EnvType | None = None) -> None:
        """Raises `StorageNotConfigured` when the recorder `env` names keeps no receipts."""
        super().__init__(env)
        self.receipts = receipt_store(self.recorder)
        # Readers take them too: writers change cached items in place (see `_load_for_write`).
        self.sku_locks = StripedLocks()

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
        # A lone command skips the receipt look-up on its first attempt: a duplicate is rare
        # there, and the unique business key still refuses it (then we look).
        return self._retrying(
            lambda attempt: self._try_batch(
                changes, updates, look_up=attempt > 1 or len(changes) > 1
            )
        )

    def change_channel_rules(self, rule: ChannelRule, changed_by: str, reason: str) -> None:
        """Record new rules for a channel (who, why); they apply from the next computation.
        Raises `InvalidRule`, `LedgerBusy`."""
        self._change_rules(rule.channel_id, lambda rules: rules.change(rule, changed_by, reason))

    def override_sku_rules(
        self, channel_id: str, sku: str, keys: dict[str, Any], changed_by: str, reason: str
    ) -> None:
        """Record the keys of the channel's rule that differ for `sku` ({} removes them).
        Raises `InvalidRule`, `LedgerBusy`."""
        self._change_rules(channel_id, lambda rules: rules.override(sku, keys, changed_by, reason))

    def _change_rules(self, channel_id: str, change: Callable[[ChannelRules], None]) -> None:
        def attempt(_: int) -> None:
            rules = self._stored_rules(channel_id) or ChannelRules(channel_id)
            change(rules)
            self.save(rules)

        self._retrying(attempt)

    def _stored_rules(self, channel_id: str) -> ChannelRules | None:
        try:
            return cast(ChannelRules, self.repository.get(channel_rules_id(channel_id)))
        except AggregateNotFoundError:
            return None

    def _retrying(self, attempt: Callable[[int], T]) -> T:
        """`attempt(n)` until no other writer got there first; raises `LedgerBusy`."""
        for number in range(1, self.max_attempts + 1):
            try:
                return attempt(number)
            except IntegrityError:
                # Another writer got there first: a newer version of an item or an order, or
                # the same business key. The next attempt reloads and sees which.
                time.sleep(_JITTER.uniform(0, 0.002 * number))
        raise LedgerBusy(f"gave up after {self.max_attempts} conflicting attempts")

    def _try_batch(
        self, changes: Sequence[StockChange], updates: Sequence[OrderUpdate], look_up: bool
    ) -> tuple[list[Outcome], list[OrderOutcome]]:
        firsts = first_of_each_key(changes)
        known = self.receipts.select_receipts(list(firsts)) if look_up else {}
        fresh = [change for key, change in firsts.items() if key not in known]
        orders = self._load_orders({(u.channel_id, u.order_id) for u in updates})
        with self._forgotten_on_error(orders.values()):
            lessons = [learn(orders, update) for update in updates]
        results = self._save([*fresh, *_derived(lessons)], orders)
        if not look_up:
            # Skipping the look-up must not turn a repeat into a refusal: a repeated fact may
            # break a rule (its reservation is already open) before its key is checked.
            refused = refused_keys(results)
            known = self.receipts.select_receipts(refused) if refused else {}
        return outcomes_of(changes, results, known), order_outcomes(updates, lessons, results)

    def _save(
        self, changes: list[StockChange], orders: dict[OrderKey, ChannelOrder]
    ) -> dict[str, Outcome]:
        skus = sorted({change.sku for change in changes})
        with self.sku_locks.holding(skus):
            items = {sku: self._load_for_write(sku) for sku in skus}
            # Stored versions: a new item's pending Created event is not stored yet.
            versions_before = {s: i.version - len(i.pending_events) for s, i in items.items()}
            aggregates: list[Aggregate] = [*items.values(), *orders.values()]
            with self._forgotten_on_error(aggregates):
                results = apply_changes(changes, items)
                receipts = [o.receipt for o in results.values() if o.receipt is not None]
                # The event store directly, not save(): save() checks every aggregate against
                # runtime Protocols, which costs more than the insert with 1,000 items a batch.
                events = [event for agg in aggregates for event in agg.collect_events()]
                self.events.put(events, receipts=receipts)
            self._cache_and_snapshot(items, versions_before)
            for order in orders.values():
                self._cache.put(order.id, order)
        return results

    def _load_orders(self, keys: set[OrderKey]) -> dict[OrderKey, ChannelOrder]:
        orders: dict[OrderKey, ChannelOrder] = {}
        uncached: dict[UUID, OrderKey] = {}
        for key in keys:
            try:
                orders[key] = cast(ChannelOrder, self._cache.get(channel_order_id(*key)))
            except KeyError:
                uncached[channel_order_id(*key)] = key
        # Most orders in a batch are new: one query says which are stored, instead of one
        # failed read each. A new one is opened by its first lesson (`learn`).
        stored = self.receipts.select_existing_items(list(uncached)) if uncached else set()
        for aggregate_id in stored:
            orders[uncached[aggregate_id]] = cast(
                ChannelOrder, self.repository.get(aggregate_id, deepcopy_from_cache=False)
            )
        return orders

    def _load_for_write(self, sku: str) -> InventoryItem:
        # The cached item itself, not a copy: it is changed in place and cached again, or
        # evicted when the batch fails (`_forgotten_on_error`).
        item_id = inventory_item_id(sku)
        try:
            return cast(InventoryItem, self._cache.get(item_id))
        except KeyError:
            pass
        try:
            return cast(InventoryItem, self.repository.get(item_id, deepcopy_from_cache=False))
        except AggregateNotFoundError:
            return InventoryItem(sku)

    @property
    def _cache(self) -> Cache[UUID, MutableOrImmutableAggregate[UUID]]:
        cache = self.repository.cache
        assert cache is not None  # AGGREGATE_CACHE_MAXSIZE is set on the class
        return cache

    @contextmanager
    def _forgotten_on_error(self, aggregates: Collection[Aggregate]) -> Iterator[None]:
        """Evict `aggregates` from the cache if the block fails: they may hold changes that
        were never stored."""
        try:
            yield
        except BaseException:
            for aggregate in aggregates:
                with contextlib.suppress(KeyError):
                    self._cache.get(aggregate.id, evict=True)
            raise

    def _cache_and_snapshot(
        self, items: dict[str, InventoryItem], versions_before: dict[str, int]
    ) -> None:
        assert self.snapshots is not None
        snapshots = []
        for sku, item in items.items():
            self._cache.put(item.id, item)
            if (
                item.version // self.snapshot_interval
                > versions_before[sku] // self.snapshot_interval
            ):
                # Taken from the item in hand: the library's own interval snapshots would reload
                # every such item from the database first.
                snapshots.append(InventoryItem.Snapshot.take(item))
        if snapshots:
            self.snapshots.put(snapshots)


def _derived(lessons: Iterable[Lesson]) -> list[StockChange]:
    return [change for lesson in lessons for change in lesson.changes]
