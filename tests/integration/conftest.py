"""Fixtures for tests that need a database of their own (a projection or a rebuild reads every
event in it, a pusher every outbox row), rather than the shared test database."""

import pytest

from application.ledger import Ledger
from infrastructure.postgres import eventsourcing_env
from tests.helpers import migrated_database


@pytest.fixture
def scratch_database(server_url):
    with migrated_database(server_url, "invsync_scratch") as url:
        yield url


@pytest.fixture
def scratch_ledger(scratch_database):
    ledger = Ledger(env=eventsourcing_env(scratch_database))
    yield ledger
    ledger.close()
