"""Settings, read once from the environment into one frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from domain.errors import InvsyncError


class SettingsError(InvsyncError):
    """Raised when an environment variable holds a value invsync cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything invsync reads from its environment.

    With `database_url` and `redis_url` unset, invsync starts embedded servers under `data_dir`.
    """

    database_url: str | None
    redis_url: str | None
    data_dir: Path
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    config_path: Path = Path("invsync.toml")
    queue_namespace: str = "invsync"
    demo: bool | None = None  # sandbox stores and shoppers; None: when there is no config file

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        port = environ.get("INVSYNC_HTTP_PORT", "8000")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"INVSYNC_HTTP_PORT must be a port number, got {port!r}")
        return cls(
            database_url=environ.get("INVSYNC_DATABASE_URL") or None,
            redis_url=environ.get("INVSYNC_REDIS_URL") or None,
            data_dir=Path(environ.get("INVSYNC_DATA_DIR") or ".invsync").absolute(),
            http_host=environ.get("INVSYNC_HTTP_HOST", "127.0.0.1"),
            http_port=int(port),
            config_path=Path(environ.get("INVSYNC_CONFIG") or "invsync.toml"),
            queue_namespace=environ.get("INVSYNC_QUEUE_NAMESPACE") or "invsync",
            demo=_flag(environ, "INVSYNC_DEMO"),
        )

    @property
    def wants_demo(self) -> bool:
        return self.demo if self.demo is not None else not self.config_path.exists()


def _flag(environ: Mapping[str, str], name: str) -> bool | None:
    value = environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, got {value!r}")
