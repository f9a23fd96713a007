"""Applying stored deliveries to the ledger: translate, check SKUs, record in one batch, finish.

Any step may run twice (a worker killed mid-batch, a message delivered twice, the sweeper): the
ledger's business keys make the second run change nothing, and a delivery is marked processed
only after its changes are in the ledger.

A delivery's failure is its own: one that cannot be translated, acknowledged or stored is parked
with its reason at once, and the rest of its batch is applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from eventsourcing.persistence import DataError

from application.intake import (
    Delivery,
    DeliveryDeferred,
    DeliveryState,
    Observation,
    Translation,
)
from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.outcomes import Outcome, OutcomeStatus
from domain.stock import ChangeKind

log = logging.getLogger(__name__)

# Kinds that may introduce a SKU to the ledger; anything else on an unknown SKU waits.
_INTRODUCING = frozenset({ChangeKind.RECEIPT, ChangeKind.COUNT, ChangeKind.ADJUSTMENT})


@dataclass(frozen=True)
class DeliveryResult:
    delivery: Delivery
    state: DeliveryState
    reason: str | None = None
    observations: Sequence[Observation] = ()
    waiting_for: Sequence[str] = ()  # WAITING: the SKUs the ledger must know first


class Inbox(Protocol):
    """The durable inbox, as intake processing sees it."""

    def claim(self, ids: Sequence[int], lane: str, limit: int) -> list[Delivery]:
        """Claim for a while the pending deliveries among `ids`, and more of `lane`'s pending
        ones up to `limit`, oldest first, skipping those another worker holds."""
        ...

    def unclaim(self, ids: Sequence[int]) -> None: ...

    def finish(self, results: Sequence[DeliveryResult]) -> None: ...


Translate = Callable[[Delivery], Translation]
# Performs the outbound hand-shake a stored delivery asks for (an SNS subscription), once.
Acknowledge = Callable[[Delivery], None]
# Deliveries a worker applies at most a message (`IntakeProcessor.process`'s batch).
BATCH = 1_000


class IntakeProcessor:
    """Applies batches of inbox deliveries to the ledger."""

    def __init__(
        self,
        ledger: Ledger,
        inbox: Inbox,
        translate: Translate,
        acknowledge: Acknowledge | None = None,
    ) -> None:
        self._ledger = ledger
        self._queries = LedgerQueries(ledger)
        self._inbox = inbox
        self._translate = translate
        self._acknowledge = acknowledge

    def process(self, ids: Sequence[int], lane: str, batch: int = BATCH) -> list[DeliveryResult]:
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
        translations = []
        for delivery in deliveries:
            try:
                translations.append((delivery, self._translated(delivery)))
            except DeliveryDeferred:
                continue  # its claim lapses, then the sweeper sends it again: a natural back-off
        ready, waiting = self._hold_unknown_skus(translations)
        results = [*waiting, *self._record_apart(ready)]
        self._inbox.finish(results)
        for result in results:
            if result.state is DeliveryState.PARKED:
                _log_parked(result)
        return results

    def _translated(self, delivery: Delivery) -> Translation:
        """The delivery's meaning, or a parked translation saying why it has none. Whatever its
        bytes make a translator or a hand-shake raise (a bug, a hostile payload, a subscription
        URL that answers 404), it is this delivery's alone: parking it at once keeps it from
        failing and retrying every delivery batched with it."""
        try:
            translation = self._translate(delivery)
            if translation.parked is None and self._acknowledge is not None:
                self._acknowledge(delivery)
        except DeliveryDeferred:
            raise
        except Exception as error:
            return Translation.park(f"cannot apply this delivery: {error!r}"[:2000])
        return translation

    def _record_apart(
        self, translations: list[tuple[Delivery, Translation]]
    ) -> list[DeliveryResult]:
        """Record the batch in one transaction; if the database refuses a value in it, find
        the deliveries it refuses by halves and park those alone."""
        try:
            return self._record(translations)
        except DataError as error:
            if len(translations) == 1:
                [(delivery, _)] = translations
                reason = f"the ledger cannot store this delivery's changes: {error}"[:2000]
                return [DeliveryResult(delivery, DeliveryState.PARKED, reason)]
            half = len(translations) // 2
            return [
                *self._record_apart(translations[:half]),
                *self._record_apart(translations[half:]),
            ]

    def _hold_unknown_skus(
        self, translations: list[tuple[Delivery, Translation]]
    ) -> tuple[list[tuple[Delivery, Translation]], list[DeliveryResult]]:
        """Split off the deliveries that name SKUs the ledger does not know: they wait, and
        are applied by themselves once a receipt or a count introduces those SKUs."""
        wanted = {sku for _, t in translations if t.parked is None for sku in _skus_needed(t)}
        known = self._queries.known_skus(wanted) if wanted else set()
        ready, waiting = [], []
        for delivery, translation in translations:
            unknown = sorted(_skus_needed(translation) - known)
            if translation.parked is None and unknown:
                reason = f"waiting for SKU {', '.join(unknown)} to be received or counted"
                waiting.append(
                    DeliveryResult(delivery, DeliveryState.WAITING, reason, waiting_for=unknown)
                )
            else:
                ready.append((delivery, translation))
        return ready, waiting

    def _record(self, translations: list[tuple[Delivery, Translation]]) -> list[DeliveryResult]:
        applied = [t for _, t in translations if t.parked is None]
        changes = [c for t in applied for c in t.changes]
        updates = [u for t in applied for u in t.orders]
        outcomes, lessons = (
            self._ledger.record_lessons(changes, updates) if changes or updates else ([], [])
        )
        change_outcomes, order_outcomes = iter(outcomes), iter(lessons)
        results = []
        for delivery, translation in translations:
            if translation.parked is not None:
                results.append(DeliveryResult(delivery, DeliveryState.PARKED, translation.parked))
                continue
            mine = [next(change_outcomes) for _ in translation.changes]
            taught = [next(order_outcomes) for _ in translation.orders]
            errors = [str(o.error) for o in mine if o.status is OutcomeStatus.REJECTED]
            errors += [str(o.error) for o in taught if o.status is OutcomeStatus.REJECTED]
            if errors:
                # The rest of its changes are in; a retry after review re-applies only these.
                reason = "; ".join(errors)
                results.append(DeliveryResult(delivery, DeliveryState.PARKED, reason))
                continue
            _log_recorded(delivery, [*mine, *(c for o in taught for c in o.changes)])
            results.append(
                DeliveryResult(
                    delivery, DeliveryState.PROCESSED, observations=translation.observations
                )
            )
        return results


def _log_parked(result: DeliveryResult) -> None:
    delivery = result.delivery
    log.warning(
        "%s delivery %d (%s) parked for review: %s",
        delivery.channel_id,
        delivery.id,
        delivery.topic,
        result.reason,
        extra={"channel": delivery.channel_id, "delivery_id": delivery.id},
    )


def _log_recorded(delivery: Delivery, outcomes: Sequence[Outcome]) -> None:
    """A line per change the delivery recorded, with the ids that find it again: the channel,
    the delivery, the SKU and the ledger event's business key (`event_id`)."""
    for outcome in outcomes:
        if outcome.status is not OutcomeStatus.APPLIED:
            continue
        change = outcome.change
        log.info(
            "%s recorded %s of %d x %s at %s (delivery %d)",
            delivery.channel_id,
            change.kind,
            change.quantity,
            change.sku,
            change.location,
            delivery.id,
            extra={
                "channel": delivery.channel_id,
                "delivery_id": delivery.id,
                "sku": change.sku,
                "event_id": change.business_key,
            },
        )


def _skus_needed(translation: Translation) -> set[str]:
    """The SKUs the ledger must know before `translation` can be applied: anything but a
    receipt, count or adjustment on an unknown SKU waits until one of those introduces it."""
    needed = {c.sku for c in translation.changes if c.kind not in _INTRODUCING}
    for update in translation.orders:
        needed |= update.skus()
    return needed
