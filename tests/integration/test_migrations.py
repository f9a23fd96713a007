"""Versioned migrations on real PostgreSQL: a database the release before them (441b73b) created
upgrades keeping its rows, to the schema of a fresh database; migrating again changes nothing;
two processes migrating one database at once both succeed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from interfaces.composition import migrate
from tests.helpers import empty_database, migrated_database

OLD_DUMP = Path(__file__).parent.parent / "fixtures" / "release_441b73b.sql"

# A few rows in every table of the old schema, as that release wrote them (beside the two its
# migration wrote, in the dump).
OLD_ROWS = (
    "INSERT INTO inbox_deliveries (channel_id, delivery_key, topic, headers, body, lane, "
    "waiting_for) VALUES ('shop', 'd-1', 'orders/create', '{}', '\\x7b7d', 'shop', '{SKU-1}')",
    "INSERT INTO channel_observations (channel_id, sku, location, quantity, observed_at, "
    "reference, echo) VALUES ('shop', 'SKU-1', 'main', 3, now(), 'webhook:1', true)",
    "INSERT INTO channel_listings VALUES ('shop', 'gid://shopify/InventoryItem/1', 'SKU-1')",
    "INSERT INTO dead_letters (message_id, queue_name, actor_name, message, error) "
    "VALUES ('m-1', 'intake', 'process', '{}', 'boom')",
    "INSERT INTO api_idempotency (owner, key, request_hash, status, body, claim) "
    "VALUES ('erp', 'k-1', 'h', 201, '{}', gen_random_uuid())",
    "INSERT INTO reservations (id, sku, location, quantity, created_at, confirmed) "
    "VALUES ('r-1', 'SKU-1', 'main', 2, now(), false)",
    "INSERT INTO availability_outbox (channel_id, sku, quantity, version, position, changed_at, "
    "kind, first_changed_at, pushed_position, pushed_version, acknowledged_quantity, "
    "acknowledged_at) VALUES ('shop', 'SKU-1', 5, 3, 7, now(), 'sale', now(), 6, 2, 6, now())",
    "INSERT INTO push_windows (channel_id, kind, seconds) VALUES ('shop', 'sale', 0.5)",
    "INSERT INTO push_submissions (channel_id, sku, ticket, ordinal, quantity, version, "
    "position, kind, first_changed_at, pushed_version) "
    "VALUES ('amazon', 'SKU-1', 'feed-1', 0, 5, 3, 7, 'sale', now(), 2)",
    "INSERT INTO push_refusals (channel_id, sku, code) VALUES ('shop', 'SKU-1', 'STALE')",
    "INSERT INTO push_drift VALUES ('shop', 'SKU-1', 1, 4, current_date, now(), true)",
    "INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
    "VALUES ('7a1b4c9e-0000-5000-8000-000000000001', 1, 'domain.inventory:InventoryItem.Created', "
    "'\\x7b7d')",
    "INSERT INTO ledger_snapshots VALUES ('7a1b4c9e-0000-5000-8000-000000000001', 1, "
    "'domain.inventory:InventoryItem', '\\x7b7d')",
    "INSERT INTO ledger_receipts (business_key, sku, item_id, kind, first_version, last_version, "
    "recorded_at, occurred_at, source, location, reference, reason) VALUES ('shop:order:1', "
    "'SKU-1', '7a1b4c9e-0000-5000-8000-000000000001', 'sale', 1, 1, now(), now(), 'shop', "
    "'main', 'order:1', 'sold')",
    "INSERT INTO availability_skus VALUES ('7a1b4c9e-0000-5000-8000-000000000001', 'SKU-1', 1, "
    "'{\"shop\": 0.5}')",
    "INSERT INTO availability_levels VALUES ('SKU-1', 'main', 10, 1, 2, 0)",
    "INSERT INTO availability_sales VALUES ('SKU-1', 'shop', current_date, 1)",
    "INSERT INTO availability_rules VALUES ('shop', '', '{\"buffer\": 1}')",
    "INSERT INTO availability VALUES ('SKU-1', 'shop', 5, 1, now())",
    "INSERT INTO availability_tracking VALUES ('Ledger', 1)",
)


def _load_old_release(url: str) -> None:
    # psql's meta-commands (\restrict) are no SQL; the dump's own SETs (an empty search_path)
    # stay on its connection.
    dump = "\n".join(
        line for line in OLD_DUMP.read_text().splitlines() if not line.startswith("\\")
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(dump.encode())
    with psycopg.connect(url) as conn:
        for statement in OLD_ROWS:
            conn.execute(statement.encode())


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()
    return [name for (name,) in rows]


def _contents(url: str) -> dict[str, list[str]]:
    """Every row of every table, as text, in order."""
    with psycopg.connect(url) as conn:
        return {
            table: [
                row
                for (row,) in conn.execute(
                    f'SELECT t::text FROM "{table}" t ORDER BY t::text'.encode()
                ).fetchall()
            ]
            for table in _tables(conn)
        }


SCHEMA_QUERIES = {
    "columns": "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, "
    "column_default FROM information_schema.columns WHERE table_schema = 'public'",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
    "FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    "functions": "SELECT proname, pg_get_function_identity_arguments(oid) FROM pg_proc "
    "WHERE pronamespace = 'public'::regnamespace",
    "types": "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace",
}


def _schema(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            what: sorted(conn.execute(query.encode()).fetchall(), key=repr)
            for what, query in SCHEMA_QUERIES.items()
        }


def _applied(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ).fetchall()


def test_a_database_of_the_release_before_upgrades_keeping_its_rows_and_stays_so(server_url):
    with (
        empty_database(server_url, "invsync_migrations") as old,
        migrated_database(server_url, "invsync_fresh") as fresh,
    ):
        _load_old_release(old)
        before = _contents(old)
        assert all(before.values()), [table for table, rows in before.items() if not rows]
        migrate(old)
        after = _contents(old)
        del after["schema_migrations"]  # compared by version below
        added = set(after) - set(before)  # the later migrations' tables start empty
        assert {table: after.pop(table) for table in added} == {table: [] for table in added}
        assert after == before
        assert _schema(old) == _schema(fresh)
        assert _applied(old) == _applied(fresh)
        upgraded, contents = _schema(old), _contents(old)
        migrate(old)
        assert (_schema(old), _contents(old)) == (upgraded, contents)


def test_migrating_again_changes_nothing(server_url):
    with migrated_database(server_url, "invsync_again") as url:
        with psycopg.connect(url) as conn:
            for statement in OLD_ROWS:
                conn.execute(statement.encode())
        schema, contents = _schema(url), _contents(url)
        migrate(url)
        assert _schema(url) == schema
        assert _contents(url) == contents


def test_two_processes_migrating_one_database_at_once_both_succeed(server_url):
    with (
        empty_database(server_url, "invsync_migrations") as url,
        migrated_database(server_url, "invsync_one") as alone,
    ):
        script = "import sys; from interfaces.composition import migrate; migrate(sys.argv[1])"
        both = [
            subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        errors = [process.communicate(timeout=120)[1] for process in both]
        assert [process.returncode for process in both] == [0, 0], errors
        assert _schema(url) == _schema(alone)
        assert _applied(url) == _applied(alone)
