"""Retention: what is kept only for a while (webhook bodies, channel observations, resolved dead
letters, idempotency keys past their 24 h, eBay's offer lookups past their hour) is deleted once
older than its time, by each table's own owner."""

from __future__ import annotations

import logging

from infrastructure.config import RetentionConfig
from infrastructure.dead_letters import DeadLetters
from infrastructure.idempotency import IdempotencyStore
from infrastructure.inbox import PostgresInbox
from infrastructure.push.store import PushStore

log = logging.getLogger(__name__)


class Retention:
    def __init__(
        self,
        inbox: PostgresInbox,
        dead_letters: DeadLetters,
        config: RetentionConfig,
        idempotency: IdempotencyStore | None = None,
        offers: PushStore | None = None,
    ) -> None:
        self._inbox, self._dead_letters, self._config = inbox, dead_letters, config
        self._idempotency, self._offers = idempotency, offers

    def apply(self) -> dict[str, int]:
        """Delete what is past its time; returns how many rows of each kind went."""
        config = self._config
        deleted = self._inbox.prune(config.deliveries_days, config.observations_days)
        deleted["dead_letters"] = self._dead_letters.prune(config.dead_letters_days)
        if self._idempotency is not None:
            deleted["idempotency_keys"] = self._idempotency.purge_expired()
        if self._offers is not None:
            deleted["offer_lookups"] = self._offers.prune_offers()
        if any(deleted.values()):
            log.info("retention deleted %s", deleted)
        return deleted
