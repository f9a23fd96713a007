"""The pushers' side of the outbox: what is pending per channel, in ledger order, and the
record of what each channel acknowledged and how long after the change it did."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from application.availability import VELOCITY_DAYS
from domain.inventory import inventory_item_id
from infrastructure.postgres import open_pool
from infrastructure.push.decisions import Drift

DDL = (
    # One row per acknowledged push of a (channel, SKU): the consistency window of the changes it
    # carried. Kept for `WINDOW_KEPT`; read back as percentiles per channel and kind.
    """CREATE TABLE IF NOT EXISTS push_windows (
        channel_id text NOT NULL,
        kind text NOT NULL,
        seconds double precision NOT NULL,
        acknowledged_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS push_windows_by_time ON push_windows USING brin (acknowledged_at)",
    # Pushes the channel took for processing later (an Amazon feed), one per SKU at most: the
    # outbox row as it was sent, kept until the channel answers for it. A SKU in here is not
    # pushed again meanwhile, so an older quantity never lands after a newer one.
    """CREATE TABLE IF NOT EXISTS push_submissions (
        channel_id text NOT NULL,
        sku text NOT NULL,
        ticket text NOT NULL,
        ordinal integer NOT NULL,
        quantity bigint NOT NULL,
        version bigint NOT NULL,
        position bigint NOT NULL,
        kind text NOT NULL,
        first_changed_at timestamptz NOT NULL,
        acknowledged_quantity bigint,
        acknowledged_at timestamptz,
        pushed_version bigint NOT NULL,
        submitted_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (channel_id, sku))""",
    # Pushes a channel refused, by the code it gave (CHANGE_FROM_QUANTITY_STALE, ...): kept for
    # `WINDOW_KEPT` and counted beside the consistency windows, which only accepted pushes close.
    """CREATE TABLE IF NOT EXISTS push_refusals (
        channel_id text NOT NULL,
        sku text NOT NULL,
        code text NOT NULL,
        refused_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS push_refusals_by_time ON push_refusals USING brin (refused_at)",
    # Units a channel lost on its own (its shoppers' sales, seen in compare-and-set refusals)
    # since the ledger held `sold` of its units sold of the SKU and none was unrecorded: no push
    # raises the channel over the ones still unrecorded (`decisions.py`). `since`: the last loss.
    # `sold` counts the sales of days from `day` on: older days add the same to both sides of
    # a comparison, and reading them all for every pending row cost 24 ms per 1,000 rows.
    """CREATE TABLE IF NOT EXISTS push_drift (
        channel_id text NOT NULL,
        sku text NOT NULL,
        lost bigint NOT NULL,
        sold bigint NOT NULL,
        day date NOT NULL,
        since timestamptz NOT NULL,
        guesses boolean NOT NULL DEFAULT true,
        PRIMARY KEY (channel_id, sku))""",
)
WINDOW_KEPT = timedelta(hours=1)


def create_push_tables(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in DDL:
            conn.execute(statement)


@dataclass(frozen=True)
class Pending:
    """An outbox row not pushed yet."""

    sku: str
    quantity: int
    version: int
    position: int
    kind: str
    first_changed_at: datetime
    acknowledged_quantity: int | None
    acknowledged_at: datetime | None  # of the push before
    pushed_version: int  # the SKU's ledger version the push before carried
    # The channel's units sold of the SKU on days from `sold_from` on, as the ledger has them
    # (None: not read; `pending` reads it for rows with losses unrecorded, `sold` for others).
    sold: int | None = None
    sold_from: date | None = None
    drift: Drift | None = None  # what the channel lost on its own (`sold` counted alike)

    def row(self) -> tuple[object, ...]:
        """The outbox row's own fields (what a submission keeps)."""
        return astuple(self)[:9]


@dataclass(frozen=True)
class Submission:
    """Pushes a channel took under one ticket, in the order they were sent."""

    ticket: str
    pending: list[Pending]
    submitted_at: datetime


@dataclass(frozen=True)
class Acknowledged:
    """The channel answered `pending`: it now shows `channel_quantity` (None: it lists no such
    SKU, or refused it); `applied`: it took our quantity."""

    pending: Pending
    channel_quantity: int | None
    applied: bool = True


@dataclass(frozen=True)
class Shown:
    """The channel shows `channel_quantity` of `pending`'s SKU, maybe not the quantity pending
    for it (it refused our push, or took only part of a raise): the row stays as it is, and
    `drift` (None: as before) counts what the channel lost on its own."""

    pending: Pending
    channel_quantity: int
    drift: Drift | None

    @property
    def sku(self) -> str:
        return self.pending.sku


class PushStore:
    def __init__(
        self, database_url: str, *, max_size: int = 4, statement_timeout_ms: int | None = None
    ) -> None:
        self._pool = open_pool(database_url, max_size, statement_timeout_ms)

    def close(self) -> None:
        self._pool.close()

    def pending(self, channel_id: str, limit: int) -> list[Pending]:
        """The channel's oldest pending rows, in ledger order, each with the channel's units sold
        of its SKU as the ledger has recorded them, and its drift (`Shown`) if any."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT o.sku, quantity, version, position, kind, first_changed_at, "
                "acknowledged_quantity, acknowledged_at, pushed_version, "
                "d.lost, d.sold, extract(epoch FROM d.since), d.guesses, f.day, "
                "CASE WHEN d.lost > 0 "
                "THEN (SELECT coalesce(sum(a.units), 0) FROM availability_sales a "
                "WHERE a.sku = o.sku AND a.channel_id = o.channel_id AND a.day >= f.day) END "
                "FROM availability_outbox o LEFT JOIN push_drift d "
                "ON d.channel_id = o.channel_id AND d.sku = o.sku "
                "CROSS JOIN LATERAL (SELECT coalesce(d.day, current_date - 1) AS day) f "
                "WHERE o.channel_id = %s AND position > pushed_position AND NOT EXISTS ("
                "SELECT FROM push_submissions s WHERE s.channel_id = o.channel_id "
                "AND s.sku = o.sku) ORDER BY position LIMIT %s",
                [channel_id, limit],
            ).fetchall()
        return [
            Pending(
                sku,
                quantity,
                version,
                position,
                kind,
                first_changed_at,
                acknowledged_quantity,
                acknowledged_at,
                pushed_version,
                None if sold is None else int(sold),
                sold_from,
                None if lost is None else Drift(int(lost), int(was), float(since), guesses),
            )
            for (
                sku,
                quantity,
                version,
                position,
                kind,
                first_changed_at,
                acknowledged_quantity,
                acknowledged_at,
                pushed_version,
                lost,
                was,
                since,
                guesses,
                sold_from,
                sold,
            ) in rows
        ]

    def submit(self, channel_id: str, ticket: str, pending: Sequence[Pending]) -> None:
        """Keep what the channel took under `ticket` until it answers for it."""
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO push_submissions (channel_id, ticket, ordinal, sku, quantity, "
                "version, position, kind, first_changed_at, acknowledged_quantity, "
                "acknowledged_at, pushed_version) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(channel_id, ticket, n, *p.row()) for n, p in enumerate(pending)],
            )

    def submissions(self, channel_id: str) -> list[Submission]:
        """The channel's open submissions, oldest first."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT ticket, sku, quantity, version, position, kind, first_changed_at, "
                "acknowledged_quantity, acknowledged_at, pushed_version, submitted_at "
                "FROM push_submissions WHERE channel_id = %s "
                "ORDER BY submitted_at, ticket, ordinal",
                [channel_id],
            ).fetchall()
        tickets: dict[str, Submission] = {}
        for ticket, *row, submitted_at in rows:
            submission = tickets.setdefault(ticket, Submission(ticket, [], submitted_at))
            submission.pending.append(Pending(*row))
        return list(tickets.values())

    def forget_submission(self, channel_id: str, ticket: str) -> None:
        """The channel answered for `ticket` (or never will): its SKUs may go again."""
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM push_submissions WHERE channel_id = %s AND ticket = %s",
                [channel_id, ticket],
            )

    def waiting(self, channel_ids: Sequence[str]) -> list[str]:
        """The channels among `channel_ids` with any pending row: one index probe each,
        however long a down channel's backlog has grown (`backlog` counts it all)."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT c FROM unnest(%s::text[]) AS c WHERE EXISTS (SELECT FROM "
                "availability_outbox o WHERE o.channel_id = c AND o.position > o.pushed_position)",
                [list(channel_ids)],
            ).fetchall()
        return [channel_id for (channel_id,) in rows]

    def backlog(self) -> dict[str, tuple[int, datetime | None]]:
        """Per channel with pending rows: how many, and the oldest change among them."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT channel_id, count(*), min(first_changed_at) FROM availability_outbox "
                "WHERE position > pushed_position GROUP BY channel_id"
            ).fetchall()
        return {channel_id: (count, oldest) for channel_id, count, oldest in rows}

    def acknowledge(
        self, channel_id: str, acknowledged: Sequence[Acknowledged], answered_at: datetime
    ) -> list[tuple[str, float]]:
        """Record what the channel took, answering at `answered_at`. A row changed again
        meanwhile stays pending.

        Returns, and keeps, the consistency window of every ledger event whose result an
        applied push carried: from when the event was recorded to the channel's answer, per
        kind of event.
        Events that did not change what the channel should show (recorded before the row's
        first change since the last push) had their result on the channel already, and are not
        counted. A push that carried no new event (a rule change, a rebuild's correction)
        counts once, from its change."""
        if not acknowledged:
            return []
        # In key order, as the projection writes the outbox: no deadlock between the two.
        acknowledged = sorted(acknowledged, key=lambda a: a.pending.sku)
        applied = [a.pending for a in acknowledged if a.applied]
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE availability_outbox SET pushed_position = %s, pushed_version = %s, "
                "acknowledged_quantity = %s, acknowledged_at = %s "
                "WHERE channel_id = %s AND sku = %s AND pushed_position < %s",
                [
                    (
                        a.pending.position,
                        a.pending.version,
                        a.channel_quantity,
                        answered_at,
                        channel_id,
                        a.pending.sku,
                        a.pending.position,
                    )
                    for a in acknowledged
                ],
            )
            carried = [p for p in applied if p.version > p.pushed_version]
            uncarried = [p for p in applied if p.version <= p.pushed_version]
            cur.execute(
                "INSERT INTO push_windows (channel_id, kind, seconds, acknowledged_at) "
                "SELECT %(channel)s, r.kind, extract(epoch FROM %(answered)s - r.recorded_at), "
                "%(answered)s FROM unnest(%(items)s::uuid[], %(after)s::bigint[], "
                "%(upto)s::bigint[], %(since)s::timestamptz[]) "
                "AS a(item_id, after, upto, since) JOIN ledger_receipts r "
                "ON r.item_id = a.item_id AND r.last_version > a.after "
                "AND r.last_version <= a.upto AND r.recorded_at >= a.since "
                "UNION ALL SELECT %(channel)s, k, extract(epoch FROM %(answered)s - t), "
                "%(answered)s FROM unnest(%(kinds)s::text[], %(changed)s::timestamptz[]) "
                "AS c(k, t) RETURNING kind, seconds",
                {
                    "channel": channel_id,
                    "answered": answered_at,
                    "items": [inventory_item_id(p.sku) for p in carried],
                    "after": [p.pushed_version for p in carried],
                    "upto": [p.version for p in carried],
                    "since": [p.first_changed_at for p in carried],
                    "kinds": [p.kind for p in uncarried],
                    "changed": [p.first_changed_at for p in uncarried],
                },
            )
            return [(kind, seconds) for kind, seconds in cur.fetchall()]

    def shown(self, channel_id: str, shown: Sequence[Shown], answered_at: datetime) -> None:
        """Record what the channel shows of SKUs (see `Shown`): the base of the next push's
        compare-and-set, and the drift that bounds it."""
        if not shown:
            return
        shown = sorted(shown, key=lambda s: s.sku)  # key order, as the projection writes
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE availability_outbox SET acknowledged_quantity = %s, acknowledged_at = %s "
                "WHERE channel_id = %s AND sku = %s",
                [(s.channel_quantity, answered_at, channel_id, s.sku) for s in shown],
            )
            self._drift(cur, channel_id, [(s.pending, s.drift) for s in shown])

    def sold(self, channel_id: str, rows: Sequence[Pending]) -> list[Pending]:
        """`rows` with the channel's units sold of their SKUs read (see `Pending.sold`)."""
        if not rows:
            return []
        with self._pool.connection() as conn:
            found: dict[str, int] = dict(
                conn.execute(
                    "SELECT u.sku, coalesce(sum(a.units), 0) FROM unnest(%s::text[], %s::date[]) "
                    "AS u(sku, day) LEFT JOIN availability_sales a ON a.sku = u.sku "
                    "AND a.channel_id = %s AND a.day >= u.day GROUP BY u.sku",
                    [[p.sku for p in rows], [p.sold_from for p in rows], channel_id],
                ).fetchall()
            )
        return [replace(p, sold=int(found.get(p.sku, 0))) for p in rows]

    def drifts(self, channel_id: str, drifts: Sequence[tuple[Pending, Drift]]) -> None:
        """Keep the drift of each pending row's SKU (see `Shown`)."""
        if drifts:
            with self._pool.connection() as conn, conn.cursor() as cur:
                self._drift(cur, channel_id, drifts)

    @staticmethod
    def _drift(
        cur: psycopg.Cursor[Any],
        channel_id: str,
        drifts: Sequence[tuple[Pending, Drift | None]],
    ) -> None:
        """Losses are kept as counted, against the sales of the days the row's count read; a
        count with no loss starts again from yesterday's sales, as recorded now (sales recorded
        since the push only make later counts high, never low)."""
        kept = sorted(((p.sku, p, d) for p, d in drifts if d is not None), key=lambda k: k[0])
        cur.executemany(
            "INSERT INTO push_drift (channel_id, sku, lost, sold, day, since, guesses) "
            "VALUES (%s, %s, %s, %s, %s, to_timestamp(%s), %s) ON CONFLICT (channel_id, sku) "
            "DO UPDATE SET lost = EXCLUDED.lost, sold = EXCLUDED.sold, day = EXCLUDED.day, "
            "since = EXCLUDED.since, guesses = EXCLUDED.guesses",
            [
                (channel_id, sku, d.lost, d.sold, p.sold_from, d.at, d.guesses)
                for sku, p, d in kept
                if d.lost and p.sold_from is not None
            ],
        )
        cur.executemany(
            "INSERT INTO push_drift (channel_id, sku, lost, sold, day, since, guesses) "
            "SELECT %(channel)s, %(sku)s, 0, coalesce(sum(units), 0), current_date - 1, "
            "to_timestamp(%(at)s), %(guesses)s FROM availability_sales "
            "WHERE channel_id = %(channel)s AND sku = %(sku)s AND day >= current_date - 1 "
            "ON CONFLICT (channel_id, sku) DO UPDATE SET lost = 0, sold = EXCLUDED.sold, "
            "day = EXCLUDED.day, since = EXCLUDED.since, guesses = EXCLUDED.guesses",
            [
                {"channel": channel_id, "sku": sku, "at": d.at, "guesses": d.guesses}
                for sku, p, d in kept
                if not d.lost or p.sold_from is None
            ],
        )

    def refused(self, channel_id: str, refusals: Sequence[tuple[str, str]]) -> None:
        """Count `(sku, code)` refusals of the channel's."""
        if refusals:
            with self._pool.connection() as conn, conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO push_refusals (channel_id, sku, code) VALUES (%s, %s, %s)",
                    [(channel_id, sku, code) for sku, code in refusals],
                )

    def refusals(self, channel_id: str) -> dict[str, dict[str, Any]]:
        """Refused pushes of the last hour per code: how many, and the last one's time."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT code, count(*), max(refused_at) FROM push_refusals "
                "WHERE channel_id = %s AND refused_at > now() - %s GROUP BY code",
                [channel_id, WINDOW_KEPT],
            ).fetchall()
        return {code: {"refusals": n, "last_at": last.isoformat()} for code, n, last in rows}

    def held(self, channel_id: str) -> int:
        """SKUs pending while the channel has losses counted (its own sales, maybe unrecorded):
        a raise of theirs goes only as far as those allow."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM push_drift d JOIN availability_outbox o "
                "ON o.channel_id = d.channel_id AND o.sku = d.sku "
                "WHERE d.channel_id = %s AND d.lost > 0 AND o.position > o.pushed_position",
                [channel_id],
            ).fetchone()
        return int(row[0]) if row else 0

    def observe(self, channel_id: str, seen: Sequence[tuple[str, int]], reference: str) -> None:
        """Record quantities the channel was seen to show, for reconciliation."""
        if seen:
            with self._pool.connection() as conn, conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO channel_observations (channel_id, sku, location, quantity, "
                    "observed_at, reference) VALUES (%s, %s, '', %s, now(), %s)",
                    [(channel_id, sku, quantity, reference) for sku, quantity in seen],
                )

    def remember_listings(self, channel_id: str, refs: Sequence[tuple[str, str]]) -> None:
        """File the channel's own `(item ref, sku)` names, so its observations find our SKUs."""
        if refs:
            with self._pool.connection() as conn, conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO channel_listings (channel_id, item_ref, sku) VALUES (%s, %s, %s) "
                    "ON CONFLICT (channel_id, item_ref) DO UPDATE SET sku = EXCLUDED.sku",
                    [(channel_id, ref, sku) for ref, sku in refs],
                )

    def windows(self, channel_id: str) -> dict[str, dict[str, float]]:
        """Consistency windows of the last hour per kind of change: count, p50, p99 (seconds)."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT kind, count(*) AS pushes, "
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50, "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds) AS p99 "
                "FROM push_windows WHERE channel_id = %s AND acknowledged_at > now() - %s "
                "GROUP BY kind",
                [channel_id, WINDOW_KEPT],
            )
            return {r.pop("kind"): r for r in cur.fetchall()}

    def forget_old_windows(self) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM push_windows WHERE acknowledged_at < now() - %s", [WINDOW_KEPT]
            )
            conn.execute("DELETE FROM push_refusals WHERE refused_at < now() - %s", [WINDOW_KEPT])
            # A count that old is waited out: the next refusal starts afresh anyway.
            conn.execute("DELETE FROM push_drift WHERE since < now() - %s", [WINDOW_KEPT])

    def hot_skus(self, share: float = 0.2) -> set[str]:
        """The SKUs in the top `share` by units sold over the velocity window (all channels)."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "WITH sold AS (SELECT sku, sum(units) AS units FROM availability_sales "
                "WHERE day > current_date - %s GROUP BY sku HAVING sum(units) > 0) "
                "SELECT sku FROM sold ORDER BY units DESC "
                "LIMIT ceil((SELECT count(*) FROM sold) * %s)",
                [VELOCITY_DAYS, share],
            ).fetchall()
        return {sku for (sku,) in rows}
