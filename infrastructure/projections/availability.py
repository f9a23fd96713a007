"""The availability read model in PostgreSQL: levels per (SKU, location), sales per (SKU,
channel, day), the rules in force, available-to-sell per (SKU, channel); the quantities each
channel should now show go to the outbox (`infrastructure/outbox.py`), for the pushers.

Every table is qualified by the datastore's schema, so a rebuild can fill a copy in a schema of
its own while these serve, and then swap the copies in (see `rebuild.py`).

Each SKU keeps the sales velocities its ATS was last computed with, so the number the channels
are sent can be explained later from exactly its own inputs, whatever day it is by then.

Longer than 400 lines because this module is the one owner of the projection's five tables: the
live path, the rebuild's copy and the snapshot reads all write or read the same schema-qualified
layout, which split over modules would no longer be visible in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb

from application.availability import (
    VELOCITY_DAYS,
    AvailabilityFold,
    ChannelAvailability,
    Computation,
    RuleBook,
    RulesEvent,
    SkuState,
    explaining,
    levels_of,
    sales_rows,
)
from domain.allocation import Allocation, ChannelRule, allocate
from domain.inventory import InventoryItem
from domain.rules import ChannelRules
from infrastructure import outbox
from infrastructure.outbox import Announcement, PushState

NAME = "availability"
# The tables a rebuild recreates; the outbox is not among them: it is a queue of work for the
# pushers, and a rebuild adds to it what its swap changes.
TABLES = (
    "availability_skus",
    "availability_levels",
    "availability_sales",
    "availability_rules",
    "availability",
    "availability_tracking",
)
# Notified, with "<projection>:<position>", by every transaction that moves a projection.
PROJECTION_CHANNEL = "invsync_projections"
# Serialises the live runner's batches with a rebuild's swap (pg_advisory_xact_lock).
SWAP_LOCK = 0x1A7A_11AB


class AvailabilityView(PostgresTrackingRecorder):
    """The tables of the availability projection, and the two ways they are written: a batch
    folded into the rows it touches (the live runner), and a whole fold copied in (a rebuild)."""

    def __init__(
        self, datastore: PostgresDatastore, *, tracking_table_name: str = f"{NAME}_tracking"
    ) -> None:
        super().__init__(datastore, tracking_table_name=tracking_table_name)
        self.sql_create_statements.extend(
            self._sql(s)
            for s in (
                "CREATE TABLE IF NOT EXISTS {s}.availability_skus ("
                "item_id uuid PRIMARY KEY, sku text NOT NULL UNIQUE, "
                "version bigint NOT NULL DEFAULT 0, velocities jsonb NOT NULL DEFAULT '{{}}')",
                # Tables of an older layout gain the column; their SKUs' next events fill it.
                "ALTER TABLE {s}.availability_skus "
                "ADD COLUMN IF NOT EXISTS velocities jsonb NOT NULL DEFAULT '{{}}'",
                "CREATE TABLE IF NOT EXISTS {s}.availability_levels ("
                "sku text NOT NULL, location text NOT NULL, on_hand bigint NOT NULL, "
                "committed bigint NOT NULL, reserved bigint NOT NULL, "
                "unavailable bigint NOT NULL, PRIMARY KEY (sku, location))",
                "CREATE TABLE IF NOT EXISTS {s}.availability_sales ("
                "sku text NOT NULL, channel_id text NOT NULL, day date NOT NULL, "
                "units bigint NOT NULL, PRIMARY KEY (sku, channel_id, day))",
                "CREATE TABLE IF NOT EXISTS {s}.availability_rules ("
                "channel_id text NOT NULL, sku text NOT NULL, rules jsonb NOT NULL, "
                "PRIMARY KEY (channel_id, sku))",
                "CREATE TABLE IF NOT EXISTS {s}.availability ("
                "sku text NOT NULL, channel_id text NOT NULL, available_to_sell bigint NOT NULL, "
                "version bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (sku, channel_id))",
            )
        )

    def close(self) -> None:
        self.datastore.close()

    def _sql(self, statement: str) -> Composed:
        return SQL(statement).format(s=Identifier(self.datastore.schema))

    # The live path ------------------------------------------------------------------------

    def apply_batch(
        self,
        application_name: str,
        events: Sequence[tuple[int, Any]],
        defaults: Sequence[ChannelRule],
    ) -> int:
        """Fold `(notification id, event)` pairs into the rows they touch, with the tracking
        position, in one transaction. Events at or below the recorded position are skipped (a
        rebuild may have swapped in tables that are further on). Returns the position now."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT pg_advisory_xact_lock(%s)", [SWAP_LOCK])
            return self.fold_into(curs, application_name, events, defaults)

    def fold_into(
        self,
        curs: Cursor[DictRow],
        application_name: str,
        events: Sequence[tuple[int, Any]],
        defaults: Sequence[ChannelRule],
        *,
        announce: bool = True,
    ) -> int:
        """`apply_batch` within the caller's transaction; a rebuild catching up its copy does not
        `announce` to the outbox what the live tables have announced already."""
        done = self._max_tracking_id(application_name, curs) or 0
        fresh = [event for position, event in events if position > done]
        if not fresh:
            return done
        position = events[-1][0]
        fold = self._load(curs, fresh, defaults)
        before = self._current_ats(curs, fold.skus)
        fold.fold(fresh)
        # Each SKU's outbox row carries the position of its own last event, not the batch's:
        # pushers go in ledger order, and a batch holds many SKUs.
        last = {e.originator_id: p for p, e in events if p > done}
        positions = {sku: last.get(item_id, position) for item_id, sku in fold.names.items()}
        # The writes need no answer: sent in one go, they wait for the server once, not each.
        with curs.connection.pipeline():
            self._write_batch(
                curs,
                fold,
                events=fresh,
                before=before if announce else None,
                positions=positions,
                position=position,
            )
        # The tracking row is read back (RETURNING): after the pipeline, whose results of
        # thousands of rows it would otherwise be matched against now and then.
        self._insert_tracking(curs, Tracking(application_name, position))
        curs.execute("SELECT pg_notify(%s, %s)", [PROJECTION_CHANNEL, f"{NAME}:{position}"])
        return position

    def _load(
        self, curs: Cursor[DictRow], events: Sequence[Any], defaults: Sequence[ChannelRule]
    ) -> AvailabilityFold:
        """The state of the SKUs the events touch (every SKU, when a channel's rules change)."""
        fold = AvailabilityFold(self._rule_book(curs, defaults))
        everything = any(
            isinstance(e, ChannelRules.Changed) and fold.rules.channel_of(e) for e in events
        )
        item_ids = list({e.originator_id for e in events if isinstance(e, _ITEM_EVENTS)})
        named = [e.sku for e in events if isinstance(e, ChannelRules.SkuOverridden)]
        if everything:
            curs.execute(self._sql("SELECT item_id, sku, version FROM {s}.availability_skus"))
        else:
            curs.execute(
                self._sql(
                    "SELECT item_id, sku, version FROM {s}.availability_skus "
                    "WHERE item_id = ANY(%s) OR sku = ANY(%s)"
                ),
                [item_ids, named],
            )
        for row in curs.fetchall():
            fold.add(row["item_id"], SkuState(row["sku"], version=row["version"]))
        skus = list(fold.skus)
        curs.execute(
            self._sql(
                "SELECT sku, location, on_hand, committed, reserved, unavailable "
                "FROM {s}.availability_levels WHERE sku = ANY(%s)"
            ),
            [skus],
        )
        by_sku: dict[str, list[DictRow]] = {}
        for row in curs.fetchall():
            by_sku.setdefault(row["sku"], []).append(row)
        for sku, rows in by_sku.items():
            fold.skus[sku].levels = levels_of(rows)
        curs.execute(
            self._sql(
                "SELECT sku, channel_id, day, units FROM {s}.availability_sales "
                "WHERE sku = ANY(%s) AND day > %s"
            ),
            [skus, _earliest_day(events) - timedelta(days=VELOCITY_DAYS)],
        )
        for row in curs.fetchall():
            fold.sales[row["sku"]][row["channel_id"], row["day"]] = row["units"]
        return fold

    def _rule_book(self, curs: Cursor[DictRow], defaults: Sequence[ChannelRule]) -> RuleBook:
        curs.execute(self._sql("SELECT channel_id, sku, rules FROM {s}.availability_rules"))
        book = RuleBook(defaults)
        for row in curs.fetchall():
            if row["sku"]:
                book.overrides[row["channel_id"], row["sku"]] = row["rules"]
            else:
                book.recorded[row["channel_id"]] = row["rules"]
        return book

    def _current_ats(
        self, curs: Cursor[DictRow], skus: Iterable[str]
    ) -> dict[tuple[str, str], int]:
        curs.execute(
            self._sql(
                "SELECT sku, channel_id, available_to_sell FROM {s}.availability "
                "WHERE sku = ANY(%s)"
            ),
            [list(skus)],
        )
        return {(r["sku"], r["channel_id"]): r["available_to_sell"] for r in curs.fetchall()}

    def _write_batch(
        self,
        curs: Cursor[DictRow],
        fold: AvailabilityFold,
        *,
        events: Sequence[Any],
        before: dict[tuple[str, str], int] | None,
        positions: dict[str, int],
        position: int,
    ) -> None:
        created = [e for e in events if isinstance(e, InventoryItem.Created)]
        if created:
            curs.executemany(
                self._sql(
                    "INSERT INTO {s}.availability_skus (item_id, sku) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING"
                ),
                [(e.originator_id, e.sku) for e in created],
            )
        self._write_rules(curs, fold.rules, [e for e in events if isinstance(e, RulesEvent)])
        if fold.sales_changed:
            curs.executemany(
                self._sql(
                    "INSERT INTO {s}.availability_sales (sku, channel_id, day, units) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (sku, channel_id, day) "
                    "DO UPDATE SET units = EXCLUDED.units"
                ),
                [(*key, fold.sales[key[0]][key[1], key[2]]) for key in fold.sales_changed],
            )
        ats_rows, news = [], list[Announcement]()
        touched = list(fold.recomputed())
        computed = {state.sku: fold.computation(state) for state in touched}
        for state in touched:
            for channel_id, allocation in computed[state.sku].allocations.items():
                quantity = allocation.available_to_sell
                ats_rows.append((state.sku, channel_id, quantity, state.version))
                if before is not None and before.get((state.sku, channel_id)) != quantity:
                    at = positions.get(state.sku, position)
                    news.append(_announcement(state, channel_id, quantity, at))
        self._write_levels(curs, touched, computed)
        if ats_rows:
            curs.executemany(
                self._sql(
                    "INSERT INTO {s}.availability (sku, channel_id, available_to_sell, version) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (sku, channel_id) DO UPDATE SET "
                    "available_to_sell = EXCLUDED.available_to_sell, "
                    "version = EXCLUDED.version, updated_at = now()"
                ),
                ats_rows,
            )
        outbox.announce(curs, news)

    def _write_levels(
        self,
        curs: Cursor[DictRow],
        touched: Sequence[SkuState],
        computed: Mapping[str, Computation],
    ) -> None:
        levels = [(s.sku, loc, *units) for s in touched for loc, units in s.levels.items()]
        if levels:
            curs.executemany(
                self._sql(
                    "INSERT INTO {s}.availability_levels (sku, location, on_hand, committed, "
                    "reserved, unavailable) VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (sku, location) DO UPDATE SET on_hand = EXCLUDED.on_hand, "
                    "committed = EXCLUDED.committed, reserved = EXCLUDED.reserved, "
                    "unavailable = EXCLUDED.unavailable"
                ),
                levels,
            )
        if touched:
            curs.executemany(
                self._sql(
                    "UPDATE {s}.availability_skus SET version = %s, velocities = %s WHERE sku = %s"
                ),
                [(s.version, Jsonb(computed[s.sku].velocities), s.sku) for s in touched],
            )

    def _write_rules(
        self, curs: Cursor[DictRow], book: RuleBook, events: Sequence[RulesEvent]
    ) -> None:
        for event in events:
            channel_id = book.channel_of(event)
            if channel_id is None:
                continue
            sku = event.sku if isinstance(event, ChannelRules.SkuOverridden) else ""
            if event.rules:
                curs.execute(
                    self._sql(
                        "INSERT INTO {s}.availability_rules (channel_id, sku, rules) "
                        "VALUES (%s, %s, %s) ON CONFLICT (channel_id, sku) "
                        "DO UPDATE SET rules = EXCLUDED.rules"
                    ),
                    [channel_id, sku, Jsonb(event.rules)],
                )
            else:
                curs.execute(
                    self._sql(
                        "DELETE FROM {s}.availability_rules WHERE channel_id = %s AND sku = %s"
                    ),
                    [channel_id, sku],
                )

    # The rebuild path -----------------------------------------------------------------------

    def load_fold(self, application_name: str, fold: AvailabilityFold, position: int) -> None:
        """Copy a whole fold into these (empty) tables, at tracking `position`."""
        computed = {sku: fold.computation(state) for sku, state in fold.skus.items()}
        with self.datastore.transaction(commit=True) as curs:
            copies: list[tuple[str, Iterable[tuple[Any, ...]]]] = [
                (
                    "availability_skus (item_id, sku, version, velocities)",
                    (
                        (i, s, fold.skus[s].version, Jsonb(computed[s].velocities))
                        for i, s in fold.names.items()
                    ),
                ),
                (
                    "availability_levels (sku, location, on_hand, committed, reserved, "
                    "unavailable)",
                    (
                        (s.sku, location, *units)
                        for s in fold.skus.values()
                        for location, units in s.levels.items()
                    ),
                ),
                ("availability_sales (sku, channel_id, day, units)", sales_rows(fold)),
                (
                    "availability (sku, channel_id, available_to_sell, version)",
                    (
                        (s.sku, channel_id, allocation.available_to_sell, s.version)
                        for s in fold.skus.values()
                        for channel_id, allocation in computed[s.sku].allocations.items()
                    ),
                ),
            ]
            for table, rows in copies:
                with curs.copy(self._sql(f"COPY {{s}}.{table} FROM STDIN")) as copy:
                    for row in rows:
                        copy.write_row(row)
            rules = [(c, "", Jsonb(r)) for c, r in fold.rules.recorded.items()] + [
                (c, sku, Jsonb(r)) for (c, sku), r in fold.rules.overrides.items()
            ]
            if rules:
                curs.executemany(
                    self._sql(
                        "INSERT INTO {s}.availability_rules (channel_id, sku, rules) "
                        "VALUES (%s, %s, %s)"
                    ),
                    rules,
                )
            self._insert_tracking(curs, Tracking(application_name, position))

    # Queries -------------------------------------------------------------------------------

    def available_to_sell(self, sku: str) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                self._sql(
                    "SELECT channel_id, available_to_sell FROM {s}.availability WHERE sku = %s"
                ),
                [sku],
            )
            return {r["channel_id"]: r["available_to_sell"] for r in curs.fetchall()}

    def velocities(self, sku: str) -> dict[str, float]:
        """The sales velocity per channel the SKU's ATS was last computed with ({}: none)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                self._sql("SELECT velocities FROM {s}.availability_skus WHERE sku = %s"), [sku]
            )
            row = curs.fetchone()
        return dict(row["velocities"]) if row else {}

    def channels(self, sku: str, defaults: Sequence[ChannelRule]) -> dict[str, ChannelAvailability]:
        """Each channel's ATS of `sku` as stored and sent to the outbox, explained by `allocate`
        on the levels, rules and velocities it was computed from, all read in one snapshot;
        {} for a SKU the projection has not folded yet. `defaults` are the configured rules
        (those the projection runs with)."""
        with self.datastore.transaction(commit=False) as curs:
            # One snapshot: the batch that moved the numbers moved their inputs with them.
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            curs.execute(
                self._sql("SELECT version, velocities FROM {s}.availability_skus WHERE sku = %s"),
                [sku],
            )
            found = curs.fetchone()
            if found is None:
                return {}
            book = self._rule_book(curs, defaults)
            curs.execute(
                self._sql(
                    "SELECT location, on_hand, committed, reserved, unavailable "
                    "FROM {s}.availability_levels WHERE sku = %s"
                ),
                [sku],
            )
            state = SkuState(sku, levels_of(curs.fetchall()))
            curs.execute(
                self._sql(
                    "SELECT channel_id, available_to_sell, version FROM {s}.availability "
                    "WHERE sku = %s"
                ),
                [sku],
            )
            stored = {row["channel_id"]: row for row in curs.fetchall()}
            pushes = outbox.push_states(curs, list(stored), sku)
        steps = allocate(state.locations(), book.rules_for(sku), found["velocities"])
        return {
            channel_id: _channel(row, steps[channel_id], pushes.get(channel_id))
            for channel_id, row in stored.items()
            if channel_id in steps
        }


def _channel(
    stored: DictRow, allocation: Allocation, push: PushState | None
) -> ChannelAvailability:
    return ChannelAvailability(
        channel_id=stored["channel_id"],
        available_to_sell=stored["available_to_sell"],
        version=stored["version"],
        allocation=explaining(allocation, stored["available_to_sell"]),
        pending=bool(push and push.pending),
        pushed_version=push.pushed_version if push and push.pushed_version else None,
        acknowledged_quantity=push.acknowledged_quantity if push else None,
        acknowledged_at=push.acknowledged_at if push else None,
    )


def _announcement(state: SkuState, channel_id: str, quantity: int, position: int) -> Announcement:
    # Recomputed because an event touched it, the SKU knows when that event was recorded.
    assert state.changed_at is not None
    return Announcement(
        channel_id, state.sku, quantity, state.version, position, state.changed_at, state.kind
    )


_ITEM_EVENTS = (InventoryItem.Created, InventoryItem.StockEvent)


def _earliest_day(events: Sequence[Any]) -> date:
    days = [
        e.occurred_at.date() if isinstance(e, InventoryItem.StockEvent) else e.timestamp.date()
        for e in events
    ]
    return min(days)


def folded(conn: Connection[Any], application: str) -> int:
    """The ledger position the live projection has folded up to (0: none yet)."""
    row = conn.execute(
        f"SELECT max(notification_id) FROM {NAME}_tracking WHERE application_name = %s",
        [application],
    ).fetchone()
    return int(row[0] or 0) if row else 0
