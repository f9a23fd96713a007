"""What the commands share: one-line errors, the console, times and rules as given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import typer
from rich.console import Console

from domain.allocation import ChannelRule
from domain.errors import InvsyncError
from infrastructure.config import load_config
from infrastructure.settings import Settings

console = Console()


class CliError(Exception):
    """Raised when the command line itself is wrong."""


@contextmanager
def errors_as_messages() -> Iterator[None]:
    # One line a person can act on, never a traceback.
    try:
        yield
    except (InvsyncError, CliError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


def configured_rules() -> list[ChannelRule]:
    """The channels' rules as configured: the defaults their recorded changes start from."""
    return load_config(Settings.from_env().config_path).allocation_rules()


def parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-28T12:00:00Z") from None
    if parsed.tzinfo is None:
        raise CliError(f"{value!r} needs a time zone, e.g. 2026-11-28T12:00:00Z")
    return parsed
