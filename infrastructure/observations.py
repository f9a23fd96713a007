"""What channels report of their own stock (`channel_observations`) and the channel's own ids
of our SKUs (`channel_listings`), both created by migration 0001. The only module that writes
or reads them: intake files what webhooks report, the pushers what refusals show and the ids
their gateways looked up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import dict_row, tuple_row

from application.intake import Observation
from infrastructure import outbox


@dataclass(frozen=True)
class Reported:
    """An observation as a webhook delivered it (`delivery_id`)."""

    observation: Observation
    delivery_id: int


def file(curs: Cursor[Any], reported: Sequence[Reported]) -> None:
    """File observations under our SKU (the channel may name its own item), marked an echo
    when the channel shows what it last acknowledged from us (no drift, most often the webhook
    our own push caused)."""
    if not reported:
        return
    skus = _our_skus(curs, [(r.observation.channel_id, r.observation.sku) for r in reported])
    rows = [(r, skus.get((r.observation.channel_id, r.observation.sku))) for r in reported]
    keys = {(r.observation.channel_id, sku or r.observation.sku) for r, sku in rows}
    acknowledged = outbox.acknowledged_quantities(curs, keys)
    curs.executemany(
        "INSERT INTO channel_observations (channel_id, sku, location, quantity, observed_at, "
        "reference, delivery_id, echo) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [_row(r, sku or r.observation.sku, acknowledged) for r, sku in rows],
    )


def _row(reported: Reported, sku: str, acknowledged: dict[tuple[str, str], int]) -> tuple[Any, ...]:
    o = reported.observation
    echo = acknowledged.get((o.channel_id, sku)) == o.quantity
    return (o.channel_id, sku, o.location, o.quantity, o.observed_at, o.reference,
            reported.delivery_id, echo)  # fmt: skip


def _our_skus(curs: Cursor[Any], refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Our SKU of each `(channel, item ref)` the channel's gateway filed."""
    channels, items = zip(*refs, strict=True)
    with curs.connection.cursor(row_factory=tuple_row) as reader:
        rows = reader.execute(
            "SELECT l.channel_id, l.item_ref, l.sku FROM channel_listings l "
            "JOIN unnest(%s::text[], %s::text[]) AS r(channel_id, item_ref) "
            "ON l.channel_id = r.channel_id AND l.item_ref = r.item_ref",
            [list(channels), list(items)],
        ).fetchall()
    return {(channel_id, ref): sku for channel_id, ref, sku in rows}


def shown_on_refusal(
    conn: Connection[Any], channel_id: str, seen: Sequence[tuple[str, int]], reference: str
) -> None:
    """File `(sku, quantity)` the channel was seen to show (refusing a push), for
    reconciliation."""
    with conn.cursor() as curs:
        curs.executemany(
            "INSERT INTO channel_observations (channel_id, sku, location, quantity, "
            "observed_at, reference) VALUES (%s, %s, '', %s, now(), %s)",
            [(channel_id, sku, quantity, reference) for sku, quantity in seen],
        )


def last_id(conn: Connection[Any]) -> int:
    """The newest observation's id (0: none yet): where a reader of new ones starts."""
    row = conn.execute("SELECT coalesce(max(id), 0) FROM channel_observations").fetchone()
    return int(row[0]) if row else 0


def unexplained_after(conn: Connection[Any], after: int, limit: int) -> list[tuple[int, str, str]]:
    """`(id, channel, sku)` of the observations after id `after` that are not echoes of our
    pushes (a hand edit, a sale, a compare-and-set refused), oldest first."""
    with conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            "SELECT id, channel_id, sku FROM channel_observations "
            "WHERE id > %s AND NOT echo ORDER BY id LIMIT %s",
            [after, limit],
        ).fetchall()
    return [(int(i), channel_id, sku) for i, channel_id, sku in rows]


def remember_listings(
    conn: Connection[Any], channel_id: str, refs: Sequence[tuple[str, str]]
) -> None:
    """File the channel's own `(item ref, sku)` names, so its observations find our SKUs."""
    with conn.cursor() as curs:
        curs.executemany(
            "INSERT INTO channel_listings (channel_id, item_ref, sku) VALUES (%s, %s, %s) "
            "ON CONFLICT (channel_id, item_ref) DO UPDATE SET sku = EXCLUDED.sku",
            [(channel_id, ref, sku) for ref, sku in refs],
        )


def latest(conn: Connection[Any], channel_id: str, limit: int) -> list[dict[str, Any]]:
    """The channel's newest observations, newest first."""
    with conn.cursor(row_factory=dict_row) as curs:
        curs.execute(
            "SELECT channel_id, sku, location, quantity, observed_at, reference, delivery_id, "
            "echo FROM channel_observations WHERE channel_id = %s ORDER BY id DESC LIMIT %s",
            [channel_id, limit],
        )
        return curs.fetchall()


def prune(conn: Connection[Any], days: float) -> int:
    """Delete observations older than `days`; returns how many went."""
    return conn.execute(
        "DELETE FROM channel_observations WHERE observed_at < now() - make_interval(secs => %s)",
        [days * 86400],
    ).rowcount
