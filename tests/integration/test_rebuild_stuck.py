"""A rebuild that stands where the live projection is stuck says so, naming the position of the
event that cannot be folded, instead of reporting done (issue 11, finding 2)."""

from __future__ import annotations

import time

import psycopg
import pytest
from typer.testing import CliRunner

from domain.stock import ChangeKind
from infrastructure.postgres import eventsourcing_env
from infrastructure.projections import AvailabilityRunner, Rebuild
from infrastructure.projections.jobs import RebuildJobs
from infrastructure.projections.rebuild import RebuildStuck
from interfaces.cli import app
from tests.helpers import change, random_sku

RULES: tuple = ()


def _refuse(database: str, poison: str) -> None:
    """What the database refuses to hold for `poison`, in the live tables and in every copy a
    rebuild creates: the projection cannot fold its events, whoever builds it."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            f"ALTER TABLE availability_levels ADD CONSTRAINT refuse CHECK (sku <> '{poison}')"
        )
        conn.execute(
            f"""CREATE FUNCTION refuse_poison() RETURNS event_trigger LANGUAGE plpgsql AS $$
            DECLARE r record;
            BEGIN
              FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
                       WHERE command_tag = 'CREATE TABLE' LOOP
                IF r.object_identity LIKE '%.availability_levels' THEN
                  EXECUTE format('ALTER TABLE %s ADD CONSTRAINT refuse CHECK (sku <> %L)',
                                 r.object_identity, '{poison}');
                END IF;
              END LOOP;
            END $$"""
        )
        conn.execute(
            "CREATE EVENT TRIGGER refuse_poison ON ddl_command_end "
            "WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION refuse_poison()"
        )


def _mend(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DROP EVENT TRIGGER refuse_poison")
        conn.execute("DROP FUNCTION refuse_poison()")
        conn.execute("ALTER TABLE availability_levels DROP CONSTRAINT IF EXISTS refuse")


def _until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_rebuild_at_a_stuck_position_names_the_event_it_cannot_fold(
    scratch_database, scratch_ledger, monkeypatch, tmp_path
):
    good, poison = random_sku("good"), random_sku("poison")
    _refuse(scratch_database, poison)
    with AvailabilityRunner(eventsourcing_env(scratch_database), RULES) as runner:
        scratch_ledger.record(change(ChangeKind.RECEIPT, good, 3))
        stuck_at = scratch_ledger.recorder.max_notification_id() or 0
        assert runner.wait(stuck_at, timeout=10)
        scratch_ledger.record(change(ChangeKind.RECEIPT, poison, 2))
        poison_at = scratch_ledger.recorder.max_notification_id() or 0
        _until(lambda: runner.stuck is not None)

        with pytest.raises(
            RebuildStuck, match=f"at position {poison_at}.*after position {stuck_at}"
        ):
            Rebuild(scratch_database, RULES).run()

        # Through the CLI: one line naming the position, exit 1, no report.
        monkeypatch.setenv("INVSYNC_DATABASE_URL", scratch_database)
        monkeypatch.setenv("INVSYNC_CONFIG", str(tmp_path / "absent.toml"))
        monkeypatch.delenv("INVSYNC_REDIS_URL", raising=False)
        result = CliRunner().invoke(app, ["rebuild", "availability"])
        assert result.exit_code == 1, result.output
        assert (
            "error: the availability projection cannot fold the ledger's event at position "
            f"{poison_at} " in result.output
        )
        assert "rebuilt availability" not in result.output

        # Through the API's jobs: an error naming the position, no report of done.
        jobs = RebuildJobs(scratch_database, RULES)
        job = jobs.start("availability")
        _until(lambda: not job.running)
        assert job.report is None
        assert job.error is not None
        assert f"position {poison_at}" in job.error

        # Nothing was swapped: the live tables (with their constraint) still serve.
        with psycopg.connect(scratch_database) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_constraint WHERE conname = 'refuse' "
                "AND conrelid = 'public.availability_levels'::regclass"
            ).fetchone()
        assert row == (1,)

        _mend(scratch_database)
        _until(lambda: runner.stuck is None)
        assert runner.wait(poison_at, timeout=10)
    report = Rebuild(scratch_database, RULES).run()
    assert report.position >= poison_at
    assert report.differences == []


def test_a_rebuild_of_a_projection_that_goes_on_reports_done(scratch_database, scratch_ledger):
    """The probe of the next event is undone: a lagging (not stuck) projection is rebuilt and
    the event after it is still folded once by the live runner."""
    sku = random_sku()
    scratch_ledger.record(change(ChangeKind.RECEIPT, sku, 3))
    scratch_ledger.record(change(ChangeKind.RECEIPT, sku, 4))
    with AvailabilityRunner(eventsourcing_env(scratch_database), RULES) as runner:
        assert runner.wait(scratch_ledger.recorder.max_notification_id() or 0, timeout=10)
    report = Rebuild(scratch_database, RULES).run()
    assert report.differences == []
    with psycopg.connect(scratch_database) as conn:
        row = conn.execute(
            "SELECT on_hand FROM availability_levels WHERE sku = %s", [sku]
        ).fetchone()
    assert row == (7,)
