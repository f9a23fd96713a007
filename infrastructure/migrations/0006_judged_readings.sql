-- A reading stays with its run once judged, marked `judged`, until the run is done: a step
-- worked again (a worker killed after its page's readings were judged, its step resumed by
-- another) reads the page again, and the marked row keeps that SKU from being judged twice.
-- Owned by infrastructure/reconcile/readings.py.
ALTER TABLE reconcile_readings ADD COLUMN judged boolean NOT NULL DEFAULT false;
