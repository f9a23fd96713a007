"""Tables of intake: the webhook inbox, what channels report of their own stock, the last
state seen of each channel order, and dead letters. Plain tables: none of them takes the event
store's table lock."""

from __future__ import annotations

import psycopg

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS inbox_deliveries (
        id bigserial PRIMARY KEY,
        channel_id text NOT NULL,
        delivery_key text NOT NULL,
        topic text NOT NULL,
        headers jsonb NOT NULL,
        body bytea NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        enqueued_at timestamptz NOT NULL DEFAULT now(),
        lane text NOT NULL,
        state text NOT NULL DEFAULT 'pending',
        claimed_until timestamptz,
        reason text,
        processed_at timestamptz,
        UNIQUE (channel_id, delivery_key))""",
    """CREATE INDEX IF NOT EXISTS inbox_deliveries_pending_idx
        ON inbox_deliveries (enqueued_at) WHERE state = 'pending'""",
    """CREATE INDEX IF NOT EXISTS inbox_deliveries_lane_idx
        ON inbox_deliveries (lane, id) WHERE state = 'pending'""",
    """CREATE INDEX IF NOT EXISTS inbox_deliveries_parked_idx
        ON inbox_deliveries (received_at) WHERE state = 'parked'""",
    # A delivery naming SKUs the ledger does not know yet waits for them.
    "ALTER TABLE inbox_deliveries ADD COLUMN IF NOT EXISTS waiting_for text[]",
    """CREATE INDEX IF NOT EXISTS inbox_deliveries_waiting_idx
        ON inbox_deliveries (id) WHERE state = 'waiting'""",
    """CREATE TABLE IF NOT EXISTS channel_observations (
        id bigserial PRIMARY KEY,
        channel_id text NOT NULL,
        sku text NOT NULL,
        location text NOT NULL,
        quantity integer NOT NULL,
        observed_at timestamptz NOT NULL,
        reference text NOT NULL,
        delivery_id bigint,
        recorded_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE INDEX IF NOT EXISTS channel_observations_sku_idx
        ON channel_observations (channel_id, sku, observed_at)""",
    # An echo: the channel shows what we last pushed to it (most often the webhook our own push
    # caused), which is no drift.
    """ALTER TABLE channel_observations ADD COLUMN IF NOT EXISTS echo boolean NOT NULL
        DEFAULT false""",
    # The channel's own ids of our SKUs (a Shopify inventory item), as its gateway looked them
    # up: observations keyed by such an id are filed under the SKU.
    """CREATE TABLE IF NOT EXISTS channel_listings (
        channel_id text NOT NULL,
        item_ref text NOT NULL,
        sku text NOT NULL,
        PRIMARY KEY (channel_id, item_ref))""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id bigserial PRIMARY KEY,
        message_id text NOT NULL UNIQUE,
        queue_name text NOT NULL,
        actor_name text NOT NULL,
        message jsonb NOT NULL,
        error text NOT NULL,
        failed_at timestamptz NOT NULL DEFAULT now(),
        state text NOT NULL DEFAULT 'dead',
        resolved_at timestamptz)""",
)


def create_intake_tables(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for statement in STATEMENTS:
            conn.execute(statement)
