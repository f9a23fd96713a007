"""The ledger's recorder refuses the library's database insert function.

With `POSTGRES_ENABLE_DB_FUNCTIONS` on (in the environment or the application's settings, with
or without the application's prefix), the library's `insert_events` calls a database function
instead of the recorder's own insert: the ledger's receipts are dropped, so the same fact is
applied twice, and no table lock is taken, so readers tailing the log can skip events. The
recorder refuses to be built on such a datastore, and to insert if it is switched on later.
"""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg.conninfo import conninfo_to_dict

from application.errors import StorageNotConfigured
from application.ledger import Ledger
from application.outcomes import OutcomeStatus
from domain.stock import ChangeKind
from infrastructure.eventstore import LedgerRecorder
from infrastructure.postgres import eventsourcing_env
from tests.helpers import change, random_sku

EVENTS_TABLE = "db_functions_case_events"


@pytest.fixture
def datastore(scratch_database):
    params = conninfo_to_dict(scratch_database)
    store = PostgresDatastore(
        dbname=str(params["dbname"]),
        host=str(params.get("host") or "127.0.0.1"),
        port=str(params.get("port") or "5432"),
        user=str(params.get("user") or "postgres"),
        password=str(params.get("password") or ""),
    )
    yield store
    store.close()


def _event() -> StoredEvent:
    return StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="t", state=b"{}")


def test_the_recorder_refuses_a_datastore_with_db_functions(datastore):
    datastore.enable_db_functions = True
    with pytest.raises(StorageNotConfigured, match="POSTGRES_ENABLE_DB_FUNCTIONS"):
        LedgerRecorder(datastore, events_table_name=EVENTS_TABLE)


def test_the_recorder_refuses_to_insert_once_db_functions_are_switched_on(datastore):
    recorder = LedgerRecorder(datastore, events_table_name=EVENTS_TABLE)
    recorder.create_table()
    recorder.insert_events([_event()])
    datastore.enable_db_functions = True
    with pytest.raises(StorageNotConfigured, match="POSTGRES_ENABLE_DB_FUNCTIONS"):
        recorder.insert_events([_event()])
    assert recorder.max_notification_id() == 1  # nothing was written


@pytest.mark.parametrize(
    "key", ["POSTGRES_ENABLE_DB_FUNCTIONS", "LEDGER_POSTGRES_ENABLE_DB_FUNCTIONS"]
)
def test_the_ledger_refuses_db_functions_from_the_environment(database_url, monkeypatch, key):
    monkeypatch.setenv(key, "y")
    with pytest.raises(StorageNotConfigured, match="POSTGRES_ENABLE_DB_FUNCTIONS"):
        Ledger(env=eventsourcing_env(database_url))


@pytest.mark.parametrize(
    "key", ["POSTGRES_ENABLE_DB_FUNCTIONS", "LEDGER_POSTGRES_ENABLE_DB_FUNCTIONS"]
)
def test_the_ledger_refuses_db_functions_from_its_settings(database_url, key):
    with pytest.raises(StorageNotConfigured, match="POSTGRES_ENABLE_DB_FUNCTIONS"):
        Ledger(env={**eventsourcing_env(database_url), key: "yes"})


def test_db_functions_switched_off_explicitly_are_fine(database_url, monkeypatch):
    monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "n")
    ledger = Ledger(env=eventsourcing_env(database_url))
    try:
        fact = change(ChangeKind.RECEIPT, random_sku(), 3)
        assert ledger.record(fact).status is OutcomeStatus.APPLIED
        assert ledger.record(fact).status is OutcomeStatus.DUPLICATE  # its receipt was kept
    finally:
        ledger.close()
