-- Thread time-to-live: a thread not updated for ttl_minutes (or GRAPHRUN_THREAD_TTL_MINUTES when NULL)
-- is deleted by the worker's sweeper.
ALTER TABLE threads ADD COLUMN ttl_minutes DOUBLE PRECISION;
