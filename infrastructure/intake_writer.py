"""Group commit for webhook intake: concurrent requests share one INSERT and one commit.

Each request hands its delivery to the writer and awaits the outcome. One task drains whatever
has queued since the last commit and writes it in one statement (its own transaction), so
throughput grows with concurrency instead of being one fsync per request; up to
`commits_in_flight` such commits overlap, each on a connection of its own, so requests queue for
the next commit while one is at the server instead of the event loop idling. The caller answers
2xx only after its row (or the earlier copy of it) is committed. Each batch is written in key
order, so two batches holding the same keys lock them in the same order and never deadlock.

A row the database refuses (too large to index, say) fails alone: its batch is written again row
by row, each under a savepoint, so its partners are stored. Channels give up after 5 s, so every
caller has its outcome within `answer_within` seconds: a commit is abandoned after
`commit_within` (a frozen server answers nothing, not even a statement timeout), the waiting list
is bounded, and the connections are the writer's own, opened again at the first commit after a
failure instead of after a pool's reconnect back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import psycopg

from infrastructure.inbox import STORE, IncomingDelivery, Stored, columns

log = logging.getLogger(__name__)

MAX_BATCH = 500
COMMITS_IN_FLIGHT = 2  # a commit at the server while the next batch gathers
MAX_WAITING = 2_000  # about four full commits: beyond that, a commit would not come in time
ANSWER_WITHIN = 2.5  # seconds a caller waits for its commit; Shopify's whole limit is 5
COMMIT_WITHIN = 2.0  # seconds one commit may take, connecting included
# Classes of SQLSTATE that say nothing about a row: the connection, the server or the
# transaction failed, and every row of the batch would fail alike.
_TRANSIENT_CLASSES = ("08", "53", "57", "40", "58", "XX")


class InboxUnavailable(Exception):
    """Raised when a delivery cannot be stored now (the database is down, frozen or too slow,
    or too many deliveries wait already): the caller answers 503 and the channel retries."""


class RowRefused(Exception):
    """Raised when the database refuses one delivery's row for what it holds: retrying the same
    row cannot succeed."""


AfterCommit = Callable[[Sequence[Stored]], None]
Waiter = tuple[IncomingDelivery, "asyncio.Future[Stored]"]


class GroupCommitWriter:
    def __init__(
        self,
        database_url: str,
        after_commit: AfterCommit | None = None,
        *,
        answer_within: float = ANSWER_WITHIN,
        commit_within: float = COMMIT_WITHIN,
        max_waiting: int = MAX_WAITING,
        commits_in_flight: int = COMMITS_IN_FLIGHT,
    ) -> None:
        self._database_url = database_url
        self._answer_within = answer_within
        self._commit_within = commit_within
        self._max_waiting = max_waiting
        self._idle: list[psycopg.AsyncConnection] = []  # open, between commits
        self._waiting: list[Waiter] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight = asyncio.Semaphore(commits_in_flight)
        self._commits: set[asyncio.Task[None]] = set()
        self._warming: asyncio.Task[None] | None = None
        self._abandoned: set[asyncio.Task[dict[tuple[str, str], int | BaseException]]] = set()
        self._after_commit = after_commit

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-group-commit")

    async def stop(self) -> None:
        for task in [self._task, self._warming, *self._commits, *self._abandoned]:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for conn in self._idle:
            await conn.close()

    async def store(self, delivery: IncomingDelivery) -> Stored:
        """Store durably.

        Raises:
            InboxUnavailable: not stored in time, or too many deliveries wait already.
            RowRefused: the database refuses this delivery's row.
        """
        if len(self._waiting) >= self._max_waiting:
            raise InboxUnavailable(f"{len(self._waiting)} deliveries wait for the inbox already")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._waiting.append((delivery, future))
        self._wake.set()
        # Failed on time: a commit not begun yet leaves it out, one under way sets no result
        # on it. (A timer on the future alone: asyncio.timeout's task cancellation cost a
        # tenth of the request's time.)
        late = loop.call_later(self._answer_within, _too_late, future, self._answer_within)
        try:
            return await future
        finally:
            late.cancel()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                await self._in_flight.acquire()
                await self._connection_or_commit_done()
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                live = [(delivery, future) for delivery, future in batch if not future.done()]
                if not live:
                    self._in_flight.release()
                    continue
                commit = asyncio.create_task(self._commit(live))
                self._commits.add(commit)
                commit.add_done_callback(self._committed)

    async def _connection_or_commit_done(self) -> None:
        """Wait, while commits are under way and no connection is idle, for one of them to
        end or for another connection to open beside them: a request's commit never waits on a
        connect (which, on a loaded server, may take longer than the commit may)."""
        if not self._commits or self._idle:
            return
        if self._warming is None or self._warming.done():
            self._warming = asyncio.create_task(self._warm())
        await asyncio.wait({*self._commits, self._warming}, return_when=asyncio.FIRST_COMPLETED)
        if self._commits and not self._idle:  # it did not open: a commit's own will free up
            await asyncio.wait(set(self._commits), return_when=asyncio.FIRST_COMPLETED)

    async def _warm(self) -> None:
        try:
            self._idle.append(await self._connect())
        except (psycopg.Error, OSError) as error:  # the commits under way go on alone
            log.info("no more inbox connection now: %s", error)

    def _committed(self, commit: asyncio.Task[None]) -> None:
        self._commits.discard(commit)
        self._in_flight.release()

    async def _commit(self, waiters: list[Waiter]) -> None:
        # Key order (stable: of copies of one key, the first to come is stored).
        batch = sorted(waiters, key=lambda w: (w[0].channel_id, w[0].delivery_key))
        deliveries = [delivery for delivery, _ in batch]
        try:
            outcomes = await self._within_deadline(deliveries)
        except Exception as error:  # every waiter gets the failure: its request answers 503
            log.warning("inbox commit of %d deliveries failed: %s", len(batch), error)
            unavailable = InboxUnavailable(" ".join(str(error).split()) or type(error).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(unavailable)
            return
        results = []
        for (_delivery, future), outcome in zip(
            batch, _outcomes(deliveries, outcomes), strict=True
        ):
            if isinstance(outcome, BaseException):
                if not future.done():
                    future.set_exception(outcome)
                continue
            results.append(outcome)
            if not future.done():
                future.set_result(outcome)
        if self._after_commit is not None:
            # Must not block: with Redis down, the next commit may not wait for this one's hint.
            self._after_commit([r for r in results if r.id is not None])

    async def _within_deadline(
        self, deliveries: list[IncomingDelivery]
    ) -> dict[tuple[str, str], int | BaseException]:
        """Insert in a task of its own, given up after `commit_within`: cancelling a query on a
        frozen server waits for the server too, so the task is left to end in the background
        with its connection, and the next commit opens a new one."""
        task = asyncio.create_task(self._insert(deliveries))
        done, _ = await asyncio.wait({task}, timeout=self._commit_within)
        if task in done:
            return task.result()
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)
        task.cancel()
        raise InboxUnavailable(f"the database did not commit within {self._commit_within} s")

    async def _connection(self) -> psycopg.AsyncConnection:
        """An idle connection of the writer's, or a new one: a commit holds it while it runs,
        gives it back when it succeeds and closes it when it fails."""
        while self._idle:
            conn = self._idle.pop()
            if not (conn.broken or conn.closed):
                return conn
        return await self._connect()

    async def _connect(self) -> psycopg.AsyncConnection:
        return await connect(self._database_url, self._commit_within)

    async def _insert(
        self, deliveries: list[IncomingDelivery]
    ) -> dict[tuple[str, str], int | BaseException]:
        conn = await self._connection()
        try:
            found = await self._insert_all(conn, deliveries)
        except BaseException:  # abandoned, or failed for all: the next commit connects anew
            await conn.close()
            raise
        self._idle.append(conn)
        return found

    async def _insert_all(
        self, conn: psycopg.AsyncConnection, deliveries: list[IncomingDelivery]
    ) -> dict[tuple[str, str], int | BaseException]:
        try:
            # One statement in autocommit: its own transaction, committed before the server
            # answers, in one round trip instead of BEGIN, INSERT and COMMIT's three.
            cursor = await conn.execute(STORE, columns(deliveries))
            rows = await cursor.fetchall()
            return {(channel_id, key): row_id for row_id, channel_id, key in rows}
        except psycopg.Error as error:
            if _transient(error) or conn.broken:
                raise
            log.warning("a row of %d deliveries was refused: %s", len(deliveries), error)
        return await self._insert_each(conn, deliveries)

    async def _insert_each(
        self, conn: psycopg.AsyncConnection, deliveries: list[IncomingDelivery]
    ) -> dict[tuple[str, str], int | BaseException]:
        """One savepoint per row: a refused row is that delivery's failure alone."""
        found: dict[tuple[str, str], int | BaseException] = {}
        async with conn.transaction():
            for delivery in deliveries:
                key = (delivery.channel_id, delivery.delivery_key)
                try:
                    async with conn.transaction():
                        cursor = await conn.execute(STORE, columns([delivery]))
                        row = await cursor.fetchone()
                except psycopg.Error as error:
                    if _transient(error) or conn.broken:
                        raise
                    found.setdefault(key, RowRefused(" ".join(str(error).split())))
                    continue
                if row is not None:
                    found[key] = row[0]
        return found


async def connect(database_url: str, commit_within: float) -> psycopg.AsyncConnection:
    """A connection for the inbox's commits: each statement its own transaction, answered
    within `commit_within` seconds by the server itself (locks, a slow disk), and committed
    durably whatever the database's or role's default: a 2xx promises the delivery is stored,
    and `synchronous_commit = off` would answer before the disk has it (a crash then loses the
    last deliveries the channel was told were stored). A stronger setting (`remote_apply`,
    waiting for a standby) is left as configured."""
    conn = await psycopg.AsyncConnection.connect(
        database_url,
        connect_timeout=max(2, int(commit_within)),
        autocommit=True,  # each batch is one statement (its savepoints: a transaction)
        options=f"-c statement_timeout={int(commit_within * 1000)}",
    )
    try:
        await conn.execute(
            "SELECT set_config('synchronous_commit', 'on', false) "
            "WHERE current_setting('synchronous_commit') = 'off'"
        )
    except BaseException:
        await conn.close()
        raise
    return conn


def _outcomes(
    deliveries: list[IncomingDelivery], found: dict[tuple[str, str], int | BaseException]
) -> list[Stored | BaseException]:
    outcomes: list[Stored | BaseException] = []
    for delivery in deliveries:
        # Within one batch the same key is inserted once: later copies are duplicates.
        row_id = found.pop((delivery.channel_id, delivery.delivery_key), None)
        if isinstance(row_id, BaseException):
            found[(delivery.channel_id, delivery.delivery_key)] = row_id  # refused for every copy
            outcomes.append(row_id)
        else:
            outcomes.append(Stored(row_id, delivery))
    return outcomes


def _too_late(future: asyncio.Future[Stored], seconds: float) -> None:
    if not future.done():
        future.set_exception(InboxUnavailable(f"the inbox did not commit within {seconds} s"))


def _transient(error: psycopg.Error) -> bool:
    state = error.sqlstate
    return state is None or state.startswith(_TRANSIENT_CLASSES)
