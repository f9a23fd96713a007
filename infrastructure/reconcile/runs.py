"""Reconciliation runs (`reconcile_runs`, created by migration 0002): the only module that writes
or reads the table.

A run is asked for by `request_check` (the API, the CLI, a trigger such as a stale
compare-and-set) or made for a schedule's slot (`schedule`: one row per slot however many
schedulers ask). Its steps (`application.reconcile_plan.plan`) are worked one message each: a
worker `claim`s the run's next step under a lease, then `advance`s it with what the step counted,
only if the run is still at that step, so a message delivered twice counts once. A catalogue is
read a page a step: each page's step records where the next starts (`page_cursor`) and adds
the step that reads it. A run whose
message was lost, or whose worker died (its lease over), is handed out again by `to_send`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row

from application.reconcile_plan import Due, Scope, What, covering, plan
from infrastructure.postgres import open_pool

# A worker is presumed dead once its lease on a run is over; a working worker renews it every
# third of it (`renew`), however long its step takes (a catalogue read at the rate limit).
LEASE_SECONDS = 30.0
# A queued run is sent again when no worker claimed it this long after its last send.
RESEND_SECONDS = 30.0
# A step that fails this many times fails its run (Dramatiq retries it in between).
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Counts:
    """What steps found: orders listed and stored anew, SKUs read, drift corrected or
    escalated."""

    orders_found: int = 0
    orders_applied: int = 0
    skus_read: int = 0
    corrected: int = 0
    escalated: int = 0


@dataclass(frozen=True)
class Run:
    """A run as its row stands. `step` is the next step to work, of `steps`."""

    id: int
    channel_id: str
    what: What
    scope: Scope
    skus: list[str] | None
    state: str
    step: int
    steps: int
    attempts: int
    orders_found: int
    orders_applied: int
    skus_read: int
    corrected: int
    escalated: int
    requested_at: datetime
    requested_by: str
    due_key: str | None  # a scheduled run's slot
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    page_cursor: str | None  # where its catalogue's next page starts (None: the first)

    @property
    def counts(self) -> Counts:
        return Counts(*(getattr(self, f.name) for f in fields(Counts)))


@dataclass(frozen=True)
class LevelStep:
    """What a run's level step reads: the levels of `skus`, or (None) the page of the catalogue
    at `cursor`; `last` when no planned step follows it (its readings are judged before it
    ends, unless the catalogue has a next page); `judging` when it is the last step sent again
    once its page was read, to judge the readings that have settled since."""

    run_id: int
    skus: tuple[str, ...] | None
    cursor: str | None
    last: bool
    judging: bool = False  # its page was read: only judge the run's readings once settled


@dataclass(frozen=True)
class Stepped:
    """What a step counted, and where the catalogue's next page starts (None: no next page);
    `settling`: seconds until the readings of the run's last page have settled, when the step
    is sent again to judge them (None: the step is done)."""

    counts: Counts = Counts()
    next_page: str | None = None
    settling: float | None = None


_COLUMNS = ", ".join(f.name for f in fields(Run))
_COUNTS = [f.name for f in fields(Counts)]


def request_check(
    conn: Connection[Any],
    channel_id: str,
    skus: Sequence[str] | None,
    *,
    what: What = "levels",
    by: str = "",
) -> int:
    """Ask for a run of `what` over `skus` of the channel (None: every SKU it lists); returns
    its id. A request of a channel's SKUs joins the run of the same `what` asked for and not
    started yet, so a burst of triggers makes one run."""
    if skus is not None:
        joined = _join_queued(conn, channel_id, what, list(skus))
        if joined is not None:
            return joined
    return _insert(conn, channel_id, what, skus, by)


def _join_queued(conn: Connection[Any], channel_id: str, what: What, skus: list[str]) -> int | None:
    row = conn.execute(
        "SELECT id, skus FROM reconcile_runs WHERE channel_id = %s AND what = %s "
        "AND scope = 'requested' AND state = 'queued' AND skus IS NOT NULL "
        "ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED",
        [channel_id, what],
    ).fetchone()
    if row is None:
        return None
    run_id, queued = row
    merged = sorted({*queued, *skus})
    conn.execute(
        "UPDATE reconcile_runs SET skus = %s, steps = %s WHERE id = %s AND state = 'queued'",
        [merged, len(plan(what, merged)), run_id],
    )
    return int(run_id)


def _insert(
    conn: Connection[Any], channel_id: str, what: What, skus: Sequence[str] | None, by: str
) -> int:
    listed = None if skus is None else sorted(set(skus))
    row = conn.execute(
        "INSERT INTO reconcile_runs (channel_id, what, scope, skus, steps, requested_by) "
        "VALUES (%s, %s, 'requested', %s, %s, %s) RETURNING id",
        [channel_id, what, listed, len(plan(what, listed)), by],
    ).fetchone()
    assert row is not None
    return int(row[0])


def schedule(
    conn: Connection[Any], channel_id: str, due: Due, skus: Sequence[str] | None
) -> int | None:
    """Make the run of a schedule's slot (`due`), unless the slot has its run already or a run
    `covering` it is still open; returns the new run's id, None when none was made. Safe
    beside other schedulers."""
    listed = None if skus is None else sorted(set(skus))
    row = conn.execute(
        "INSERT INTO reconcile_runs (channel_id, what, scope, skus, steps, due_key, sent_at) "
        "SELECT %(channel)s, %(what)s, %(scope)s, %(skus)s, %(steps)s, %(key)s, now() "
        "WHERE NOT EXISTS (SELECT 1 FROM reconcile_runs WHERE channel_id = %(channel)s "
        "AND scope = ANY(%(covering)s) AND state IN ('queued', 'running')) "
        "ON CONFLICT (channel_id, due_key) DO NOTHING RETURNING id",
        {"channel": channel_id, "what": due.what, "scope": due.scope, "skus": listed,
         "steps": len(plan(due.what, listed)), "key": due.key,
         "covering": list(covering(due.scope))},
    ).fetchone()  # fmt: skip
    return None if row is None else int(row[0])


def claim(
    conn: Connection[Any], run_id: int, step: int, lease: float = LEASE_SECONDS
) -> Run | None:
    """Take the run's `step` for `lease` seconds; None when the run is past that step, finished,
    or another worker's lease on it is not over."""
    with conn.cursor(row_factory=class_row(Run)) as curs:
        return curs.execute(
            "UPDATE reconcile_runs SET state = 'running', "
            "claimed_until = now() + make_interval(secs => %s), "
            "started_at = coalesce(started_at, now()) "
            "WHERE id = %s AND step = %s AND state IN ('queued', 'running') "
            f"AND (claimed_until IS NULL OR claimed_until < now()) RETURNING {_COLUMNS}",
            [lease, run_id, step],
        ).fetchone()


def renew(conn: Connection[Any], run_id: int, step: int, lease: float = LEASE_SECONDS) -> bool:
    """Extend the lease on the run's `step` by `lease` seconds from now; False when the run
    moved on or failed meanwhile."""
    return bool(
        conn.execute(
            "UPDATE reconcile_runs SET claimed_until = now() + make_interval(secs => %s) "
            "WHERE id = %s AND step = %s AND state = 'running'",
            [lease, run_id, step],
        ).rowcount
    )


def advance(
    conn: Connection[Any], run_id: int, step: int, counts: Counts, next_page: str | None = None
) -> Run | None:
    """Add what `step` counted and move the run to its next step (done after its last), freeing
    its lease; a `next_page` of the catalogue adds a step to read it. None when the run was no
    longer at `step` (the step was counted already)."""
    added = ", ".join(f"{name} = {name} + %({name})s" for name in _COUNTS)
    with conn.cursor(row_factory=class_row(Run)) as curs:
        return curs.execute(
            f"UPDATE reconcile_runs SET {added}, step = step + 1, attempts = 0, "
            "claimed_until = NULL, sent_at = now(), error = NULL, "
            "steps = steps + %(more)s, page_cursor = coalesce(%(page)s, page_cursor), "
            "state = CASE WHEN step + 1 >= steps + %(more)s THEN 'done' ELSE 'running' END, "
            "finished_at = CASE WHEN step + 1 >= steps + %(more)s THEN now() END "
            f"WHERE id = %(id)s AND step = %(step)s AND state = 'running' RETURNING {_COLUMNS}",
            {**_counted(counts), "id": run_id, "step": step, "page": next_page,
             "more": int(next_page is not None)},
        ).fetchone()  # fmt: skip


def add_counts(conn: Connection[Any], run_id: int, counts: Counts) -> None:
    """Add `counts` to the run's, in the caller's transaction (the one that judged them)."""
    added = ", ".join(f"{name} = {name} + %({name})s" for name in _COUNTS)
    conn.execute(
        f"UPDATE reconcile_runs SET {added} WHERE id = %(id)s", {**_counted(counts), "id": run_id}
    )


def _counted(counts: Counts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in _COUNTS}


def failed(conn: Connection[Any], run_id: int, step: int, error: str) -> bool:
    """Record that `step` failed and free its lease for the retry; after `MAX_ATTEMPTS` the run
    fails. True when it did (nothing retries it any more)."""
    row = conn.execute(
        "UPDATE reconcile_runs SET attempts = attempts + 1, error = %s, claimed_until = NULL, "
        "state = CASE WHEN attempts + 1 >= %s THEN 'failed' ELSE state END, "
        "finished_at = CASE WHEN attempts + 1 >= %s THEN now() END "
        "WHERE id = %s AND step = %s AND state = 'running' RETURNING state",
        [error[:2000], MAX_ATTEMPTS, MAX_ATTEMPTS, run_id, step],
    ).fetchone()
    return row is not None and row[0] == "failed"


def wait(conn: Connection[Any], run_id: int, step: int, seconds: float, why: str | None) -> bool:
    """Hold the run's `step` for `seconds`, spending none of its attempts: the channel asked
    for the wait (`actors.step_wait`, `why` recorded as the run's error), or its last readings
    settle (`why` None). Its lease lasts the wait, so no worker claims the step and `to_send`
    hands it out only once the wait is over; False when the run moved on."""
    return bool(
        conn.execute(
            "UPDATE reconcile_runs SET claimed_until = now() + make_interval(secs => %s), "
            "sent_at = now(), error = %s WHERE id = %s AND step = %s AND state = 'running'",
            [seconds, why and why[:2000], run_id, step],
        ).rowcount
    )


def to_send(
    conn: Connection[Any], channel_ids: Sequence[str], resend_after: float = RESEND_SECONDS
) -> list[tuple[int, int]]:
    """`(run id, step)` of the channels' open runs nobody works on: not sent for
    `resend_after` seconds and not leased (never claimed, or their worker's lease is over).
    Marks them sent, so of several processes asking at once one re-sends each."""
    rows = conn.execute(
        "UPDATE reconcile_runs SET sent_at = now() WHERE id IN (SELECT id FROM reconcile_runs "
        "WHERE state IN ('queued', 'running') AND channel_id = ANY(%s) "
        "AND (claimed_until IS NULL OR claimed_until < now()) "
        "AND (sent_at IS NULL OR sent_at < now() - make_interval(secs => %s)) "
        "FOR UPDATE SKIP LOCKED) RETURNING id, step",
        [list(channel_ids), resend_after],
    ).fetchall()
    return [(int(run_id), int(step)) for run_id, step in rows]


def get(conn: Connection[Any], run_id: int) -> Run | None:
    with conn.cursor(row_factory=class_row(Run)) as curs:
        return curs.execute(
            f"SELECT {_COLUMNS} FROM reconcile_runs WHERE id = %s", [run_id]
        ).fetchone()


def latest(conn: Connection[Any], channel_id: str, limit: int = 20) -> list[Run]:
    """The channel's newest runs, newest first."""
    with conn.cursor(row_factory=class_row(Run)) as curs:
        return curs.execute(
            f"SELECT {_COLUMNS} FROM reconcile_runs WHERE channel_id = %s "
            "ORDER BY id DESC LIMIT %s",
            [channel_id, limit],
        ).fetchall()


def open_runs(conn: Connection[Any]) -> dict[str, int]:
    """How many runs are queued or running, per channel."""
    rows = conn.execute(
        "SELECT channel_id, count(*) FROM reconcile_runs "
        "WHERE state IN ('queued', 'running') GROUP BY channel_id"
    ).fetchall()
    return {channel_id: int(count) for channel_id, count in rows}


class RunStore:
    """The functions above on a pool of their own, each in a transaction."""

    def __init__(
        self, database_url: str, max_size: int = 4, *, statement_timeout_ms: int | None = None
    ) -> None:
        self._pool = open_pool(database_url, max_size, statement_timeout_ms)

    def close(self) -> None:
        self._pool.close()

    def connection(self) -> Any:
        """A pooled connection, in a transaction committed when the block ends."""
        return self._pool.connection()
