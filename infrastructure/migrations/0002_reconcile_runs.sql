-- Reconciliation runs (infrastructure/reconcile/runs.py): one row per run of a channel, its
-- steps worked one Dramatiq message each (`step`: the next one to do), its counts, and the
-- lease of the worker on it (a run whose worker died is claimed again once its lease is over).
CREATE TABLE reconcile_runs (
    id bigserial PRIMARY KEY,
    channel_id text NOT NULL,
    what text NOT NULL CHECK (what IN ('orders', 'levels', 'both')),
    -- requested (the API, the CLI, a trigger), or the schedule that made it
    scope text NOT NULL CHECK (scope IN ('requested', 'orders', 'active', 'catalog')),
    skus text[],  -- NULL: every SKU the channel lists
    -- A scheduled run's slot ('<scope>:<epoch seconds>'): several schedulers make one row.
    due_key text,
    state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    step integer NOT NULL DEFAULT 0,
    steps integer NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    orders_found integer NOT NULL DEFAULT 0,
    orders_applied integer NOT NULL DEFAULT 0,
    skus_read integer NOT NULL DEFAULT 0,
    corrected integer NOT NULL DEFAULT 0,
    escalated integer NOT NULL DEFAULT 0,
    requested_at timestamptz NOT NULL DEFAULT now(),
    requested_by text NOT NULL DEFAULT '',
    sent_at timestamptz,
    claimed_until timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    error text,
    UNIQUE (channel_id, due_key));
CREATE INDEX reconcile_runs_channel_idx ON reconcile_runs (channel_id, id DESC);
CREATE INDEX reconcile_runs_open_idx ON reconcile_runs (id) WHERE state IN ('queued', 'running');
