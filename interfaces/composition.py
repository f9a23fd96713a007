"""The composition root: builds servers, the ledger and the web app from one `Settings`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from application.ledger import Ledger
from infrastructure.embedded import EmbeddedPostgres, EmbeddedRedis
from infrastructure.postgres import check_migrated, eventsourcing_env
from infrastructure.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Servers:
    """Where PostgreSQL and Redis are, configured or embedded."""

    database_url: str
    redis_url: str | None


@contextmanager
def servers(settings: Settings, *, with_redis: bool = True) -> Iterator[Servers]:
    """The configured servers, or embedded ones started for the duration of the block."""
    with ExitStack() as stack:
        database_url = settings.database_url
        if database_url is None:
            postgres = EmbeddedPostgres(settings.data_dir)
            database_url = postgres.start()
            stack.callback(postgres.stop)
        redis_url = settings.redis_url
        if redis_url is None and with_redis:
            redis = EmbeddedRedis(settings.data_dir)
            redis_url = redis.start()
            stack.callback(redis.stop)
        yield Servers(database_url, redis_url)


def migrate(database_url: str) -> None:
    """Create every table invsync needs; safe to run again. Only this creates tables."""
    Ledger(env=eventsourcing_env(database_url, create_table=True)).close()
    log.info("database migrated")


def open_ledger(database_url: str) -> Ledger:
    """The ledger on an already migrated database. Raises `NotMigrated` otherwise."""
    check_migrated(database_url)
    return Ledger(env=eventsourcing_env(database_url))
