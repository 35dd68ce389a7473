-- Run analytics (graphrun stats, GET /stats): the tokens each run's model calls used, by model, and an
-- index for time windows over the runs.
ALTER TABLE runs ADD COLUMN usage JSONB;
CREATE INDEX runs_created ON runs (created_at);
-- graphrun_finish_run (0003) with the run's usage, as an overload: the 10-argument one stays for the
-- processes of the previous release that still run during a rolling upgrade.
CREATE FUNCTION graphrun_finish_run(p_run_id TEXT, p_attempt INTEGER, p_thread_id TEXT, p_status TEXT,
                                    p_output JSONB, p_error JSONB, p_thread_status TEXT, p_values JSONB,
                                    p_interrupts JSONB, p_now TIMESTAMPTZ,
                                    p_usage JSONB)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM threads WHERE thread_id = p_thread_id FOR UPDATE;
    UPDATE runs
    SET status = p_status, output = p_output, error = p_error, lease_owner = NULL, lease_expires_at = NULL,
        updated_at = p_now, usage = p_usage
    WHERE run_id = p_run_id AND attempt = p_attempt AND status = 'running';
    IF NOT FOUND THEN
        RETURN FALSE;  -- the lease was lost: nothing changes
    END IF;
    UPDATE threads
    SET status = CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = p_thread_id
                                     AND r.status IN ('pending', 'running')) THEN 'busy' ELSE p_thread_status END,
        state_values = COALESCE(p_values, state_values), interrupts = p_interrupts, error = p_error,
        updated_at = p_now, state_updated_at = p_now
    WHERE thread_id = p_thread_id;
    RETURN TRUE;
END $$;
