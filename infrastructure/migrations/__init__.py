"""Versioned migrations of invsync's own tables: the numbered SQL files beside this module
(`0001_baseline.sql`, ...), each applied once, in order, in a transaction of its own that also
records it in `schema_migrations`.

Processes that start together (`invsync run` and a worker, two replicas) migrate one after the
other: everything `migrate` does runs under a session-level advisory lock, which PostgreSQL
releases when the connection ends, also when its process is killed. (`yoyo-migrations` locks
with a row a killed process leaves behind, and runs on psycopg 3 only through a URL of its own:
a lock and 40 lines of our own fit better.)

Two kinds of tables stay with their owners instead:
- the event store's (`eventstore.py`): the `eventsourcing` library creates its tables, type and
  function with its own DDL for the application's name, and our receipts beside them;
- the projection's (`projections/`): created per schema, so a rebuild fills a copy in a schema
  of its own, and dropped whole for the runner to refill when their layout changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg

# Held by whoever migrates (pg_advisory_lock): one process at a time.
MIGRATION_LOCK = 0x1A7A_3167
_FILE_NAME = re.compile(r"(\d{4})_(\w+)\.sql")


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file: applied once, after every lower `version`."""

    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The SQL files of this package, in version order."""
    found = []
    for entry in files(__package__).iterdir():
        matched = _FILE_NAME.fullmatch(entry.name)
        if matched:
            version, name = matched.groups()
            found.append(Migration(int(version), name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.version)


@contextmanager
def migration_lock(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection holding the migration lock, waiting for any other migrating process first."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        yield conn  # the lock ends with the connection


def apply_pending(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Apply, on `conn` (holding `migration_lock`), the migrations not applied yet; returns them."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
        "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied = {version for (version,) in conn.execute("SELECT version FROM schema_migrations")}
    pending = [m for m in migrations() if m.version not in applied]
    for migration in pending:
        with conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                [migration.version, migration.name],
            )
    return pending
