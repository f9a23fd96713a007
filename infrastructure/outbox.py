"""The outbox (`availability_outbox`, created by migration 0001): per (channel, SKU), the quantity
the channel should show, and what it last acknowledged of our pushes. The only module that
writes or reads the table.

The projection announces new quantities in its own transaction (`announce`); the pushers read
what is pending and acknowledge what the channels took (`PushStore`); intake asks whether what a
channel reports is the echo of our own push (`acknowledged_quantities`). A row is pending while
its `position` (the ledger position of the change) is past `pushed_position`.

Writers lock rows in key order (channel, SKU), the projection and the pushers alike: two writers
locking the same rows in different orders deadlock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import tuple_row

from infrastructure.push.decisions import Drift


@dataclass(frozen=True)
class Announcement:
    """The projection's news for the pushers: the channel should now show `quantity` of the
    SKU, as of the SKU's ledger `version` and `position`, changed at `changed_at` by a change
    of `kind` (which the consistency window is counted under)."""

    channel_id: str
    sku: str
    quantity: int
    version: int
    position: int
    changed_at: datetime
    kind: str


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
        # Not `astuple`: it deep-copies every field, some 30 µs a row on the pushers' path.
        return (
            self.sku,
            self.quantity,
            self.version,
            self.position,
            self.kind,
            self.first_changed_at,
            self.acknowledged_quantity,
            self.acknowledged_at,
            self.pushed_version,
        )


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


@dataclass(frozen=True)
class PushState:
    """Where the pushes of one (channel, SKU) stand, as the availability API explains it."""

    channel_id: str
    pending: bool
    pushed_version: int
    acknowledged_quantity: int | None
    acknowledged_at: datetime | None


def announce(curs: Cursor[Any], announcements: Sequence[Announcement]) -> None:
    """The newest quantity per (channel, SKU) replaces any not pushed yet; `first_changed_at`
    keeps the oldest change not pushed yet, from which the consistency window of the push that
    carries it is measured."""
    if announcements:
        # In key order, as the pushers acknowledge: two writers locking the same rows in
        # different orders deadlock.
        ordered = sorted(announcements, key=lambda a: (a.channel_id, a.sku))
        curs.executemany(
            "INSERT INTO availability_outbox AS o (channel_id, sku, quantity, version, "
            "position, changed_at, kind, first_changed_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (channel_id, sku) DO UPDATE "
            "SET quantity = EXCLUDED.quantity, version = EXCLUDED.version, "
            "position = EXCLUDED.position, changed_at = EXCLUDED.changed_at, "
            "kind = EXCLUDED.kind, first_changed_at = CASE WHEN o.position > "
            "o.pushed_position THEN o.first_changed_at ELSE EXCLUDED.changed_at END",
            [_announced(a) for a in ordered],
        )


def _announced(a: Announcement) -> tuple[object, ...]:
    # Not `astuple`: it deep-copies every field, some 30 µs a row on the projection's path.
    return (
        a.channel_id,
        a.sku,
        a.quantity,
        a.version,
        a.position,
        a.changed_at,
        a.kind,
        a.changed_at,
    )


def forget_everything(conn: Connection[Any]) -> None:
    """Empty the outbox: the projection's tables are refilled from the ledger, and announce
    every quantity again, to be pushed afresh."""
    conn.execute("DELETE FROM availability_outbox")


# The pushers' reads ------------------------------------------------------------------------

# With each row, the channel's drift (`push_drift`) and, for rows with losses, its units sold
# since the drift's day (`availability_sales`); rows whose SKU waits in a submission are left
# out. One query: one index scan of the pending rows, however many SKUs have drifted.
_PENDING = (
    "SELECT o.sku, quantity, version, position, kind, first_changed_at, "
    "acknowledged_quantity, acknowledged_at, pushed_version, "
    "CASE WHEN d.lost > 0 "
    "THEN (SELECT coalesce(sum(a.units), 0) FROM availability_sales a "
    "WHERE a.sku = o.sku AND a.channel_id = o.channel_id AND a.day >= f.day) END, "
    "f.day, d.lost, d.sold, extract(epoch FROM d.since), d.guesses "
    "FROM availability_outbox o LEFT JOIN push_drift d "
    "ON d.channel_id = o.channel_id AND d.sku = o.sku "
    "CROSS JOIN LATERAL (SELECT coalesce(d.day, current_date - 1) AS day) f "
    "WHERE o.channel_id = %s AND position > pushed_position AND NOT EXISTS ("
    "SELECT FROM push_submissions s WHERE s.channel_id = o.channel_id "
    "AND s.sku = o.sku) ORDER BY position LIMIT %s"
)


def pending(conn: Connection[Any], channel_id: str, limit: int) -> list[Pending]:
    """The channel's oldest pending rows, in ledger order, each with the channel's units sold
    of its SKU as the ledger has recorded them, and its drift (`Shown`) if any."""
    rows = conn.execute(_PENDING, [channel_id, limit]).fetchall()
    return [_pending(*row) for row in rows]


def _pending(*row: Any) -> Pending:
    sold, sold_from, lost, was, since, guesses = row[9:]
    drift = None if lost is None else Drift(int(lost), int(was), float(since), guesses)
    fields: list[Any] = [*row[:9], None if sold is None else int(sold), sold_from, drift]
    return Pending(*fields)


def waiting(conn: Connection[Any], channel_ids: Sequence[str]) -> list[str]:
    """The channels among `channel_ids` with any pending row: one index probe each, however
    long a down channel's backlog has grown (`backlog` counts it all)."""
    rows = conn.execute(
        "SELECT c FROM unnest(%s::text[]) AS c WHERE EXISTS (SELECT FROM "
        "availability_outbox o WHERE o.channel_id = c AND o.position > o.pushed_position)",
        [list(channel_ids)],
    ).fetchall()
    return [channel_id for (channel_id,) in rows]


def backlog(conn: Connection[Any]) -> dict[str, tuple[int, datetime | None]]:
    """Per channel with pending rows: how many, and the oldest change among them."""
    rows = conn.execute(
        "SELECT channel_id, count(*), min(first_changed_at) FROM availability_outbox "
        "WHERE position > pushed_position GROUP BY channel_id"
    ).fetchall()
    return {channel_id: (count, oldest) for channel_id, count, oldest in rows}


@dataclass(frozen=True)
class Pushed:
    """Where the pushes of one (channel, SKU) stand, as reconciliation judges a reading by:
    the quantity the ledger wants shown, what the channel last acknowledged and when, and
    whether a newer push is in flight (pending, or waiting in a submission)."""

    sku: str
    quantity: int
    acknowledged_quantity: int | None
    acknowledged_at: datetime | None
    in_flight: bool


def pushed(conn: Connection[Any], channel_id: str, skus: Sequence[str]) -> dict[str, Pushed]:
    """Where the pushes of each of `skus` to the channel stand (absent: never announced)."""
    with conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            "SELECT o.sku, o.quantity, o.acknowledged_quantity, o.acknowledged_at, "
            "o.position > o.pushed_position OR EXISTS (SELECT FROM push_submissions s "
            "WHERE s.channel_id = o.channel_id AND s.sku = o.sku) "
            "FROM availability_outbox o WHERE o.channel_id = %s AND o.sku = ANY(%s)",
            [channel_id, list(skus)],
        ).fetchall()
    return {row[0]: Pushed(*row) for row in rows}


def push_again(curs: Cursor[Any], channel_id: str, sku: str, shown: int) -> bool:
    """Make a settled row pending again, its compare-and-set base what the channel `shown`
    (reconciliation sets the channel back to the ledger's quantity); False when a push is in
    flight already (it carries the ledger's quantity anyway)."""
    curs.execute(
        "UPDATE availability_outbox SET pushed_position = position - 1, "
        "acknowledged_quantity = %s, acknowledged_at = now(), first_changed_at = now() "
        "WHERE channel_id = %s AND sku = %s AND position = pushed_position",
        [shown, channel_id, sku],
    )
    return curs.rowcount == 1


def channel_shows(curs: Cursor[Any], channel_id: str, sku: str, shown: int) -> None:
    """The channel shows `shown` (a person accepted its quantity): the base of the next
    compare-and-set, the row left as it is."""
    curs.execute(
        "UPDATE availability_outbox SET acknowledged_quantity = %s, acknowledged_at = now() "
        "WHERE channel_id = %s AND sku = %s",
        [shown, channel_id, sku],
    )


def active_skus(conn: Connection[Any], channel_id: str, days: float = 7.0) -> list[str]:
    """The channel's SKUs whose quantity changed (a sale, a receipt, a rule) in the last
    `days`: those reconciliation reads more often than the whole catalogue."""
    rows = conn.execute(
        "SELECT sku FROM availability_outbox WHERE channel_id = %s "
        "AND changed_at > now() - make_interval(secs => %s) ORDER BY sku",
        [channel_id, days * 86400],
    ).fetchall()
    return [sku for (sku,) in rows]


def held(conn: Connection[Any], channel_id: str) -> int:
    """The channel's pending rows whose SKU has losses counted in `push_drift`."""
    row = conn.execute(
        "SELECT count(*) FROM push_drift d JOIN availability_outbox o "
        "ON o.channel_id = d.channel_id AND o.sku = d.sku "
        "WHERE d.channel_id = %s AND d.lost > 0 AND o.position > o.pushed_position",
        [channel_id],
    ).fetchone()
    return int(row[0]) if row else 0


# The pushers' writes -----------------------------------------------------------------------


def acknowledge(
    curs: Cursor[Any],
    channel_id: str,
    acknowledged: Sequence[Acknowledged],
    answered_at: datetime,
) -> None:
    """Mark the rows the channel answered for as pushed, with what it now shows; a row changed
    again meanwhile (a newer position) stays pending."""
    ordered = sorted(acknowledged, key=lambda a: a.pending.sku)
    curs.executemany(
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
            for a in ordered
        ],
    )


def shown(
    curs: Cursor[Any], channel_id: str, shown: Sequence[Shown], answered_at: datetime
) -> None:
    """Keep what the channel shows of SKUs (the base of the next compare-and-set); the rows
    stay pending."""
    ordered = sorted(shown, key=lambda s: s.sku)
    curs.executemany(
        "UPDATE availability_outbox SET acknowledged_quantity = %s, acknowledged_at = %s "
        "WHERE channel_id = %s AND sku = %s",
        [(s.channel_quantity, answered_at, channel_id, s.sku) for s in ordered],
    )


# Others' reads -----------------------------------------------------------------------------


def acknowledged_quantities(
    curs: Cursor[Any], keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """The echo lookup: what each `(channel, SKU)` of `keys` last acknowledged of our pushes
    (absent: nothing yet)."""
    if not keys:
        return {}
    channels, skus = zip(*keys, strict=True)
    with curs.connection.cursor(row_factory=tuple_row) as reader:
        rows = reader.execute(
            "SELECT o.channel_id, o.sku, o.acknowledged_quantity FROM availability_outbox o "
            "JOIN unnest(%s::text[], %s::text[]) AS k(channel_id, sku) "
            "ON o.channel_id = k.channel_id AND o.sku = k.sku "
            "WHERE o.acknowledged_quantity IS NOT NULL",
            [list(channels), list(skus)],
        ).fetchall()
    return {(channel_id, sku): quantity for channel_id, sku, quantity in rows}


def push_states(curs: Cursor[Any], channel_ids: Sequence[str], sku: str) -> dict[str, PushState]:
    """Where the pushes of `sku` to each of `channel_ids` stand, read in `curs`'s transaction."""
    with curs.connection.cursor(row_factory=tuple_row) as reader:
        rows = reader.execute(
            "SELECT channel_id, position > pushed_position, pushed_version, "
            "acknowledged_quantity, acknowledged_at FROM availability_outbox "
            "WHERE channel_id = ANY(%s) AND sku = %s",
            [list(channel_ids), sku],
        ).fetchall()
    return {row[0]: PushState(*row) for row in rows}
