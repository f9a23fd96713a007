"""Read models kept by projection runners fed by LISTEN/NOTIFY, each moving its tables and its
tracking position in one transaction (every ledger event counts exactly once), and rebuilt from
the whole history into shadow tables that are swapped in atomically.

`availability`: levels per (SKU, location), sales velocity per (SKU, channel), available-to-sell
per (SKU, channel) by the channels' rules; what changes goes to the outbox the pushers drain
(`infrastructure/outbox.py`).

The projections' tables are created here, not by the versioned migrations: the views create them
in any schema (a rebuild fills copies in a schema of its own), and a change of their layout
(`LAYOUT`) drops them for the runner to refill from the ledger, which holds all they hold.
"""

from __future__ import annotations

import psycopg
from psycopg.sql import SQL, Identifier

from infrastructure import outbox
from infrastructure.projections.availability import NAME, TABLES, AvailabilityView
from infrastructure.projections.rebuild import Rebuild, RebuildReport
from infrastructure.projections.runner import AvailabilityRunner, ProjectionWaiter, open_view

__all__ = [
    "PROJECTIONS",
    "AvailabilityRunner",
    "AvailabilityView",
    "ProjectionWaiter",
    "Rebuild",
    "RebuildReport",
    "create_projection_tables",
    "open_view",
]

PROJECTIONS = (NAME,)

# Bumped whenever a projection's tables change shape: the migration then drops them, and the
# runner refills them from the ledger (a projection holds nothing the ledger does not).
LAYOUT = 6


def create_projection_tables(database_url: str, env: dict[str, str]) -> None:
    """Create the projections' tables (the migration's job only), replacing older layouts; the
    outbox (a migration's table) is emptied with them, as the refill announces everything."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS projection_layouts (name text PRIMARY KEY, layout int)"
        )
        row = conn.execute(
            "SELECT layout FROM projection_layouts WHERE name = %s FOR UPDATE", [NAME]
        ).fetchone()
        if row is None or row[0] != LAYOUT:
            for table in TABLES:
                conn.execute(SQL("DROP TABLE IF EXISTS {}").format(Identifier(table)))
            outbox.forget_everything(conn)
        conn.execute(
            "INSERT INTO projection_layouts VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET layout = EXCLUDED.layout",
            [NAME, LAYOUT],
        )
    open_view(env, create=True).close()
