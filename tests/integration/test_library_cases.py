"""The eventsourcing library's own persistence test cases, run against invsync's storage.

`LedgerRecorder` (the ledger's events and receipts) meets the library's application recorder
case and its non-interleaving case; what `LedgerFactory` builds for snapshots (an aggregate
recorder) and for processes meets theirs; the factory itself meets the factory case. Each case
runs on a database of its own on the test run's server, emptied before and after each test.

The library runs the same cases once more with its database insert function switched on
(`POSTGRES_ENABLE_DB_FUNCTIONS`). That function bypasses the recorder's own insert: the ledger's
receipts would be dropped (a fact applied twice) and no table lock taken (this module's
non-interleaving case fails). The ledger's recorder refuses that mode, so that variant is not
run here: tests/integration/test_db_functions.py checks the refusal, however the mode is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import TestCase

import psycopg
import pytest
from eventsourcing.persistence import ProgrammingError
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresDatastore,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from eventsourcing.utils import Environment
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infrastructure.eventstore import LEDGER_FACTORY_TOPIC, LedgerFactory, LedgerRecorder
from infrastructure.postgres import eventsourcing_env

try:
    from eventsourcing.tests import persistence as library_cases
except ModuleNotFoundError as missing:  # eventsourcing.tests imports pycryptodome
    if os.environ.get("CI"):
        raise  # CI runs these cases: a missing test dependency fails the run
    pytest.skip(f"the library's test cases need {missing.name}", allow_module_level=True)

# Names of our own; short enough that every index name derived from them fits in 63 bytes.
EVENTS_TABLE = "library_case_events"
TRACKING_TABLE = "library_case_tracking"


@pytest.fixture(scope="module")
def library_database(server_url: str) -> Iterator[str]:
    """An empty database of its own: the cases count notification ids from 1."""
    name = f"invsync_library_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty(database_url: str) -> None:
    """Drop whatever a case created: tables, composite types, the library's functions."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def _datastore_settings(database_url: str) -> dict[str, Any]:
    params = conninfo_to_dict(database_url)
    return {
        "dbname": str(params["dbname"]),
        "host": str(params.get("host") or "127.0.0.1"),
        "port": str(params.get("port") or "5432"),
        "user": str(params.get("user") or "postgres"),
        "password": str(params.get("password") or ""),
    }


class _OnPostgres(TestCase):
    """A datastore on the module's database for each test, as the library's own Postgres tests
    set one up (one pooled connection unless a test asks for more)."""

    __test__ = False
    pool_size = 1
    database_url = ""

    @pytest.fixture(autouse=True)
    def _database(self, library_database: str) -> None:
        self.database_url = library_database  # before setUp: pytest fixtures come first

    def setUp(self) -> None:
        super().setUp()
        _empty(self.database_url)
        self.datastore = PostgresDatastore(
            **_datastore_settings(self.database_url), pool_size=self.pool_size
        )

    def tearDown(self) -> None:
        self.datastore.close()
        super().tearDown()
        _empty(self.database_url)

    def _more_connections(self, count: int) -> None:
        self.datastore.pool.open()
        self.datastore.pool.resize(count, count)


class TestLedgerRecorderApplicationCases(
    _OnPostgres, library_cases.ApplicationRecorderTestCase[LedgerRecorder]
):
    __test__ = True

    def create_recorder(self) -> LedgerRecorder:
        recorder = LedgerRecorder(self.datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        return recorder

    def test_insert_subscribe(self) -> None:
        self._more_connections(2)  # the subscription holds one for its LISTEN
        self.optional_test_insert_subscribe()

    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:  # noqa: PT028
        self._more_connections(12)
        super().test_concurrent_no_conflicts(initial_position)

    def test_concurrent_throughput(self) -> None:
        self._more_connections(10)
        super().test_concurrent_throughput()


class TestLedgerRecorderNonInterleavingCase(
    _OnPostgres, library_cases.NonInterleavingNotificationIDsBaseCase
):
    """Two writers racing: each one's notification ids must form a block of their own (the
    table lock), or a reader tailing the log skips events committed late."""

    __test__ = True
    pool_size = 2  # both writers at once, not one after the other on one connection

    def create_recorder(self) -> LedgerRecorder:
        recorder = LedgerRecorder(self.datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        return recorder


class TestSnapshotRecorderAggregateCases(_OnPostgres, library_cases.AggregateRecorderTestCase):
    """What `LedgerFactory` stores the ledger's snapshots with."""

    __test__ = True

    def create_recorder(self) -> PostgresAggregateRecorder:
        recorder_class = LedgerFactory.aggregate_recorder_class
        recorder = recorder_class(self.datastore, events_table_name="library_case_snapshots")
        recorder.create_table()
        return recorder


class TestProcessRecorderCases(_OnPostgres, library_cases.ProcessRecorderTestCase):
    """What `LedgerFactory` gives an application that follows another with tracking."""

    __test__ = True

    def create_recorder(self) -> PostgresProcessRecorder:
        recorder = LedgerFactory.process_recorder_class(
            self.datastore, events_table_name=EVENTS_TABLE, tracking_table_name=TRACKING_TABLE
        )
        recorder.create_table()
        return recorder


class _TrackingView(PostgresTrackingRecorder):
    pass


class TestLedgerFactoryCases(library_cases.InfrastructureFactoryTestCase[LedgerFactory]):
    """`PERSISTENCE_MODULE` set to the ledger's factory builds what the library expects of a
    factory, with the ledger's recorder for applications."""

    @pytest.fixture(autouse=True)
    def _database(self, library_database: str) -> Iterator[None]:
        _empty(library_database)
        self.env = Environment(
            "LibraryCase", {**eventsourcing_env(library_database, create_table=True)}
        )
        yield
        _empty(library_database)

    def expected_factory_class(self) -> type[LedgerFactory]:
        return LedgerFactory

    def expected_aggregate_recorder_class(self) -> type[PostgresAggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[LedgerRecorder]:
        return LedgerRecorder

    def expected_tracking_recorder_class(self) -> type[PostgresTrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[PostgresTrackingRecorder]:
        return _TrackingView

    def expected_process_recorder_class(self) -> type[PostgresProcessRecorder]:
        return PostgresProcessRecorder


class TestLedgerRecorderNames(_OnPostgres):
    """The library refuses an events table name PostgreSQL would cut (63 bytes); the ledger's
    recorder refuses one whose receipts table or index names would be cut (they would collide,
    and `CREATE INDEX IF NOT EXISTS` would silently create nothing)."""

    __test__ = True

    def test_a_name_whose_receipt_names_would_be_cut_is_refused(self) -> None:
        longest = "s" * 50 + "stored_events"  # the library's own longest test name: 63
        with pytest.raises(ProgrammingError, match="too long"):
            LedgerRecorder(self.datastore, events_table_name=longest)

    def test_the_longest_name_that_fits_creates_every_index(self) -> None:
        name = "l" * (63 - len("_receipts_item_version_idx")) + "_events"
        recorder = LedgerRecorder(self.datastore, events_table_name=name)
        recorder.create_table()
        with psycopg.connect(self.database_url) as conn:
            indexes = conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s",
                [recorder.receipts_table],
            ).fetchall()
        suffixes = {i[0].removeprefix(recorder.receipts_table) for i in indexes}
        assert suffixes == {"_pkey", "_recorded_idx", "_item_version_idx", "_oversells_idx"} | {
            "_reference_idx"
        }


def test_the_factory_topic_names_the_ledger_factory():
    assert LEDGER_FACTORY_TOPIC == "infrastructure.eventstore:LedgerFactory"
