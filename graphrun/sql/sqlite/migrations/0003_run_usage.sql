-- Run analytics (graphrun stats, GET /stats): the tokens each run's model calls used, by model, and an
-- index for time windows over the runs.
ALTER TABLE runs ADD COLUMN usage TEXT;
CREATE INDEX runs_created ON runs (created_at);
