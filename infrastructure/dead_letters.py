"""Dead letters (`dead_letters`, created by migration 0001): messages that exhausted their
retries, kept in PostgreSQL (Redis keeps them 7 days) by `DeadLetterRecorder`, and listed,
retried or discarded by an operator. The only module that writes or reads the table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dramatiq
import psycopg
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from infrastructure import inbox
from infrastructure.inbox import INTAKE_ACTORS


class DeadLetterRecorder(Middleware):
    """Keeps every message that exhausted its retries, and parks the inbox deliveries it
    carried so the sweeper does not resend them forever."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        error = str(message.options.get("traceback") or "retries exhausted").strip()
        with psycopg.connect(self._database_url) as conn:
            conn.execute(
                "INSERT INTO dead_letters (message_id, queue_name, actor_name, message, error) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING",
                [
                    message.message_id,
                    message.queue_name,
                    message.actor_name,
                    Jsonb(message.asdict()),
                    error[-4000:],
                ],
            )
            if message.actor_name in INTAKE_ACTORS.values() and message.args:
                last = error.splitlines()[-1] if error else ""
                reason = f"processing failed (dead letter {message.message_id}): {last}"
                inbox.park(conn, message.args[0], reason)


STATES = ("dead", "retried", "discarded")


def counts(conn: Connection[Any]) -> dict[str, int]:
    """How many dead letters are in each state (every state named, 0 when none)."""
    rows = conn.execute("SELECT state, count(*) FROM dead_letters GROUP BY state").fetchall()
    return {**dict.fromkeys(STATES, 0), **dict(rows)}


class DeadLetters:
    def __init__(self, database_url: str, broker: dramatiq.Broker | None = None) -> None:
        # Without a broker (`invsync prune`) they can be listed and pruned, not retried.
        self._database_url = database_url
        self._broker = broker

    def list(self, state: str = "dead", limit: int = 100) -> list[dict[str, Any]]:
        with psycopg.connect(self._database_url, row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT id, message_id, queue_name, actor_name, message, error, failed_at, "
                "state, resolved_at FROM dead_letters WHERE state = %s ORDER BY id DESC LIMIT %s",
                [state, limit],
            ).fetchall()
        return [
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
            for row in rows
        ]

    def count(self, state: str = "dead") -> int:
        """How many dead letters are in `state`."""
        with psycopg.connect(self._database_url) as conn:
            found = conn.execute(
                "SELECT count(*) FROM dead_letters WHERE state = %s", [state]
            ).fetchone()
        return int(found[0]) if found else 0

    def retry(self, dead_letter_id: int) -> bool:
        """Send the message again with fresh retries; False if there is no such dead letter."""
        with psycopg.connect(self._database_url, row_factory=dict_row) as conn:
            row = conn.execute(
                "UPDATE dead_letters SET state = 'retried', resolved_at = now() "
                "WHERE id = %s AND state = 'dead' RETURNING message, actor_name",
                [dead_letter_id],
            ).fetchone()
            if row is None:
                return False
            stored = row["message"]
            if row["actor_name"] in INTAKE_ACTORS.values() and stored["args"]:
                # The deliveries were parked when the message died: make them pending again.
                inbox.unpark(conn, stored["args"][0])
            options = {
                k: v
                for k, v in stored["options"].items()
                if k not in ("retries", "traceback", "eta", "redis_message_id")
            }
            message: dramatiq.Message[Any] = dramatiq.Message(
                queue_name=stored["queue_name"],
                actor_name=stored["actor_name"],
                args=tuple(stored["args"]),
                kwargs=stored["kwargs"],
                options=options,
            )
            if self._broker is None:
                raise RuntimeError("dead letters opened without a broker cannot be retried")
            self._broker.enqueue(message)
        return True

    def prune(self, days: float) -> int:
        """Delete dead letters retried or discarded more than `days` ago; those still dead
        stay until someone decides."""
        with psycopg.connect(self._database_url) as conn:
            return conn.execute(
                "DELETE FROM dead_letters WHERE state IN ('retried', 'discarded') "
                "AND resolved_at < now() - make_interval(secs => %s)",
                [days * 86400],
            ).rowcount

    def discard(self, dead_letter_id: int) -> bool:
        with psycopg.connect(self._database_url) as conn:
            cursor = conn.execute(
                "UPDATE dead_letters SET state = 'discarded', resolved_at = now() "
                "WHERE id = %s AND state = 'dead'",
                [dead_letter_id],
            )
            return cursor.rowcount == 1
