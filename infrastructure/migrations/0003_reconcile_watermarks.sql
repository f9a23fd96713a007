-- How far each channel's orders have been listed (reconciliation): the next poll lists from
-- here less the overlap. Owned by infrastructure/reconcile/watermarks.py.
CREATE TABLE IF NOT EXISTS reconcile_watermarks (
    channel_id text PRIMARY KEY,
    orders_listed_to timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now());
