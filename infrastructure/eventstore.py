"""The ledger's event store: the library's PostgreSQL recorder plus a receipts table written in
the same transaction as the events, under the same table lock.

Its tables are created here, not by the versioned migrations (`infrastructure/migrations/`):
the `eventsourcing` library creates its events and snapshots tables, type and function with its
own DDL, named after the application, and the receipts table is named after the events table
and created with them (the library's recorder cases create both under other names)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, ProgrammingError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
    PostgresRecorder,
)
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from application.errors import StorageNotConfigured
from application.receipts import AuditFilter, HistoryFilter, Receipt
from domain.stock import ChangeKind

_COLUMNS = (
    "business_key, sku, item_id, kind, first_version, last_version, "
    "recorded_at, occurred_at, source, shortfall, location, reference, reason"
)


class LedgerRecorder(PostgresApplicationRecorder):
    """Stores events and, atomically with them, one receipt per applied business fact.

    The receipt's primary key is the business key: a fact recorded twice fails the whole
    transaction with an `IntegrityError`, so it can never count twice.

    It refuses the library's database insert function (`POSTGRES_ENABLE_DB_FUNCTIONS`, with or
    without the application's prefix): `insert_events` would then call that function instead
    of the insert below, writing no receipt (the same fact applied twice) under no table lock
    (readers tailing the log skip events committed late).
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        _refuse_db_functions(datastore)
        super().__init__(datastore, events_table_name=events_table_name)
        self.receipts_table = _fitting(events_table_name.removesuffix("_events") + "_receipts")
        self.sql_create_statements.extend(self._receipt_ddl())
        # The library's own insert, with binary array parameters instead of one array of a
        # composite type in text format: the text form escapes every field by regex and makes
        # the server parse hex, which was the largest per-event cost of a batch.
        self._insert_events_binary = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        self._select_page = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY notification_id"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        # The last byte of a uuid5 is as good as a hash, and costs nothing to compute.
        self._select_part = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id > %s AND notification_id <= %s AND "
            "(topic = ANY(%s) OR get_byte(uuid_send(originator_id), 15) %% %s = %s) "
            "ORDER BY notification_id"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # Checked on every insert too: the setting lives on the datastore, which others share.
        _refuse_db_functions(self.datastore)
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        return ids

    def read_notifications(
        self, after: int, upto: int, part: tuple[int, int, Sequence[str]] | None = None
    ) -> list[Notification]:
        """The notifications in positions (after, upto], in order: the library's
        `select_notifications` without its per-row dicts, in binary, for replays that read
        the whole log (rows as tuples cost half as much to fetch). Bounded on both sides and
        planned for the values at hand, a page is an index range scan; by LIMIT, PostgreSQL
        may sort everything after `after` for each page.

        With `part=(parts, k, topics)`, only the events of the aggregates in the k-th of
        `parts` partitions (by originator id), and every event of `topics`: what one of
        several processes replaying the log in parallel needs."""
        query, params = self._select_page, list[Any]([after, upto])
        if part is not None:
            parts, k, topics = part
            query, params = self._select_part, [after, upto, list(topics), parts, k]
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(binary=True, row_factory=tuple_row) as curs,
        ):
            curs.execute(query, params, prepare=False)
            return [
                Notification(
                    id=row[0],
                    originator_id=row[1],
                    originator_version=row[2],
                    topic=row[3],
                    state=row[4],
                )
                for row in curs.fetchall()
            ]

    def _sql(self, template: str) -> Composed:
        return SQL(template).format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.receipts_table)
        )

    def _receipt_ddl(self) -> list[Composed]:
        return [
            self._sql(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "business_key text PRIMARY KEY, sku text NOT NULL, item_id uuid NOT NULL, "
                "kind text NOT NULL, first_version bigint NOT NULL, "
                "last_version bigint NOT NULL, recorded_at timestamptz NOT NULL, "
                "occurred_at timestamptz NOT NULL, source text NOT NULL, "
                "shortfall integer NOT NULL DEFAULT 0, location text NOT NULL DEFAULT '', "
                "reference text NOT NULL DEFAULT '', reason text NOT NULL DEFAULT '')"
            ),
            # Databases migrated before these columns existed gain them.
            self._sql(
                "ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS "
                "location text NOT NULL DEFAULT ''"
            ),
            self._sql(
                "ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS "
                "reference text NOT NULL DEFAULT ''"
            ),
            self._sql(
                "ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS "
                "reason text NOT NULL DEFAULT ''"
            ),
            # Audits across SKUs go by time: a block-range index costs next to nothing to keep
            # on a table written in time order.
            self._index("recorded", "USING brin (recorded_at)"),
            self._index("item_version", "(item_id, last_version)"),
            self._index("oversells", "(recorded_at) WHERE shortfall > 0"),
            # An order's receipts and those under it (`<order>/...`): byte-wise order serves
            # both the exact reference and the prefix range, whatever the database's collation.
            self._index("reference", "(reference text_pattern_ops)"),
        ]

    def _index(self, name: str, definition: str) -> Composed:
        return SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} " + definition).format(
            index=Identifier(_fitting(f"{self.receipts_table}_{name}_idx")),
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.receipts_table),
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # After the events, under the table lock they take: every ledger writer queues on one
        # lock, so receipts of overlapping batches cannot deadlock. Last in the pipeline and
        # prepared from its first run: psycopg loses track of a statement it auto-prepares (on
        # its fifth run) behind a failed one in the same pipeline; an explicit prepare is
        # checked against the result and forgotten if the pipeline was aborted.
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self._insert_events_binary,
            [
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ],
            prepare=True,
        )
        receipts: Sequence[Receipt] = kwargs.get("receipts", ())
        if receipts:
            with curs.connection.cursor() as receipts_cursor:
                receipts_cursor.execute(
                    self._sql(
                        f"INSERT INTO {{schema}}.{{table}} ({_COLUMNS}) SELECT * FROM unnest("
                        # Binary parameters: text arrays would escape every string by regex.
                        "%b::text[], %b::text[], %b::uuid[], %b::text[], %b::bigint[], "
                        "%b::bigint[], %b::timestamptz[], %b::timestamptz[], %b::text[], "
                        "%b::int[], %b::text[], %b::text[], %b::text[])"
                    ),
                    [list(column) for column in zip(*(_row(r) for r in receipts), strict=True)],
                    prepare=True,
                )

    def _select(self, query: Composed, params: Sequence[Any]) -> list[Receipt]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, params)
            return [_receipt(row) for row in curs.fetchall()]

    def select_receipts(self, business_keys: Sequence[str]) -> dict[str, Receipt]:
        if not business_keys:
            return {}
        query = self._sql(
            f"SELECT {_COLUMNS} FROM {{schema}}.{{table}} WHERE business_key = ANY(%b)"
        )
        return {r.business_key: r for r in self._select(query, [list(business_keys)])}

    def version_at(self, item_id: UUID, at: datetime) -> int | None:
        # Walks the (item_id, last_version) index from the newest receipt back: recorded_at
        # grows with the version, so the first one at or before `at` is the answer. One index
        # fewer to maintain on every write, for a query operators run by hand.
        query = self._sql(
            "SELECT last_version AS version FROM {schema}.{table} "
            "WHERE item_id = %s AND recorded_at <= %s ORDER BY last_version DESC LIMIT 1"
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, [item_id, at])
            row = curs.fetchone()
        return None if row is None else row["version"]

    def select_history(self, item_id: UUID, history: HistoryFilter, limit: int) -> list[Receipt]:
        where: list[str] = ["item_id = %s"]
        params: list[Any] = [item_id]
        _kind_and_time(where, params, history.kinds, history.since, history.until)
        if history.cursor is not None:
            where.append("last_version < %s" if history.newest_first else "first_version > %s")
            params.append(history.cursor)
        order = "DESC" if history.newest_first else "ASC"
        query = self._sql(
            f"SELECT {_COLUMNS} FROM {{schema}}.{{table}} WHERE {' AND '.join(where)} "
            f"ORDER BY last_version {order} LIMIT %s"
        )
        return self._select(query, [*params, limit])

    def select_oversells(self, limit: int, before: datetime | None) -> list[Receipt]:
        query = self._sql(
            f"SELECT {_COLUMNS} FROM {{schema}}.{{table}} WHERE shortfall > 0 "
            "AND (%s::timestamptz IS NULL OR recorded_at < %s) "
            "ORDER BY recorded_at DESC LIMIT %s"
        )
        return self._select(query, [before, before, limit])

    def count_oversells(self, since: datetime | None = None) -> int:
        """How many recorded sales drove a SKU's available stock below zero, since `since` (or
        ever); a partial index holds exactly those."""
        query = self._sql(
            "SELECT count(*) FROM {schema}.{table} WHERE shortfall > 0 "
            "AND (%s::timestamptz IS NULL OR recorded_at >= %s)"
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(query, [since, since])
            row = curs.fetchone()
        return int(row[0]) if row else 0

    def recorded_after(self, position: int) -> datetime | None:
        """When the first event after ledger `position` that has a receipt was recorded; None
        when there is none (events of other aggregates, rule changes, carry no receipt)."""
        query = SQL(
            "SELECT r.recorded_at FROM {schema}.{events} e JOIN {schema}.{table} r "
            "ON r.item_id = e.originator_id AND r.last_version >= e.originator_version "
            "AND r.first_version <= e.originator_version "
            "WHERE e.notification_id > %s ORDER BY e.notification_id LIMIT 1"
        ).format(
            schema=Identifier(self.datastore.schema),
            events=Identifier(self.events_table_name),
            table=Identifier(self.receipts_table),
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(query, [position])
            row = curs.fetchone()
        return row[0] if row else None

    def select_audit(self, audit: AuditFilter, limit: int) -> list[Receipt]:
        return self._select(*self.audit_query(audit, limit))

    def audit_query(self, audit: AuditFilter, limit: int) -> tuple[Composed, list[Any]]:
        """The query `select_audit` runs, and its parameters."""
        where: list[str] = ["true"]
        params: list[Any] = []
        for column, value in (
            ("sku", audit.sku),
            ("source", audit.source),
            ("location", audit.location),
            ("reference", audit.reference),
        ):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        if audit.order is not None:
            # The order itself, or anything in the byte range of `<order>/`: "0" follows "/".
            order = audit.order.rstrip("/")
            where.append("(reference = %s OR (reference ~>=~ %s AND reference ~<~ %s))")
            params.extend([order, order + "/", order + "0"])
        _kind_and_time(where, params, audit.kinds, audit.since, audit.until)
        if audit.cursor is not None:
            where.append("(recorded_at, business_key) < (%s, %s)")
            params.extend(audit.cursor)
        query = self._sql(
            f"SELECT {_COLUMNS} FROM {{schema}}.{{table}} WHERE {' AND '.join(where)} "
            "ORDER BY recorded_at DESC, business_key DESC LIMIT %s"
        )
        return query, [*params, limit]

    def select_skus(self, contains: str, after: str | None, limit: int) -> list[str]:
        pattern = "%" + contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = self._sql(
            "SELECT DISTINCT sku FROM {schema}.{table} WHERE sku ILIKE %s "
            "AND (%s::text IS NULL OR sku > %s) ORDER BY sku LIMIT %s"
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, [pattern, after, after, limit])
            return [row["sku"] for row in curs.fetchall()]

    def select_existing_items(self, item_ids: Sequence[UUID]) -> set[UUID]:
        if not item_ids:
            return set()
        # Every item's stream starts at version 1: the primary key answers without a scan.
        query = SQL(
            "SELECT originator_id FROM {schema}.{table} "
            "WHERE originator_id = ANY(%b) AND originator_version = 1"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, [list(item_ids)])
            return {row["originator_id"] for row in curs.fetchall()}


class LedgerFactory(PostgresFactory):
    """`PERSISTENCE_MODULE` for the ledger: the library's PostgreSQL factory with our recorder."""

    application_recorder_class = LedgerRecorder


LEDGER_FACTORY_TOPIC = f"{LedgerFactory.__module__}:{LedgerFactory.__qualname__}"


def _fitting(identifier: str) -> str:
    """`identifier`, if PostgreSQL keeps it whole: it cuts longer names to 63 bytes without an
    error, and names cut alike collide (`CREATE INDEX IF NOT EXISTS` then creates nothing)."""
    if len(identifier.encode()) > PostgresRecorder.MAX_IDENTIFIER_LEN:
        raise ProgrammingError(f"Identifier too long: {identifier}")
    return identifier


def _refuse_db_functions(datastore: PostgresDatastore) -> None:
    if datastore.enable_db_functions:
        raise StorageNotConfigured(
            "the ledger refuses POSTGRES_ENABLE_DB_FUNCTIONS (also read as "
            "LEDGER_POSTGRES_ENABLE_DB_FUNCTIONS): the library's insert function skips the "
            "ledger's receipts and its table lock; unset it or set it to n"
        )


def _kind_and_time(
    where: list[str],
    params: list[Any],
    kinds: frozenset[ChangeKind],
    since: datetime | None,
    until: datetime | None,
) -> None:
    """The filters history and audit share: kinds, and recorded at or after `since`, before
    `until`."""
    if kinds:
        where.append("kind = ANY(%s)")
        params.append(sorted(k.value for k in kinds))
    if since is not None:
        where.append("recorded_at >= %s")
        params.append(since)
    if until is not None:
        where.append("recorded_at < %s")
        params.append(until)


def _row(r: Receipt) -> tuple[Any, ...]:
    return (
        r.business_key,
        r.sku,
        r.item_id,
        r.kind.value,
        r.first_version,
        r.last_version,
        r.recorded_at,
        r.occurred_at,
        r.source,
        r.shortfall,
        r.location,
        r.reference,
        r.reason,
    )


def _receipt(row: DictRow) -> Receipt:
    return Receipt(**{**row, "kind": ChangeKind(row["kind"])})
