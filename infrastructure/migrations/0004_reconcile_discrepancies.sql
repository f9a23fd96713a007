-- Discrepancies (infrastructure/reconcile/discrepancies.py): drift too large to correct unasked,
-- an event-sourced aggregate (domain/discrepancy.py). Its events are stored here, and the list
-- the review API reads is kept from them in the same transaction.
CREATE TABLE reconcile_discrepancy_events (
    discrepancy_id uuid NOT NULL,
    version bigint NOT NULL,
    topic text NOT NULL,
    state bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (discrepancy_id, version));
CREATE TABLE reconcile_discrepancies (
    id uuid PRIMARY KEY,
    channel_id text NOT NULL,
    sku text NOT NULL,
    observed integer NOT NULL,
    expected integer NOT NULL,
    state text NOT NULL CHECK (state IN ('open', 'resolved')),
    read_at timestamptz NOT NULL,
    detected_at timestamptz NOT NULL,
    evidence jsonb NOT NULL,
    action text,
    reason text,
    resolved_by text,
    resolved_at timestamptz);
-- A SKU has at most one open discrepancy per channel: a later reading adds no second one.
CREATE UNIQUE INDEX reconcile_discrepancies_open_idx
    ON reconcile_discrepancies (channel_id, sku) WHERE state = 'open';
CREATE INDEX reconcile_discrepancies_list_idx
    ON reconcile_discrepancies (state, detected_at DESC);
