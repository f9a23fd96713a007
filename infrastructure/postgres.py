"""PostgreSQL wiring: the library's configuration from one URL, the one-time migration, a probe."""

from __future__ import annotations

from typing import Any

import psycopg
from eventsourcing.utils import Environment, EnvType
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from domain.errors import InvsyncError
from infrastructure.eventstore import LedgerFactory

DEFAULT_POOL_MAX = 10
STATEMENT_TIMEOUT_KEY = "INVSYNC_STATEMENT_TIMEOUT_MS"


class TimedLedgerFactory(LedgerFactory):
    """The ledger's factory, whose connections carry a server-side `statement_timeout` when the
    environment names one (`INVSYNC_STATEMENT_TIMEOUT_MS`, set by `eventsourcing_env`)."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        timeout = self.env.get(STATEMENT_TIMEOUT_KEY)
        if timeout:
            kwargs = self.datastore.pool.kwargs
            assert isinstance(kwargs, dict)
            kwargs.update(connection_options(int(timeout)))


LEDGER_FACTORY_TOPIC = f"{TimedLedgerFactory.__module__}:{TimedLedgerFactory.__qualname__}"


def connection_options(statement_timeout_ms: int | None) -> dict[str, Any]:
    """libpq connection arguments that make PostgreSQL cancel any statement of the connection
    running longer than `statement_timeout_ms` (None: no limit)."""
    if not statement_timeout_ms:
        return {}
    return {"options": f"-c statement_timeout={int(statement_timeout_ms)}"}


def open_pool(
    database_url: str, max_size: int, statement_timeout_ms: int | None, timeout: float = 5.0
) -> ConnectionPool:
    """A pool for one of our stores: one connection kept while idle, `max_size` at most, each
    statement cancelled after `statement_timeout_ms`; `timeout` seconds to wait for a free one."""
    return ConnectionPool(
        database_url,
        kwargs=connection_options(statement_timeout_ms),
        min_size=1,
        max_size=max_size,
        open=True,
        timeout=timeout,
    )


class DatabaseUnavailable(InvsyncError):
    """Raised when PostgreSQL cannot be reached or refuses the connection."""


def eventsourcing_env(
    database_url: str,
    *,
    create_table: bool = False,
    pool_max: int = DEFAULT_POOL_MAX,
    statement_timeout_ms: int | None = None,
) -> dict[str, str]:
    """The `eventsourcing` settings for an application stored in the database at `database_url`.

    Tables are created only by the migration (`create_table=True`): several processes creating
    them at once crash on `CREATE OR REPLACE FUNCTION`. The pool opens at most `pool_max`
    connections; with `statement_timeout_ms`, PostgreSQL cancels a longer statement.
    """
    if pool_max < 1:
        raise ValueError(f"pool_max must be at least 1, got {pool_max}")
    params = conninfo_to_dict(database_url)
    timeout = (
        {STATEMENT_TIMEOUT_KEY: str(int(statement_timeout_ms))} if statement_timeout_ms else {}
    )
    return {
        **timeout,
        "PERSISTENCE_MODULE": LEDGER_FACTORY_TOPIC,
        "POSTGRES_DBNAME": str(params.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(params.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        # Seconds to wait for a pooled connection. The library retries a failed read or write
        # ten times, so this bounds how long a caller waits while the database is down.
        "POSTGRES_CONNECT_TIMEOUT": "1",
        "POSTGRES_PRE_PING": "y",
        # One connection kept per pool while idle, `pool_max` at most under load: a process
        # holds several pools (the ledger's, the projection's), and the library's default keeps
        # five open in each whatever the load (an idle `invsync run` held 23).
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(pool_max - 1),
        "CREATE_TABLE": "y" if create_table else "n",
        "TRANSCODER_TOPIC": "infrastructure.transcoder:OrjsonTranscoder",
    }


def check_database(database_url: str, timeout: float = 3.0) -> None:
    """Raise `DatabaseUnavailable` unless PostgreSQL answers a query within `timeout` seconds."""
    try:
        with psycopg.connect(database_url, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        # One line: psycopg's messages carry hints on indented continuation lines.
        raise DatabaseUnavailable(
            f"PostgreSQL is unreachable: {' '.join(str(error).split())}"
        ) from error


class NotMigrated(InvsyncError):
    """Raised when the database lacks invsync's tables: run `invsync migrate` first."""


def check_migrated(database_url: str, table: str = "ledger_receipts") -> None:
    """Raise `NotMigrated` unless the migration has created the ledger's tables."""
    check_database(database_url)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()
    if row is None or row[0] is None:
        raise NotMigrated("the database has no invsync tables yet: run `invsync migrate` first")
