"""Servers for the tests.

Integration tests talk to real PostgreSQL and Redis: the ones named by INVSYNC_TEST_DATABASE_URL
and INVSYNC_TEST_REDIS_URL (default: this machine's on 127.0.0.1). Without them, and without CI
set, the tests start embedded servers of their own, so `make test` passes on a fresh machine.
With CI set, a server that cannot be reached fails the run: it never skips.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.time_travel import TimeTravel
from domain.errors import InvsyncError
from infrastructure.embedded import EmbeddedPostgres, EmbeddedRedis
from infrastructure.postgres import check_database
from infrastructure.redis import check_redis
from tests.helpers import migrated_database

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def _reachable_or_embedded(
    what: str, url: str, check: Callable[[str], None], embedded: EmbeddedPostgres | EmbeddedRedis
) -> Iterator[str]:
    try:
        check(url)
    except InvsyncError as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {what} at {url} is unreachable: {error}", pytrace=False)
    else:
        yield url
        return
    yield embedded.start()
    embedded.stop()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("INVSYNC_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("embedded-postgres"))
    yield from _reachable_or_embedded("PostgreSQL", url, check_database, embedded)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A database of its own for this test run, migrated, dropped at the end."""
    with migrated_database(server_url, "invsync_test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("INVSYNC_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("embedded-redis"))
    yield from _reachable_or_embedded("Redis", url, check_redis, embedded)


@pytest.fixture(scope="session")
def ledger(database_url: str) -> Iterator[Ledger]:
    from interfaces.composition import open_ledger

    app = open_ledger(database_url)
    yield app
    app.close()


@pytest.fixture(scope="session")
def queries(ledger: Ledger) -> LedgerQueries:
    """Reads of the shared test ledger."""
    return LedgerQueries(ledger)


@pytest.fixture(scope="session")
def time_travel(ledger: Ledger) -> TimeTravel:
    """Answers about the shared test ledger's past."""
    return TimeTravel(ledger)
