"""Group commit for webhook intake: concurrent requests share one INSERT and one commit.

Each request hands its delivery to the writer and awaits the outcome. One task drains whatever
has queued since the last commit and writes it in one transaction, so throughput grows with
concurrency instead of being one fsync per request. The caller answers 2xx only after its
row (or the earlier copy of it) is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

MAX_BATCH = 500


@dataclass(frozen=True)
class IncomingDelivery:
    channel_id: str
    delivery_key: str
    topic: str
    lane: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Stored:
    """`id` is the inbox row's id, or None when the same delivery was stored before."""

    id: int | None
    delivery: IncomingDelivery


AfterCommit = Callable[[Sequence[Stored]], None]


class GroupCommitWriter:
    def __init__(self, database_url: str, after_commit: AfterCommit | None = None) -> None:
        # A short wait for a connection: a channel gives up after 5 s in all, and a 503 in time
        # makes it retry, where a timeout may count against us.
        self._pool = AsyncConnectionPool(
            database_url, min_size=1, max_size=2, open=False, timeout=2
        )
        self._waiting: list[tuple[IncomingDelivery, asyncio.Future[Stored]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._after_commit = after_commit

    async def start(self) -> None:
        await self._pool.open(wait=False)
        self._task = asyncio.create_task(self._run(), name="inbox-group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with_suppressed = asyncio.gather(self._task, return_exceptions=True)
            await with_suppressed
        await self._pool.close()

    async def store(self, delivery: IncomingDelivery) -> Stored:
        """Store durably; raises the database's error if the commit failed."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[IncomingDelivery, asyncio.Future[Stored]]]) -> None:
        deliveries = [delivery for delivery, _ in batch]
        try:
            ids = await self._insert(deliveries)
        except Exception as error:  # every waiter gets the failure: its request answers 503
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        results = []
        for delivery in deliveries:
            # Within one batch the same key is inserted once: later copies are duplicates.
            row_id = ids.pop((delivery.channel_id, delivery.delivery_key), None)
            results.append(Stored(row_id, delivery))
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        if self._after_commit is not None:
            # Must not block: with Redis down, the next commit may not wait for this one's hint.
            self._after_commit([r for r in results if r.id is not None])

    async def _insert(self, deliveries: list[IncomingDelivery]) -> dict[tuple[str, str], int]:
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO inbox_deliveries "
                "(channel_id, delivery_key, topic, lane, headers, body) SELECT * FROM unnest("
                "%b::text[], %b::text[], %b::text[], %b::text[], %b::jsonb[], %b::bytea[]) "
                "ON CONFLICT (channel_id, delivery_key) DO NOTHING "
                "RETURNING id, channel_id, delivery_key",
                [
                    [d.channel_id for d in deliveries],
                    [d.delivery_key for d in deliveries],
                    [d.topic for d in deliveries],
                    [d.lane for d in deliveries],
                    [Jsonb(dict(d.headers)) for d in deliveries],
                    [d.body for d in deliveries],
                ],
            )
            rows = await cursor.fetchall()
        return {(channel_id, key): row_id for row_id, channel_id, key in rows}
