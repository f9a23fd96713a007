"""The webhook inbox (`inbox_deliveries`, created by migration 0001), as workers and operators
use it (synchronous). Every statement on the table is here: the webhook path's group commits
(`intake_writer.py`) run `STORE` on their own connections, an orders poll `store`s the orders
it found as deliveries, and the dead letters `park` and `unpark` the deliveries their messages
carried."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg import Connection
from psycopg.rows import dict_row

from application.intake import Delivery, DeliveryState
from application.intake_processing import DeliveryResult
from infrastructure import observations
from infrastructure.channels.base import Lane
from infrastructure.observations import Reported
from infrastructure.postgres import open_pool

# How long a worker holds the deliveries it took; a killed worker's batch is free again after.
CLAIM_SECONDS = 10
# The actors whose messages carry inbox ids, one per lane.
INTAKE_ACTORS = {lane: f"apply_{lane.name.lower()}" for lane in Lane}

# The webhook path's insert, a batch of deliveries at once (binary arrays: no text escaping);
# a delivery stored before returns no row. The headers come as JSON text, encoded by orjson:
# psycopg's Jsonb array encoded each with the standard library, a twentieth of the request.
STORE = (
    "INSERT INTO inbox_deliveries "
    "(channel_id, delivery_key, topic, lane, headers, body) "
    "SELECT channel_id, delivery_key, topic, lane, headers::jsonb, body FROM unnest("
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bytea[]) "
    "AS d(channel_id, delivery_key, topic, lane, headers, body) "
    "ON CONFLICT (channel_id, delivery_key) DO NOTHING "
    "RETURNING id, channel_id, delivery_key"
)


@dataclass(frozen=True)
class IncomingDelivery:
    """A delivery to store: verified (a webhook) or read from the channel (an orders poll)."""

    channel_id: str
    delivery_key: str
    topic: str
    lane: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Stored:
    """`id` is the inbox row's id, or None when the same delivery was stored before."""

    id: int | None
    delivery: IncomingDelivery


def columns(deliveries: Sequence[IncomingDelivery]) -> list[list[object]]:
    """`STORE`'s parameters for `deliveries`."""
    return [
        [d.channel_id for d in deliveries],
        [d.delivery_key for d in deliveries],
        [d.topic for d in deliveries],
        [d.lane for d in deliveries],
        [orjson.dumps(dict(d.headers)).decode() for d in deliveries],
        [d.body for d in deliveries],
    ]


def store(conn: Connection[Any], deliveries: Sequence[IncomingDelivery]) -> list[Stored]:
    """Store `deliveries` in one statement, each as `STORE` does (a key stored before is left
    as it is: its `Stored.id` is None)."""
    if not deliveries:
        return []
    rows = conn.execute(STORE, columns(deliveries)).fetchall()
    ids = {(channel_id, key): row_id for row_id, channel_id, key in rows}
    return [Stored(ids.get((d.channel_id, d.delivery_key)), d) for d in deliveries]


def park(conn: Connection[Any], ids: Sequence[int], reason: str) -> None:
    """Park the pending deliveries among `ids`: their processing failed for good."""
    conn.execute(
        "UPDATE inbox_deliveries SET state = 'parked', reason = %s "
        "WHERE id = ANY(%s) AND state = 'pending'",
        [reason, list(ids)],
    )


def unpark(conn: Connection[Any], ids: Sequence[int]) -> None:
    """Make the parked deliveries among `ids` pending again (their dead letter is retried)."""
    conn.execute(
        "UPDATE inbox_deliveries SET state = 'pending', reason = NULL "
        "WHERE id = ANY(%s) AND state = 'parked'",
        [list(ids)],
    )


def waiting_counts(conn: Connection[Any]) -> tuple[dict[str, int], datetime | None]:
    """How many deliveries are pending, parked and waiting (each read by its own partial
    index), and when the oldest pending one was enqueued. Processed ones, the history kept
    for days, are not counted: that is a scan of the table."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM inbox_deliveries WHERE state = 'pending'), "
        "(SELECT count(*) FROM inbox_deliveries WHERE state = 'parked'), "
        "(SELECT count(*) FROM inbox_deliveries WHERE state = 'waiting'), "
        "(SELECT min(enqueued_at) FROM inbox_deliveries WHERE state = 'pending')"
    ).fetchone()
    assert row is not None  # an aggregate answers one row
    pending, parked, waiting, oldest = row
    return {"pending": pending, "parked": parked, "waiting": waiting}, oldest


class PostgresInbox:
    """Implements the `Inbox` port of intake processing."""

    def __init__(
        self, database_url: str, max_size: int = 8, *, statement_timeout_ms: int | None = None
    ) -> None:
        self._pool = open_pool(database_url, max_size, statement_timeout_ms)

    def close(self) -> None:
        self._pool.close()

    def _rows(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as curs:
            curs.execute(query, params)
            return curs.fetchall() if curs.description else []

    def claim(self, ids: Sequence[int], lane: str, limit: int) -> list[Delivery]:
        rows = self._rows(
            "UPDATE inbox_deliveries SET claimed_until = now() + make_interval(secs => %s) "
            "WHERE id IN (SELECT id FROM inbox_deliveries WHERE state = 'pending' "
            " AND (claimed_until IS NULL OR claimed_until < now()) "
            " AND (id = ANY(%s) OR lane = %s) ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING id, channel_id, delivery_key, topic, headers, body, received_at",
            [CLAIM_SECONDS, list(ids), lane, limit],
        )
        return [Delivery(**{**row, "body": bytes(row["body"])}) for row in rows]

    def unclaim(self, ids: Sequence[int]) -> None:
        self._rows(
            "UPDATE inbox_deliveries SET claimed_until = NULL WHERE id = ANY(%s)", [list(ids)]
        )

    def finish(self, results: Sequence[DeliveryResult]) -> None:
        """Mark deliveries done, with what they taught us, in one transaction."""
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as curs:
            # One statement for the batch, not one per delivery.
            curs.execute(
                "UPDATE inbox_deliveries AS d SET state = r.state, reason = r.reason, "
                "processed_at = now(), claimed_until = NULL "
                "FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS r(id, state, reason) "
                "WHERE d.id = r.id AND d.state = 'pending'",
                [
                    [r.delivery.id for r in results],
                    [r.state.value for r in results],
                    [r.reason for r in results],
                ],
            )
            curs.executemany(
                "UPDATE inbox_deliveries SET waiting_for = %s WHERE id = %s",
                [(list(r.waiting_for), r.delivery.id) for r in results if r.waiting_for],
            )
            observations.file(
                curs, [Reported(o, r.delivery.id) for r in results for o in r.observations]
            )

    def stale_pending(self, older_than_seconds: float, limit: int = 1000) -> list[dict[str, Any]]:
        """Pending deliveries whose last enqueue is older than the given age, marked as
        enqueued again now (the sweeper sends them)."""
        return self._rows(
            "UPDATE inbox_deliveries SET enqueued_at = now() WHERE id IN ("
            " SELECT id FROM inbox_deliveries WHERE state = 'pending'"
            " AND enqueued_at < now() - make_interval(secs => %s)"
            " AND (claimed_until IS NULL OR claimed_until < now())"
            " ORDER BY enqueued_at LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING id, lane",
            [older_than_seconds, limit],
        )

    def deliveries(self, state: DeliveryState, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT id, channel_id, delivery_key, topic, received_at, state, reason, "
            "processed_at, coalesce(waiting_for, '{}') AS waiting_for "
            "FROM inbox_deliveries WHERE state = %s ORDER BY id DESC LIMIT %s",
            [state.value, limit],
        )
        return [_jsonable(row) for row in rows]

    def count(self, state: DeliveryState) -> int:
        """How many deliveries are in `state`."""
        rows = self._rows("SELECT count(*) AS n FROM inbox_deliveries WHERE state = %s", [state])
        return int(rows[0]["n"])

    def release_waiting(
        self, known_skus: Callable[[set[str]], set[str]], limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Put back to pending the waiting deliveries whose SKUs the ledger now knows (all of
        them); returns their ids and lanes, to send."""
        waiting = self._rows(
            "SELECT id, waiting_for FROM inbox_deliveries WHERE state = 'waiting' "
            "ORDER BY id LIMIT %s",
            [limit],
        )
        if not waiting:
            return []
        known = known_skus({sku for row in waiting for sku in row["waiting_for"] or ()})
        ready = [row["id"] for row in waiting if set(row["waiting_for"] or ()) <= known]
        if not ready:
            return []
        return self._rows(
            "UPDATE inbox_deliveries SET state = 'pending', reason = NULL, waiting_for = NULL,"
            " enqueued_at = now(), claimed_until = NULL WHERE id = ANY(%s) AND state = 'waiting'"
            " RETURNING id, lane",
            [ready],
        )

    def release(self, delivery_id: int) -> dict[str, Any] | None:
        """Put a parked delivery back to pending (after review); None if it is not parked."""
        row = self._rows(
            "UPDATE inbox_deliveries SET state = 'pending', reason = NULL, enqueued_at = now(),"
            " claimed_until = NULL WHERE id = %s AND state = 'parked' RETURNING id, lane",
            [delivery_id],
        )
        return row[0] if row else None

    def delivery(self, delivery_id: int) -> dict[str, Any] | None:
        """One delivery with its headers and body (the body as text, bytes that are not UTF-8
        replaced: for a person to read, never to apply); None if there is no such delivery."""
        rows = self._rows(
            "SELECT id, channel_id, delivery_key, topic, received_at, state, reason, "
            "processed_at, coalesce(waiting_for, '{}') AS waiting_for, headers, body "
            "FROM inbox_deliveries WHERE id = %s",
            [delivery_id],
        )
        if not rows:
            return None
        return _jsonable({**rows[0], "body": bytes(rows[0]["body"]).decode(errors="replace")})

    def discard(self, delivery_id: int, by: str) -> bool:
        """Discard a parked or waiting delivery for good (a person decided it will never
        apply), saying who did; False if it is neither."""
        rows = self._rows(
            "UPDATE inbox_deliveries SET state = 'discarded', reason = %s, processed_at = now(),"
            " waiting_for = NULL WHERE id = %s AND state IN ('parked', 'waiting') RETURNING id",
            [f"discarded by {by}", delivery_id],
        )
        return bool(rows)

    def prune(self, deliveries_days: float, observations_days: float) -> dict[str, int]:
        """Delete processed and discarded deliveries and channel observations older than these
        many days; parked and waiting deliveries stay until someone or something deals with
        them."""
        with self._pool.connection() as conn:
            deliveries = conn.execute(
                "DELETE FROM inbox_deliveries WHERE state IN ('processed', 'discarded') "
                "AND processed_at < now() - make_interval(secs => %s)",
                [deliveries_days * 86400],
            ).rowcount
            observed = observations.prune(conn, observations_days)
        return {"deliveries": deliveries, "observations": observed}

    def observations(self, channel_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._pool.connection() as conn:
            return [_jsonable(row) for row in observations.latest(conn, channel_id, limit)]


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
