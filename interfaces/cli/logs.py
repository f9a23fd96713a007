"""Where the long-running commands log: JSON lines when stderr is not a terminal (a container, a
service manager, a file: what a log shipper reads), a readable line on a terminal. Either way a
line carries the ids its call knew (`extra=`): `channel`, `sku`, `delivery_id`, `event_id`."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

# The ids log calls may pass in `extra`, shown after a terminal line's message.
IDS = ("channel", "sku", "skus", "delivery_id", "event_id")
_LINE = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _ReadableFormatter(logging.Formatter):
    """The terminal's line, with the ids the call passed as `key=value` after it."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{key}={getattr(record, key)}" for key in IDS if hasattr(record, key)]
        return f"{line} [{' '.join(ids)}]" if ids else line


def formatter_for(stream: TextIO) -> logging.Formatter:
    if stream.isatty():
        return _ReadableFormatter(_LINE)
    return JsonFormatter(
        _LINE,
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        json_ensure_ascii=False,
    )


def log_to(stream: TextIO = sys.stderr) -> None:
    """Log INFO and above to `stream`, in the form its kind calls for."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for(stream))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
