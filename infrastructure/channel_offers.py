"""Each SKU's published offers on a channel as its gateway last looked them up
(`channel_offers`, created by migration 0007). The only module that writes or reads the table:
the pushers' store files and reads through it what their gateways looked up
(`channels/offer_file.py`), so a gateway started afresh need not ask the channel again; a lookup
past its hour is pruned with what else is kept only for a while (`retention.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import Connection

from infrastructure.channels.offer_file import OFFER_SECONDS, Lookup


def filed(conn: Connection[Any], channel_id: str, skus: Sequence[str]) -> dict[str, Lookup]:
    """The channel's lookups on file of those of `skus` (the channel's SKUs) that have one."""
    rows = conn.execute(
        "SELECT sku, offer_ids, listing_ids, looked_up_at FROM channel_offers "
        "WHERE channel_id = %s AND sku = ANY(%s)",
        [channel_id, list(skus)],
    ).fetchall()
    return {
        sku: Lookup(tuple(zip(offer_ids, listing_ids, strict=True)), at)
        for sku, offer_ids, listing_ids, at in rows
    }


def file(conn: Connection[Any], channel_id: str, found: Mapping[str, Lookup]) -> None:
    """File each SKU's lookup in place of an older one: two workers that looked the same SKU up
    keep the later answer, whichever files last."""
    with conn.cursor() as curs:
        curs.executemany(
            "INSERT INTO channel_offers (channel_id, sku, offer_ids, listing_ids, looked_up_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (channel_id, sku) DO UPDATE SET "
            "offer_ids = excluded.offer_ids, listing_ids = excluded.listing_ids, "
            "looked_up_at = excluded.looked_up_at "
            "WHERE channel_offers.looked_up_at < excluded.looked_up_at",
            # In SKU order, as rows are locked: two workers filing at once cannot deadlock.
            [_row(channel_id, sku, found[sku]) for sku in sorted(found)],
        )


def _row(channel_id: str, sku: str, lookup: Lookup) -> tuple[Any, ...]:
    offer_ids = [offer_id for offer_id, _ in lookup.offers]
    listing_ids = [listing_id for _, listing_id in lookup.offers]
    return (channel_id, sku, offer_ids, listing_ids, lookup.at)


def forget(conn: Connection[Any], channel_id: str, skus: Sequence[str]) -> None:
    """Forget the channel's lookups of `skus`."""
    conn.execute(
        "DELETE FROM channel_offers WHERE channel_id = %s AND sku = ANY(%s)",
        [channel_id, list(skus)],
    )


def prune(conn: Connection[Any]) -> int:
    """Delete every channel's lookups past the hour they hold (`OFFER_SECONDS`): no gateway
    takes one again, it looks the SKU up afresh and files that in its place; returns how many
    went."""
    return conn.execute(
        "DELETE FROM channel_offers WHERE looked_up_at < now() - make_interval(secs => %s)",
        [OFFER_SECONDS],
    ).rowcount
