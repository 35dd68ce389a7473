-- Finishing a run in one round trip (the worker does it once per run). The statements are those of
-- SqlStore.finish_run, in its order: the thread's row first (see lock_thread), then the run, under its
-- lease (fencing: this attempt, still running), then the thread's status from the runs it still has.
-- Each statement of a PL/pgSQL function takes a new snapshot (READ COMMITTED), so the last one sees a
-- run created on the thread while the first waited for the lock, as a separate statement would.
CREATE FUNCTION graphrun_finish_run(p_run_id TEXT, p_attempt INTEGER, p_thread_id TEXT, p_status TEXT,
                                    p_output JSONB, p_error JSONB, p_thread_status TEXT, p_values JSONB,
                                    p_interrupts JSONB, p_now TIMESTAMPTZ)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM threads WHERE thread_id = p_thread_id FOR UPDATE;
    UPDATE runs
    SET status = p_status, output = p_output, error = p_error, lease_owner = NULL, lease_expires_at = NULL,
        updated_at = p_now
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
