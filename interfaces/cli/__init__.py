"""The `invsync` command line: run the service, migrate, and work the ledger from a terminal.

One module per concern: `serve` (run, worker, project), `stock` (record), `reads` (show,
history, oversells), `admin` (migrate, rebuild, prune), `reconcile` (a run now, adoption).
Here they are put together."""

from __future__ import annotations

import typer

from interfaces.cli import admin, reads, reconcile, serve, stock

app = typer.Typer(help="invsync: the inventory sync hub.", no_args_is_help=True)
stock_app = typer.Typer(help="Record and inspect stock in the ledger.", no_args_is_help=True)
app.add_typer(stock_app, name="stock")

commands = (serve.run, serve.worker, serve.project, admin.rebuild, admin.prune, admin.migrate)
for command in (*commands, reads.oversells, reconcile.reconcile):
    app.command()(command)

app.command(hidden=True)(serve.http_process)  # INVSYNC_HTTP_WORKERS' other processes
stock_app.command()(stock.receive)
# A negative DELTA ("-3") is a number, not an option.
stock_app.command(context_settings={"ignore_unknown_options": True})(stock.adjust)
for reading_or_recording in (stock.count, stock.transfer, reads.show, reads.history):
    stock_app.command()(reading_or_recording)


def main() -> None:
    app(prog_name="invsync")


if __name__ == "__main__":
    main()
