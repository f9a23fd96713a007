"""Pushes a channel took for processing later (an Amazon feed) (`push_submissions`, created by
migration 0001), one per SKU at most: the outbox row as it was sent, kept until the channel
answers for its ticket. A SKU in here is not pushed again meanwhile (the outbox's `pending`
leaves it out), so an older quantity never lands after a newer one. The only module that
writes the table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection

from infrastructure.outbox import Pending


@dataclass(frozen=True)
class Submission:
    """Pushes a channel took under one ticket, in the order they were sent."""

    ticket: str
    pending: list[Pending]
    submitted_at: datetime


def submit(conn: Connection[Any], channel_id: str, ticket: str, pending: Sequence[Pending]) -> None:
    """Keep what the channel took under `ticket` until it answers for it."""
    with conn.cursor() as curs:
        curs.executemany(
            "INSERT INTO push_submissions (channel_id, ticket, ordinal, sku, quantity, "
            "version, position, kind, first_changed_at, acknowledged_quantity, "
            "acknowledged_at, pushed_version) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(channel_id, ticket, n, *p.row()) for n, p in enumerate(pending)],
        )


def open_submissions(conn: Connection[Any], channel_id: str) -> list[Submission]:
    """The channel's open submissions, oldest first."""
    rows = conn.execute(
        "SELECT ticket, sku, quantity, version, position, kind, first_changed_at, "
        "acknowledged_quantity, acknowledged_at, pushed_version, submitted_at "
        "FROM push_submissions WHERE channel_id = %s "
        "ORDER BY submitted_at, ticket, ordinal",
        [channel_id],
    ).fetchall()
    tickets: dict[str, Submission] = {}
    for ticket, *row, submitted_at in rows:
        submission = tickets.setdefault(ticket, Submission(ticket, [], submitted_at))
        submission.pending.append(Pending(*row))
    return list(tickets.values())


def forget(conn: Connection[Any], channel_id: str, ticket: str) -> None:
    """The channel answered for `ticket` (or never will): its SKUs may go again."""
    conn.execute(
        "DELETE FROM push_submissions WHERE channel_id = %s AND ticket = %s",
        [channel_id, ticket],
    )
