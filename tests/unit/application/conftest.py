"""The application on the in-memory store (`tests.memory`): no servers, a fresh ledger per test."""

from collections.abc import Iterator

import pytest

from application.ledger import Ledger
from application.ledger_queries import LedgerQueries
from application.time_travel import TimeTravel
from tests.memory import memory_ledger


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    app = memory_ledger()
    yield app
    app.close()


@pytest.fixture
def queries(ledger: Ledger) -> LedgerQueries:
    return LedgerQueries(ledger)


@pytest.fixture
def time_travel(ledger: Ledger) -> TimeTravel:
    return TimeTravel(ledger)
