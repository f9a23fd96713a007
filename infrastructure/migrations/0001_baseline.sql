-- invsync's own tables as the release before versioned migrations (441b73b) created them.
-- Written as that release wrote them (IF NOT EXISTS, columns added to older tables), so a
-- database of that release or an earlier one reaches the same schema as a fresh one; every
-- later change is a new file of plain DDL.

-- Intake (infrastructure/inbox.py, intake_writer.py): the webhook inbox. Plain tables: none of
-- them takes the event store's table lock.
CREATE TABLE IF NOT EXISTS inbox_deliveries (
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
    UNIQUE (channel_id, delivery_key));
CREATE INDEX IF NOT EXISTS inbox_deliveries_pending_idx
    ON inbox_deliveries (enqueued_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS inbox_deliveries_lane_idx
    ON inbox_deliveries (lane, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS inbox_deliveries_parked_idx
    ON inbox_deliveries (received_at) WHERE state = 'parked';
-- A delivery naming SKUs the ledger does not know yet waits for them.
ALTER TABLE inbox_deliveries ADD COLUMN IF NOT EXISTS waiting_for text[];
CREATE INDEX IF NOT EXISTS inbox_deliveries_waiting_idx
    ON inbox_deliveries (id) WHERE state = 'waiting';

-- What channels report of their own stock.
CREATE TABLE IF NOT EXISTS channel_observations (
    id bigserial PRIMARY KEY,
    channel_id text NOT NULL,
    sku text NOT NULL,
    location text NOT NULL,
    quantity integer NOT NULL,
    observed_at timestamptz NOT NULL,
    reference text NOT NULL,
    delivery_id bigint,
    recorded_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS channel_observations_sku_idx
    ON channel_observations (channel_id, sku, observed_at);
-- An echo: the channel shows what we last pushed to it (most often the webhook our own push
-- caused), which is no drift.
ALTER TABLE channel_observations ADD COLUMN IF NOT EXISTS echo boolean NOT NULL DEFAULT false;

-- The channel's own ids of our SKUs (a Shopify inventory item), as its gateway looked them up:
-- observations keyed by such an id are filed under the SKU.
CREATE TABLE IF NOT EXISTS channel_listings (
    channel_id text NOT NULL,
    item_ref text NOT NULL,
    sku text NOT NULL,
    PRIMARY KEY (channel_id, item_ref));

CREATE TABLE IF NOT EXISTS dead_letters (
    id bigserial PRIMARY KEY,
    message_id text NOT NULL UNIQUE,
    queue_name text NOT NULL,
    actor_name text NOT NULL,
    message jsonb NOT NULL,
    error text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    state text NOT NULL DEFAULT 'dead',
    resolved_at timestamptz);

-- Idempotency keys of API POSTs (infrastructure/idempotency.py).
CREATE TABLE IF NOT EXISTS api_idempotency (
    owner text NOT NULL DEFAULT '',
    key text NOT NULL,
    request_hash text NOT NULL,
    status integer,
    body jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    claim uuid,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, key));
-- Tables of earlier versions: keys shared by every token, no pending state.
ALTER TABLE api_idempotency ADD COLUMN IF NOT EXISTS owner text NOT NULL DEFAULT '';
ALTER TABLE api_idempotency ADD COLUMN IF NOT EXISTS claim uuid;
ALTER TABLE api_idempotency ADD COLUMN IF NOT EXISTS claimed_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE api_idempotency ALTER COLUMN status DROP NOT NULL;
ALTER TABLE api_idempotency ALTER COLUMN body DROP NOT NULL;
DO $$ BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_attribute a
          ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = 'api_idempotency'::regclass AND i.indisprimary
          AND a.attname = 'owner')
    THEN
        ALTER TABLE api_idempotency DROP CONSTRAINT IF EXISTS api_idempotency_pkey;
        ALTER TABLE api_idempotency ADD PRIMARY KEY (owner, key);
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS api_idempotency_created_idx ON api_idempotency (created_at);

-- Reservations (infrastructure/reservation_store.py).
CREATE TABLE IF NOT EXISTS reservations (
    id text PRIMARY KEY,
    sku text NOT NULL,
    location text NOT NULL,
    quantity integer NOT NULL,
    expires_at timestamptz,
    created_at timestamptz NOT NULL,
    released_at timestamptz,
    release_reason text);
CREATE INDEX IF NOT EXISTS reservations_expiry_idx
    ON reservations (expires_at) WHERE released_at IS NULL;
-- Rows of earlier versions were written after the ledger's hold: confirmed.
ALTER TABLE reservations ADD COLUMN IF NOT EXISTS confirmed boolean NOT NULL DEFAULT true;
CREATE INDEX IF NOT EXISTS reservations_unconfirmed_idx
    ON reservations (created_at) WHERE NOT confirmed;

-- The outbox (infrastructure/outbox.py): what each channel should show, and what it last
-- acknowledged. Pending: a position not pushed yet (the projection moves `position`, the
-- pushers the rest).
CREATE TABLE IF NOT EXISTS availability_outbox (
    channel_id text NOT NULL,
    sku text NOT NULL,
    quantity bigint NOT NULL,
    version bigint NOT NULL,
    position bigint NOT NULL,
    changed_at timestamptz NOT NULL,
    kind text NOT NULL,
    first_changed_at timestamptz NOT NULL,
    pushed_position bigint NOT NULL DEFAULT 0,
    pushed_version bigint NOT NULL DEFAULT 0,
    acknowledged_quantity bigint,
    acknowledged_at timestamptz,
    PRIMARY KEY (channel_id, sku));
CREATE INDEX IF NOT EXISTS availability_outbox_pending
    ON availability_outbox (channel_id, position) WHERE position > pushed_position;

-- One row per acknowledged push of a (channel, SKU): the consistency window of the changes it
-- carried. Kept for an hour; read back as percentiles per channel and kind.
CREATE TABLE IF NOT EXISTS push_windows (
    channel_id text NOT NULL,
    kind text NOT NULL,
    seconds double precision NOT NULL,
    acknowledged_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS push_windows_by_time ON push_windows USING brin (acknowledged_at);

-- Pushes the channel took for processing later (an Amazon feed), one per SKU at most: the
-- outbox row as it was sent, kept until the channel answers for it. A SKU in here is not
-- pushed again meanwhile, so an older quantity never lands after a newer one.
CREATE TABLE IF NOT EXISTS push_submissions (
    channel_id text NOT NULL,
    sku text NOT NULL,
    ticket text NOT NULL,
    ordinal integer NOT NULL,
    quantity bigint NOT NULL,
    version bigint NOT NULL,
    position bigint NOT NULL,
    kind text NOT NULL,
    first_changed_at timestamptz NOT NULL,
    acknowledged_quantity bigint,
    acknowledged_at timestamptz,
    pushed_version bigint NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, sku));

-- Pushes a channel refused, by the code it gave (CHANGE_FROM_QUANTITY_STALE, ...): kept for an
-- hour and counted beside the consistency windows, which only accepted pushes close.
CREATE TABLE IF NOT EXISTS push_refusals (
    channel_id text NOT NULL,
    sku text NOT NULL,
    code text NOT NULL,
    refused_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS push_refusals_by_time ON push_refusals USING brin (refused_at);

-- Units a channel lost on its own (its shoppers' sales, seen in compare-and-set refusals) since
-- the ledger held `sold` of its units sold of the SKU and none was unrecorded: no push raises
-- the channel over the ones still unrecorded (push/decisions.py). `since`: the last loss.
-- `sold` counts the sales of days from `day` on: older days add the same to both sides of a
-- comparison, and reading them all for every pending row cost 24 ms per 1,000 rows.
CREATE TABLE IF NOT EXISTS push_drift (
    channel_id text NOT NULL,
    sku text NOT NULL,
    lost bigint NOT NULL,
    sold bigint NOT NULL,
    day date NOT NULL,
    since timestamptz NOT NULL,
    guesses boolean NOT NULL DEFAULT true,
    PRIMARY KEY (channel_id, sku));
