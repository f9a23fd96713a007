"""Settings, read once from the environment into one frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from domain.errors import InvsyncError


class SettingsError(InvsyncError):
    """Raised when an environment variable holds a value invsync cannot use."""


@dataclass(frozen=True)
class HttpLimits:
    """What one client may hold of the HTTP service (README, "Limits").

    Attributes:
        max_api_body_bytes: the largest request body outside webhooks (webhooks have their
            channel file's `max_webhook_bytes`); larger ones are answered 413.
        body_timeout_seconds: request headers, then the whole body, must each arrive within
            this; a slower body is answered 408 and slower headers have their connection closed
            (slow-loris).
        webhook_bodies: webhook bodies read and verified at once, before any signature is known
            to be good; beyond that a webhook waits a second, then gets 503 (retry).
        verification_threads: threads that may verify signatures needing I/O (SNS certificate
            fetches), apart from those serving the API.
        limit_concurrency: connections and requests uvicorn serves at once; beyond, 503.
        keep_alive_seconds: how long an idle connection is kept open.
        metrics_scope: unset, `/metrics` answers anyone; `read` or `admin`, it needs an API token
            with that scope (once tokens are configured).
    """

    max_api_body_bytes: int = 1_048_576
    body_timeout_seconds: float = 10.0
    webhook_bodies: int = 32
    verification_threads: int = 8
    limit_concurrency: int = 1_000
    keep_alive_seconds: int = 5
    metrics_scope: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HttpLimits:
        scope = environ.get("INVSYNC_METRICS_SCOPE", "").strip() or None
        if scope not in (None, "read", "admin"):
            raise SettingsError(f"INVSYNC_METRICS_SCOPE must be read or admin, got {scope!r}")
        default = cls()
        return cls(
            max_api_body_bytes=_count(
                environ, "INVSYNC_MAX_API_BODY_BYTES", default.max_api_body_bytes
            ),
            body_timeout_seconds=float(
                _count(environ, "INVSYNC_BODY_TIMEOUT_SECONDS", int(default.body_timeout_seconds))
            ),
            webhook_bodies=_count(environ, "INVSYNC_WEBHOOK_BODIES", default.webhook_bodies),
            verification_threads=_count(
                environ, "INVSYNC_VERIFICATION_THREADS", default.verification_threads
            ),
            limit_concurrency=_count(
                environ, "INVSYNC_HTTP_LIMIT_CONCURRENCY", default.limit_concurrency
            ),
            keep_alive_seconds=_count(
                environ, "INVSYNC_HTTP_KEEP_ALIVE_SECONDS", default.keep_alive_seconds
            ),
            metrics_scope=scope,
        )


DEFAULT_LIMITS = HttpLimits()


@dataclass(frozen=True)
class DatabaseLimits:
    """What one process may take of PostgreSQL (README, "Limits").

    Attributes:
        pool_max: the most connections any one of the process's pools opens (the ledger's,
            the projection's, the inbox's, the idempotency keys', the reservations', the
            pushers'); each keeps one while idle.
        statement_timeout_seconds: PostgreSQL cancels a statement of the ledger or the API
            running longer than this (`statement_timeout`), so a stuck database gives a 503
            instead of a request waiting for ever; 0 turns it off.
    """

    pool_max: int = 10
    statement_timeout_seconds: float = 5.0

    @property
    def statement_timeout_ms(self) -> int | None:
        return int(self.statement_timeout_seconds * 1000) or None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DatabaseLimits:
        default = cls()
        timeout = environ.get("INVSYNC_DB_STATEMENT_TIMEOUT_SECONDS", "").strip()
        if timeout == "0":
            seconds = 0.0
        else:
            seconds = float(
                _count(
                    environ,
                    "INVSYNC_DB_STATEMENT_TIMEOUT_SECONDS",
                    int(default.statement_timeout_seconds),
                )
            )
        return cls(
            pool_max=_count(environ, "INVSYNC_DB_POOL_MAX", default.pool_max),
            statement_timeout_seconds=seconds,
        )


# The seed's consistency targets: seconds from a ledger event of each kind to the channel
# showing its result (`INVSYNC_CONSISTENCY_TARGETS` replaces them). A push slower than its
# kind's target counts in `invsync_consistency_breaches_total`; kinds without one never do.
CONSISTENCY_TARGETS = {"sale": 5.0, "return": 60.0, "adjustment": 300.0}


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
    http_workers: int = 1  # processes of `invsync run` serving the port, each its own commits
    config_path: Path = Path("invsync.toml")
    queue_namespace: str = "invsync"
    demo: bool | None = None  # sandbox stores and shoppers; None: when there is no config file
    http: HttpLimits = field(default_factory=HttpLimits)
    database: DatabaseLimits = field(default_factory=DatabaseLimits)
    # Where `invsync worker` and `invsync project` serve `/metrics` (`run` serves it on its
    # HTTP port); no port: each command's own default.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    consistency_targets: Mapping[str, float] = field(
        default_factory=lambda: dict(CONSISTENCY_TARGETS)
    )

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
            http_workers=_count(environ, "INVSYNC_HTTP_WORKERS", 1),
            config_path=Path(environ.get("INVSYNC_CONFIG") or "invsync.toml"),
            queue_namespace=environ.get("INVSYNC_QUEUE_NAMESPACE") or "invsync",
            demo=_flag(environ, "INVSYNC_DEMO"),
            http=HttpLimits.from_env(environ),
            database=DatabaseLimits.from_env(environ),
            metrics_host=environ.get("INVSYNC_METRICS_HOST") or "127.0.0.1",
            metrics_port=_port(environ, "INVSYNC_METRICS_PORT"),
            consistency_targets=_targets(environ.get("INVSYNC_CONSISTENCY_TARGETS", "")),
        )

    @property
    def wants_demo(self) -> bool:
        return self.demo if self.demo is not None else not self.config_path.exists()


def _port(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and 0 < int(value) < 65536):
        raise SettingsError(f"{name} must be a port number, got {value[:40]!r}")
    return int(value)


def _targets(value: str) -> dict[str, float]:
    """`kind=seconds,...` (e.g. `sale=5,return=60,adjustment=300`); empty: the seed's."""
    if not value.strip():
        return dict(CONSISTENCY_TARGETS)
    return dict(_target(pair) for pair in value.split(","))


def _target(pair: str) -> tuple[str, float]:
    kind, _, seconds = (part.strip() for part in pair.partition("="))
    try:
        number = float(seconds)
    except ValueError:
        number = 0.0
    if not kind or not 0 < number < 86_400:  # NaN fails this too
        raise SettingsError(
            f"INVSYNC_CONSISTENCY_TARGETS: {pair.strip()[:40]!r} is not kind=seconds (seconds "
            "above 0, under a day), e.g. sale=5,return=60,adjustment=300"
        )
    return kind, number


def _flag(environ: Mapping[str, str], name: str) -> bool | None:
    value = environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, got {value!r}")


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 12 and int(value) > 0):
        raise SettingsError(f"{name} must be a whole number above 0, got {value[:40]!r}")
    return int(value)
