-- A run's catalogue is read a page per message: `page_cursor` is where the next page starts (the
-- kind's own text; NULL: the first page). Owned by infrastructure/reconcile/runs.py.
ALTER TABLE reconcile_runs ADD COLUMN page_cursor text;

-- Level readings a run took and has not judged yet: each is judged once its settle time has
-- passed, by whichever step of the run comes next, and deleted in the same transaction, so no
-- reading is judged twice. Owned by infrastructure/reconcile/readings.py.
CREATE TABLE reconcile_readings (
    run_id bigint NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    sku text NOT NULL,
    quantity integer NOT NULL,
    read_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, sku));
