-- Crons: schedules of runs. A worker fires a due cron by moving next_run_date on (only if it is still
-- the tick it read) and writing the run, in one transaction, so each tick fires once across workers.
-- A cron goes with its thread and with its assistant.
CREATE TABLE IF NOT EXISTS crons (
    cron_id          TEXT PRIMARY KEY,
    assistant_id     TEXT NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    thread_id        TEXT REFERENCES threads (thread_id) ON DELETE CASCADE,
    user_id          TEXT,
    schedule         TEXT NOT NULL,
    timezone         TEXT,
    end_time         TIMESTAMPTZ,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    on_run_completed TEXT,
    next_run_date    TIMESTAMPTZ,
    payload          JSONB NOT NULL DEFAULT '{}',
    metadata         JSONB NOT NULL DEFAULT '{}',
    template         JSONB NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS crons_due ON crons (next_run_date) WHERE enabled;
CREATE INDEX IF NOT EXISTS crons_thread ON crons (thread_id);
CREATE INDEX IF NOT EXISTS crons_assistant ON crons (assistant_id);
