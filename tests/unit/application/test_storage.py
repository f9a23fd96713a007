"""Which storage the ledger accepts: any recorder that keeps receipts with its events (so the
tests' in-memory one), and in production, at start-up, only PostgreSQL."""

import pytest

from application.errors import StorageNotConfigured
from application.ledger import Ledger
from interfaces.composition import build_ledger
from tests.memory import memory_env


def test_the_ledger_refuses_a_recorder_that_keeps_no_receipts():
    with pytest.raises(StorageNotConfigured, match="refuses POPOApplicationRecorder"):
        Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def test_the_ledger_runs_on_the_tests_in_memory_store():
    Ledger(env=memory_env()).close()


def test_the_composition_root_refuses_anything_but_postgresql_at_start_up():
    with pytest.raises(StorageNotConfigured, match="refuses MemoryRecorder: it needs the invsync"):
        build_ledger(memory_env())
    with pytest.raises(StorageNotConfigured, match="refuses POPOApplicationRecorder"):
        build_ledger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
