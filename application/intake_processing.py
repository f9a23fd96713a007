"""Applying stored deliveries to the ledger: translate, check SKUs, record in one batch, finish.

Any step may run twice (a worker killed mid-batch, a message delivered twice, the sweeper): the
ledger's business keys make the second run change nothing, and a delivery is marked processed
only after its changes are in the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from application.intake import (
    Delivery,
    DeliveryState,
    Observation,
    OrderMemory,
    Translation,
)
from application.ledger import Ledger, OutcomeStatus
from domain.stock import ChangeKind

# Kinds that may introduce a SKU to the ledger; anything else on an unknown SKU is parked.
_INTRODUCING = frozenset({ChangeKind.RECEIPT, ChangeKind.COUNT, ChangeKind.ADJUSTMENT})


@dataclass(frozen=True)
class DeliveryResult:
    delivery: Delivery
    state: DeliveryState
    reason: str | None = None
    observations: Sequence[Observation] = ()
    remember: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class Inbox(Protocol):
    """The durable inbox, as intake processing sees it."""

    def claim(self, ids: Sequence[int], lane: str, limit: int) -> list[Delivery]:
        """Claim for a while the pending deliveries among `ids`, and more of `lane`'s pending
        ones up to `limit`, oldest first, skipping those another worker holds."""
        ...

    def unclaim(self, ids: Sequence[int]) -> None: ...

    def finish(self, results: Sequence[DeliveryResult]) -> None: ...


Translate = Callable[[Delivery, OrderMemory], Translation]


class _MemoryWithOverlay:
    """What earlier deliveries of the same batch will have remembered, over what is stored:
    two updates of one order in one batch must see each other, in order."""

    def __init__(self, stored: OrderMemory) -> None:
        self._stored = stored
        self._overlay: dict[tuple[str, str], Mapping[str, Any]] = {}

    def recall(self, channel_id: str, order_id: str) -> Mapping[str, Any] | None:
        found = self._overlay.get((channel_id, order_id))
        return found if found is not None else self._stored.recall(channel_id, order_id)

    def add(self, channel_id: str, remembered: Mapping[str, Mapping[str, Any]]) -> None:
        for order_id, state in remembered.items():
            self._overlay[channel_id, order_id] = state


class IntakeProcessor:
    """Applies batches of inbox deliveries to the ledger."""

    def __init__(
        self, ledger: Ledger, inbox: Inbox, memory: OrderMemory, translate: Translate
    ) -> None:
        self._ledger = ledger
        self._inbox = inbox
        self._memory = memory
        self._translate = translate

    def process(self, ids: Sequence[int], lane: str, batch: int = 1000) -> list[DeliveryResult]:
        """Apply the still-pending deliveries among `ids`, with whatever else waits in their
        lane (up to `batch`): under load, many small messages become a few large batches, and
        messages whose deliveries a batch already took cost one query. Returns what became of
        each delivery applied."""
        deliveries = sorted(self._inbox.claim(ids, lane, batch), key=lambda d: d.id)
        if not deliveries:
            return []
        try:
            return self._apply(deliveries)
        except BaseException:
            self._inbox.unclaim([d.id for d in deliveries])  # let another try at once
            raise

    def _apply(self, deliveries: list[Delivery]) -> list[DeliveryResult]:
        memory = _MemoryWithOverlay(self._memory)
        translations: list[tuple[Delivery, Translation]] = []
        for delivery in deliveries:
            translation = self._translate(delivery, memory)
            memory.add(delivery.channel_id, translation.remember)
            translations.append((delivery, translation))
        translations = self._park_unknown_skus(translations)
        results = self._record(translations)
        self._inbox.finish(results)
        return results

    def _park_unknown_skus(
        self, translations: list[tuple[Delivery, Translation]]
    ) -> list[tuple[Delivery, Translation]]:
        wanted = {
            change.sku
            for _, translation in translations
            for change in translation.changes
            if change.kind not in _INTRODUCING
        }
        known = self._ledger.known_skus(wanted) if wanted else set()
        checked: list[tuple[Delivery, Translation]] = []
        held_back: set[tuple[str, str]] = set()  # orders with a parked update in this batch
        for delivery, translated in translations:
            translation = translated
            orders = {(delivery.channel_id, order_id) for order_id in translation.remember}
            unknown = sorted(
                {c.sku for c in translation.changes if c.kind not in _INTRODUCING} - known
            )
            if translation.parked is None and orders & held_back:
                # It was translated on top of an update that will not be applied: applying it
                # would lose that update's changes for good. Both wait for review, in order.
                translation = Translation.park(
                    "an earlier update of the same order is parked: retry that one first"
                )
            elif translation.parked is None and unknown:
                translation = Translation.park(
                    f"SKU not in the ledger: {', '.join(unknown)} (receive or count it, "
                    "then retry the delivery)"
                )
            if translation.parked is not None:
                held_back |= orders
            checked.append((delivery, translation))
        return checked

    def _record(self, translations: list[tuple[Delivery, Translation]]) -> list[DeliveryResult]:
        changes = [c for _, t in translations if t.parked is None for c in t.changes]
        outcomes = iter(self._ledger.record_batch(changes)) if changes else iter(())
        results = []
        for delivery, translation in translations:
            if translation.parked is not None:
                results.append(DeliveryResult(delivery, DeliveryState.PARKED, translation.parked))
                continue
            mine = [next(outcomes) for _ in translation.changes]
            errors = [str(o.error) for o in mine if o.status is OutcomeStatus.REJECTED]
            if errors:
                # The rest of its changes are in; a retry after review re-applies only these.
                reason = "; ".join(errors)
                results.append(DeliveryResult(delivery, DeliveryState.PARKED, reason))
                continue
            results.append(
                DeliveryResult(
                    delivery,
                    DeliveryState.PROCESSED,
                    observations=translation.observations,
                    remember=translation.remember,
                )
            )
        return results
