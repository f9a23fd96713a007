"""A projection that cannot fold an event says so (readiness, metric, log) instead of spinning
quietly, and goes on by itself once the cause is mended."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest
from prometheus_client import REGISTRY

from domain.stock import ChangeKind
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner
from infrastructure.projections.runner import ProjectionStuck
from tests.helpers import change, random_sku


def _stuck_gauge() -> float | None:
    return REGISTRY.get_sample_value("invsync_projection_stuck", {"projection": "availability"})


def _until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_projection_failing_on_one_event_says_it_is_stuck_then_goes_on(
    scratch_database, scratch_ledger, caplog
):
    poison = random_sku("poison")
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        # What the database refuses to hold for this SKU: the projection cannot fold it.
        conn.execute(
            f"ALTER TABLE availability_levels ADD CONSTRAINT refuse CHECK (sku <> '{poison}')"
        )
    runner = AvailabilityRunner(eventsourcing_env(scratch_database), [])
    with caplog.at_level(logging.ERROR), runner:
        runner.check()  # ready
        scratch_ledger.record(change(ChangeKind.RECEIPT, poison, 3))
        _until(lambda: runner.stuck is not None)
        with pytest.raises(ProjectionStuck, match="cannot fold the ledger after position"):
            runner.check()
        assert _stuck_gauge() == 1
        assert any("cannot fold" in r.getMessage() for r in caplog.records)
        with psycopg.connect(scratch_database, autocommit=True) as conn:
            conn.execute("ALTER TABLE availability_levels DROP CONSTRAINT refuse")
        _until(lambda: runner.stuck is None)
        runner.check()
        assert _stuck_gauge() == 0
        assert runner.wait(runner.app.recorder.max_notification_id() or 0, timeout=10)
