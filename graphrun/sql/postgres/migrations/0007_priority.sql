-- Run priority (langgraph_sdk.Priority, priority.path in langgraph.json): a thread's settings are
-- assigned at its first run and kept (NULL: none yet); each run carries its thread's priority, so a
-- claim orders its candidates without a join (-5 runs first, 5 last, 0 by default).
ALTER TABLE threads ADD COLUMN IF NOT EXISTS priority SMALLINT;
ALTER TABLE threads ADD COLUMN IF NOT EXISTS fairness_group TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 0;
