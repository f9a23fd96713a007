"""The pushers' storage: one pool, and per call the owner module of each table it touches (the
outbox, `windows`, `submissions`, `refusals`, `drift`, the observations, the offers on file), so
that what one push records it records in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from infrastructure import channel_offers, observations, outbox
from infrastructure.channels.offer_file import Lookup
from infrastructure.outbox import Acknowledged, Pending, Shown
from infrastructure.postgres import open_pool
from infrastructure.projections import sales
from infrastructure.push import drift, refusals, submissions, windows
from infrastructure.push.decisions import Drift
from infrastructure.push.submissions import Submission

__all__ = ["Acknowledged", "Pending", "PushStore", "Shown", "Submission"]


class PushStore:
    def __init__(
        self, database_url: str, *, max_size: int = 4, statement_timeout_ms: int | None = None
    ) -> None:
        self._pool = open_pool(database_url, max_size, statement_timeout_ms)

    def close(self) -> None:
        self._pool.close()

    def pending(self, channel_id: str, limit: int) -> list[Pending]:
        """See `outbox.pending`."""
        with self._pool.connection() as conn:
            return outbox.pending(conn, channel_id, limit)

    def waiting(self, channel_ids: Sequence[str]) -> list[str]:
        """See `outbox.waiting`."""
        with self._pool.connection() as conn:
            return outbox.waiting(conn, channel_ids)

    def backlog(self) -> dict[str, tuple[int, datetime | None]]:
        """See `outbox.backlog`."""
        with self._pool.connection() as conn:
            return outbox.backlog(conn)

    def held(self, channel_id: str) -> int:
        """SKUs pending while the channel has losses counted (its own sales, maybe unrecorded):
        a raise of theirs goes only as far as those allow."""
        with self._pool.connection() as conn:
            return outbox.held(conn, channel_id)

    def acknowledge(
        self,
        channel_id: str,
        acknowledged: Sequence[Acknowledged],
        answered_at: datetime,
        drifts: Sequence[tuple[Pending, Drift]] = (),
    ) -> list[tuple[str, float]]:
        """Record what the channel took, answering at `answered_at` (`outbox.acknowledge`), and
        the drifts those answers started again (`drift.keep`), in one transaction; return and
        keep the consistency windows of the changes applied pushes carried (`windows.record`)."""
        if not acknowledged and not drifts:
            return []
        applied = [a.pending for a in acknowledged if a.applied]
        # One commit, not one per table: a drain's next read waits for it. Only this channel's
        # drain writes its drifts, and the outbox rows are locked in SKU order as the
        # projection locks them, so the longer transaction deadlocks with neither.
        with self._pool.connection() as conn, conn.cursor() as curs:
            outbox.acknowledge(curs, channel_id, acknowledged, answered_at)
            kept = windows.record(curs, channel_id, applied, answered_at) if acknowledged else []
            drift.keep(curs, channel_id, drifts)
            return kept

    def shown(self, channel_id: str, shown: Sequence[Shown], answered_at: datetime) -> None:
        """Record what the channel shows of SKUs (see `Shown`): the base of the next push's
        compare-and-set, and the drift that bounds it."""
        if shown:
            with self._pool.connection() as conn, conn.cursor() as curs:
                outbox.shown(curs, channel_id, shown, answered_at)
                drift.keep(curs, channel_id, [(s.pending, s.drift) for s in shown])

    def sold(self, channel_id: str, rows: Sequence[Pending]) -> list[Pending]:
        """`rows` with the channel's units sold of their SKUs read (see `Pending.sold`)."""
        if not rows:
            return []
        with self._pool.connection() as conn:
            found = sales.units_sold_since(conn, channel_id, [(p.sku, p.sold_from) for p in rows])
        return [replace(p, sold=found.get(p.sku, 0)) for p in rows]

    def submit(self, channel_id: str, ticket: str, pending: Sequence[Pending]) -> None:
        """See `submissions.submit`."""
        with self._pool.connection() as conn:
            submissions.submit(conn, channel_id, ticket, pending)

    def submissions(self, channel_id: str) -> list[Submission]:
        """See `submissions.open_submissions`."""
        with self._pool.connection() as conn:
            return submissions.open_submissions(conn, channel_id)

    def forget_submission(self, channel_id: str, ticket: str) -> None:
        """See `submissions.forget`."""
        with self._pool.connection() as conn:
            submissions.forget(conn, channel_id, ticket)

    def refused(self, channel_id: str, refused: Sequence[tuple[str, str]]) -> None:
        """Count `(sku, code)` refusals of the channel's."""
        if refused:
            with self._pool.connection() as conn:
                refusals.record(conn, channel_id, refused)

    def refusals(self, channel_id: str) -> dict[str, dict[str, Any]]:
        """See `refusals.counts`."""
        with self._pool.connection() as conn:
            return refusals.counts(conn, channel_id)

    def windows(self, channel_id: str) -> dict[str, dict[str, float]]:
        """See `windows.summary`."""
        with self._pool.connection() as conn:
            return windows.summary(conn, channel_id)

    def forget_old_windows(self) -> None:
        """Forget windows, refusals and drift counts older than `windows.WINDOW_KEPT`."""
        with self._pool.connection() as conn:
            windows.forget_old(conn)
            refusals.forget_old(conn)
            drift.forget_old(conn)

    def observe(self, channel_id: str, seen: Sequence[tuple[str, int]], reference: str) -> None:
        """Record quantities the channel was seen to show, for reconciliation."""
        if seen:
            with self._pool.connection() as conn:
                observations.shown_on_refusal(conn, channel_id, seen, reference)

    def remember_listings(self, channel_id: str, refs: Sequence[tuple[str, str]]) -> None:
        """See `observations.remember_listings`."""
        if refs:
            with self._pool.connection() as conn:
                observations.remember_listings(conn, channel_id, refs)

    def filed_offers(self, channel_id: str, skus: Sequence[str]) -> dict[str, Lookup]:
        """See `channel_offers.filed`: the gateways' `OfferFile`."""
        if not skus:
            return {}
        with self._pool.connection() as conn:
            return channel_offers.filed(conn, channel_id, skus)

    def file_offers(self, channel_id: str, found: Mapping[str, Lookup]) -> None:
        """See `channel_offers.file`."""
        if found:
            with self._pool.connection() as conn:
                channel_offers.file(conn, channel_id, found)

    def forget_offers(self, channel_id: str, skus: Sequence[str]) -> None:
        """See `channel_offers.forget`."""
        if skus:
            with self._pool.connection() as conn:
                channel_offers.forget(conn, channel_id, skus)

    def prune_offers(self) -> int:
        """See `channel_offers.prune`."""
        with self._pool.connection() as conn:
            return channel_offers.prune(conn)

    def velocities(self) -> dict[str, float]:
        """See `sales.velocities`."""
        with self._pool.connection() as conn:
            return sales.velocities(conn)
