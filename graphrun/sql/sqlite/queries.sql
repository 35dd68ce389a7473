-- Named queries of the SQLite control store. Parameters are :name. JSON filters arrive as JSON text and
-- are matched by json_contains(document, filter), a function the store registers on its connections
-- with the semantics of Postgres' jsonb @>, so that no query is ever assembled from strings.

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                                              applied_at TEXT NOT NULL);

-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version, name, applied_at) VALUES (:version, :name, :now);

-- ---------------------------------------------------------------- assistants

-- name: get_assistant
SELECT * FROM assistants WHERE assistant_id = :assistant_id;

-- name: insert_assistant
INSERT INTO assistants (assistant_id, graph_id, config, context, metadata, name, description, version,
                        created_at, updated_at)
VALUES (:assistant_id, :graph_id, :config, :context, :metadata, :name, :description, 1, :now, :now);

-- name: insert_assistant_version
INSERT INTO assistant_versions (assistant_id, version, graph_id, config, context, metadata, name, description,
                                created_at)
VALUES (:assistant_id, :version, :graph_id, :config, :context, :metadata, :name, :description, :now);

-- name: max_assistant_version
SELECT COALESCE(MAX(version), 0) AS version FROM assistant_versions WHERE assistant_id = :assistant_id;

-- name: get_assistant_version
SELECT * FROM assistant_versions WHERE assistant_id = :assistant_id AND version = :version;

-- name: set_assistant_current
UPDATE assistants
SET graph_id = :graph_id, config = :config, context = :context, metadata = :metadata, name = :name,
    description = :description, version = :version, updated_at = :now
WHERE assistant_id = :assistant_id;

-- name: delete_assistant
DELETE FROM assistants WHERE assistant_id = :assistant_id;

-- name: search_assistants
SELECT * FROM assistants a
WHERE (:graph_id IS NULL OR a.graph_id = :graph_id)
  AND (:name IS NULL OR a.name LIKE '%' || :name || '%')
  AND json_contains(a.metadata, :metadata)
  AND (:scope IS NULL OR EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(a.metadata, f.value)))
ORDER BY
  CASE WHEN :sort_order = 'asc' THEN CASE :sort_by WHEN 'assistant_id' THEN a.assistant_id
       WHEN 'graph_id' THEN a.graph_id WHEN 'name' THEN a.name WHEN 'updated_at' THEN a.updated_at
       ELSE a.created_at END END ASC,
  CASE WHEN :sort_order = 'desc' THEN CASE :sort_by WHEN 'assistant_id' THEN a.assistant_id
       WHEN 'graph_id' THEN a.graph_id WHEN 'name' THEN a.name WHEN 'updated_at' THEN a.updated_at
       ELSE a.created_at END END DESC
LIMIT :limit OFFSET :offset;

-- name: count_assistants
SELECT COUNT(*) AS n FROM assistants a
WHERE (:graph_id IS NULL OR a.graph_id = :graph_id)
  AND (:name IS NULL OR a.name LIKE '%' || :name || '%')
  AND json_contains(a.metadata, :metadata)
  AND (:scope IS NULL OR EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(a.metadata, f.value)));

-- name: list_assistant_versions
SELECT * FROM assistant_versions v
WHERE v.assistant_id = :assistant_id
  AND json_contains(v.metadata, :metadata)
ORDER BY v.version DESC
LIMIT :limit OFFSET :offset;

-- ---------------------------------------------------------------- threads

-- name: get_thread
SELECT * FROM threads WHERE thread_id = :thread_id;

-- name: insert_thread
INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata, status, state_values,
                     interrupts, config, ttl_minutes, ttl_strategy)
VALUES (:thread_id, :now, :now, :now, :metadata, 'idle', :values, '{}', :config, :ttl_minutes, :ttl_strategy)
ON CONFLICT (thread_id) DO NOTHING
RETURNING *;  -- no row: the thread already existed

-- name: set_thread_metadata
UPDATE threads SET metadata = :metadata, ttl_minutes = COALESCE(:ttl_minutes, ttl_minutes),
    ttl_strategy = COALESCE(:ttl_strategy, ttl_strategy), updated_at = :now
WHERE thread_id = :thread_id;

-- name: touch_thread
UPDATE threads SET updated_at = :now WHERE thread_id = :thread_id;

-- name: expired_threads
-- Threads with nothing in flight, not updated for their TTL (their own, else :default_ttl_minutes; a
-- NULL or 0 default means never).
SELECT thread_id, COALESCE(ttl_strategy, :default_strategy) AS ttl_strategy FROM threads
WHERE status != 'busy'
  AND COALESCE(ttl_minutes, NULLIF(:default_ttl_minutes, 0)) IS NOT NULL
  AND (julianday(:now) - julianday(updated_at)) * 1440.0 > COALESCE(ttl_minutes, NULLIF(:default_ttl_minutes, 0))
ORDER BY updated_at
LIMIT :limit;

-- name: set_thread_state
UPDATE threads
SET state_values = :values, interrupts = :interrupts, state_updated_at = :now, updated_at = :now,
    status = CASE WHEN status = 'busy' THEN 'busy' ELSE :status END
WHERE thread_id = :thread_id;

-- name: delete_thread
DELETE FROM threads WHERE thread_id = :thread_id;

-- name: search_threads
SELECT * FROM threads t
WHERE (:status IS NULL OR t.status = :status)
  AND (:ids IS NULL OR t.thread_id IN (SELECT value FROM json_each(:ids)))
  AND json_contains(t.metadata, :metadata)
  AND (:scope IS NULL OR EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(t.metadata, f.value)))
  AND json_contains(t.state_values, :values)
ORDER BY
  CASE WHEN :sort_order = 'asc' THEN CASE :sort_by WHEN 'thread_id' THEN t.thread_id
       WHEN 'status' THEN t.status WHEN 'updated_at' THEN t.updated_at
       WHEN 'state_updated_at' THEN t.state_updated_at ELSE t.created_at END END ASC,
  CASE WHEN :sort_order = 'desc' THEN CASE :sort_by WHEN 'thread_id' THEN t.thread_id
       WHEN 'status' THEN t.status WHEN 'updated_at' THEN t.updated_at
       WHEN 'state_updated_at' THEN t.state_updated_at ELSE t.created_at END END DESC
LIMIT :limit OFFSET :offset;

-- name: count_threads
SELECT COUNT(*) AS n FROM threads t
WHERE (:status IS NULL OR t.status = :status)
  AND json_contains(t.metadata, :metadata)
  AND (:scope IS NULL OR EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(t.metadata, f.value)))
  AND json_contains(t.state_values, :values);

-- name: mark_thread_busy
-- Also stores the priority settings a run assigns, unless the thread has settings already (the first
-- kept: the assign function may have been called twice for one thread).
UPDATE threads
SET status = 'busy', metadata = json_patch(metadata, :stamp), updated_at = :now,
    fairness_group = CASE WHEN priority IS NULL THEN :fairness_group ELSE fairness_group END,
    priority = COALESCE(priority, :priority)
WHERE thread_id = :thread_id;

-- name: set_thread_after_run
UPDATE threads
SET status = CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = :thread_id
                                 AND r.status IN ('pending', 'running')) THEN 'busy' ELSE :status END,
    state_values = COALESCE(:values, state_values),
    interrupts = :interrupts, error = :error, updated_at = :now, state_updated_at = :now
WHERE thread_id = :thread_id;

-- name: settle_thread_status
-- After a run left without executing (cancelled while pending, deleted): busy only while runs are in flight.
UPDATE threads
SET status = CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = :thread_id
                                 AND r.status IN ('pending', 'running')) THEN 'busy'
                  WHEN status = 'busy' THEN 'idle' ELSE status END,
    updated_at = :now
WHERE thread_id = :thread_id;

-- ---------------------------------------------------------------- runs

-- name: insert_run
-- The run takes its thread's priority: the one stored, else the one this run assigns (mark_thread_busy
-- then stores it), else 0.
INSERT INTO runs (run_id, thread_id, assistant_id, graph_id, status, metadata, multitask_strategy, request,
                  created_at, updated_at, available_at, priority)
VALUES (:run_id, :thread_id, :assistant_id, :graph_id, 'pending', :metadata, :multitask_strategy, :request,
        :now, :now, :available_at,
        COALESCE((SELECT t.priority FROM threads t WHERE t.thread_id = :thread_id), :priority, 0))
RETURNING *;

-- name: get_run
SELECT * FROM runs WHERE run_id = :run_id AND thread_id = :thread_id;

-- name: get_run_by_id
SELECT * FROM runs WHERE run_id = :run_id;

-- name: inflight_runs
SELECT * FROM runs WHERE thread_id = :thread_id AND status IN ('pending', 'running') ORDER BY created_at;

-- name: inflight_runs_matching
-- Runs in flight anywhere, by status (NULL: pending and running) and assistant (NULL: any), on the
-- threads whose metadata contains one of the documents of the array :scope (NULL: every thread).
SELECT * FROM runs
WHERE status IN ('pending', 'running') AND (:status IS NULL OR status = :status)
  AND (:assistant_id IS NULL OR assistant_id = :assistant_id)
  AND (:scope IS NULL OR thread_id IN (SELECT t.thread_id FROM threads t, json_each(:scope) f
                                       WHERE json_contains(t.metadata, f.value)))
ORDER BY created_at
LIMIT :limit;

-- name: list_runs
SELECT * FROM runs
WHERE thread_id = :thread_id AND (:status IS NULL OR status = :status)
ORDER BY created_at DESC, run_id DESC
LIMIT :limit OFFSET :offset;

-- name: delete_run
DELETE FROM runs WHERE run_id = :run_id AND thread_id = :thread_id;

-- name: delete_old_runs
-- Finished runs that ended more than :days days ago, oldest first, at most :limit (GRAPHRUN_RUN_RETENTION_DAYS).
DELETE FROM runs WHERE run_id IN (
    SELECT run_id FROM runs
    WHERE status NOT IN ('pending', 'running') AND julianday(:now) - julianday(updated_at) > :days
    ORDER BY updated_at
    LIMIT :limit
) RETURNING run_id;

-- name: cancel_pending_run
UPDATE runs SET status = 'interrupted', cancel_action = :action, cancel_reason = COALESCE(cancel_reason, :reason),
    updated_at = :now
WHERE run_id = :run_id AND status = 'pending';

-- name: request_cancel_running
UPDATE runs SET cancel_action = :action, cancel_reason = COALESCE(cancel_reason, :reason), updated_at = :now
WHERE run_id = :run_id AND status = 'running';

-- name: claim_runs
-- The oldest pending run of each thread that has nothing running, if it is ready; at most :limit of
-- them, the lowest priority number first (-5 before 5), then the longest waiting. A run delayed with
-- after_seconds holds its place: later runs on its thread wait behind it.
UPDATE runs
SET status = 'running', attempt = attempt + 1, lease_owner = :worker_id, lease_expires_at = :lease_expires_at,
    updated_at = :now
WHERE run_id IN (
    SELECT run_id FROM (
        SELECT r.run_id, r.available_at, r.created_at, r.priority,
               ROW_NUMBER() OVER (PARTITION BY r.thread_id ORDER BY r.created_at, r.run_id) AS rank
        FROM runs r
        WHERE r.status = 'pending'
          AND NOT EXISTS (SELECT 1 FROM runs b WHERE b.thread_id = r.thread_id AND b.status = 'running')
    )
    WHERE rank = 1 AND available_at <= :now
    ORDER BY priority, available_at, created_at
    LIMIT :limit
)
RETURNING *;

-- name: renew_lease
UPDATE runs SET lease_expires_at = :lease_expires_at
WHERE run_id = :run_id AND attempt = :attempt AND lease_owner = :worker_id AND status = 'running'
RETURNING cancel_action;

-- name: finish_run
UPDATE runs
SET status = :status, output = :output, error = :error, lease_owner = NULL, lease_expires_at = NULL,
    updated_at = :now, usage = :usage
WHERE run_id = :run_id AND attempt = :attempt AND status = 'running'
RETURNING thread_id;

-- name: release_run
UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE run_id = :run_id AND attempt = :attempt AND status = 'running'
RETURNING thread_id;

-- name: expired_runs
SELECT * FROM runs WHERE status = 'running' AND lease_expires_at < :now;

-- name: all_running_runs
SELECT * FROM runs WHERE status = 'running';

-- name: delete_pending_run
-- A pending run cancelled with `rollback` leaves no trace, as on the official server.
DELETE FROM runs WHERE run_id = :run_id AND status = 'pending';

-- name: rollback_run
DELETE FROM runs WHERE run_id = :run_id AND attempt = :attempt AND status = 'running'
RETURNING thread_id;

-- name: set_thread_after_rollback
-- The thread as its head is once the rolled-back run's checkpoints are gone (values NULL: none left).
UPDATE threads
SET status = CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = :thread_id
                                 AND r.status IN ('pending', 'running')) THEN 'busy' ELSE :status END,
    state_values = :values, interrupts = :interrupts, error = NULL, updated_at = :now, state_updated_at = :now
WHERE thread_id = :thread_id;

-- Analytics (ControlStore.run_stats): the runs created in [since, until), of one graph or all. The same
-- numbers on both dialects: percentiles by nearest rank (the smallest value with at least p percent of the
-- values at or below it: row number * 100 >= p * count).

-- name: stats_by_status
SELECT status, COUNT(*) AS runs FROM runs WHERE runs.created_at >= :since AND runs.created_at < :until AND (:graph_id IS NULL OR graph_id = :graph_id) AND (:scope IS NULL OR runs.thread_id IN (SELECT t.thread_id FROM threads t WHERE EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(t.metadata, f.value)))) GROUP BY status ORDER BY status;

-- name: stats_turns
WITH per_thread AS (SELECT thread_id, COUNT(*) AS turns FROM runs WHERE runs.created_at >= :since AND runs.created_at < :until AND (:graph_id IS NULL OR graph_id = :graph_id) AND (:scope IS NULL OR runs.thread_id IN (SELECT t.thread_id FROM threads t WHERE EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(t.metadata, f.value)))) GROUP BY thread_id),
ranked AS (SELECT turns, ROW_NUMBER() OVER (ORDER BY turns) AS rn, COUNT(*) OVER () AS n FROM per_thread)
SELECT COUNT(*) AS threads, AVG(turns) AS turns_avg, MIN(CASE WHEN rn * 100 >= 95 * n THEN turns END) AS turns_p95
FROM ranked;

-- name: stats_latency
WITH done AS (
    SELECT (julianday(updated_at) - julianday(created_at)) * 86400.0 AS s FROM runs
    WHERE runs.created_at >= :since AND runs.created_at < :until AND (:graph_id IS NULL OR graph_id = :graph_id) AND (:scope IS NULL OR runs.thread_id IN (SELECT t.thread_id FROM threads t WHERE EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(t.metadata, f.value)))) AND status IN ('success', 'error', 'timeout', 'interrupted')
),
ranked AS (SELECT s, ROW_NUMBER() OVER (ORDER BY s) AS rn, COUNT(*) OVER () AS n FROM done)
SELECT MIN(CASE WHEN rn * 100 >= 50 * n THEN s END) AS p50,
       MIN(CASE WHEN rn * 100 >= 95 * n THEN s END) AS p95,
       MIN(CASE WHEN rn * 100 >= 99 * n THEN s END) AS p99
FROM ranked;

-- name: stats_tokens
SELECT j.key AS model, SUM(json_extract(j.value, '$.input')) AS input, SUM(json_extract(j.value, '$.output')) AS output
FROM runs, json_each(runs.usage) AS j
WHERE runs.usage IS NOT NULL AND runs.created_at >= :since AND runs.created_at < :until AND (:graph_id IS NULL OR graph_id = :graph_id) AND (:scope IS NULL OR runs.thread_id IN (SELECT t.thread_id FROM threads t WHERE EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(t.metadata, f.value))))
GROUP BY j.key ORDER BY j.key;

-- Crons (ControlStore.*_cron*).

-- name: insert_cron
INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule, timezone, end_time, enabled,
                   on_run_completed, next_run_date, payload, metadata, template, created_at, updated_at)
VALUES (:cron_id, :assistant_id, :thread_id, :user_id, :schedule, :timezone, :end_time, :enabled,
        :on_run_completed, :next_run_date, :payload, :metadata, :template, :now, :now)
RETURNING *;

-- name: get_cron
SELECT * FROM crons WHERE cron_id = :cron_id;

-- name: update_cron
-- A NULL next_run_date keeps the tick the cron is at (a worker may have moved it since it was read).
UPDATE crons
SET schedule = :schedule, timezone = :timezone, end_time = :end_time, enabled = :enabled,
    on_run_completed = :on_run_completed, next_run_date = COALESCE(:next_run_date, next_run_date), payload = :payload,
    metadata = :metadata, template = :template, updated_at = :now
WHERE cron_id = :cron_id
RETURNING *;

-- name: delete_cron
DELETE FROM crons WHERE cron_id = :cron_id;

-- name: search_crons
SELECT * FROM crons c
WHERE (:assistant_id IS NULL OR c.assistant_id = :assistant_id)
  AND (:thread_id IS NULL OR c.thread_id = :thread_id)
  AND (:enabled IS NULL OR c.enabled = :enabled)
  AND json_contains(c.metadata, :metadata)
  AND (:scope IS NULL OR EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(c.metadata, f.value)))
ORDER BY
  CASE WHEN :sort_order = 'asc' THEN CASE :sort_by WHEN 'cron_id' THEN c.cron_id
       WHEN 'assistant_id' THEN c.assistant_id WHEN 'thread_id' THEN c.thread_id
       WHEN 'next_run_date' THEN c.next_run_date WHEN 'end_time' THEN c.end_time
       WHEN 'updated_at' THEN c.updated_at ELSE c.created_at END END ASC,
  CASE WHEN :sort_order = 'desc' THEN CASE :sort_by WHEN 'cron_id' THEN c.cron_id
       WHEN 'assistant_id' THEN c.assistant_id WHEN 'thread_id' THEN c.thread_id
       WHEN 'next_run_date' THEN c.next_run_date WHEN 'end_time' THEN c.end_time
       WHEN 'updated_at' THEN c.updated_at ELSE c.created_at END END DESC,
  c.cron_id DESC
LIMIT :limit OFFSET :offset;

-- name: count_crons
SELECT COUNT(*) AS n FROM crons c
WHERE (:assistant_id IS NULL OR c.assistant_id = :assistant_id)
  AND (:thread_id IS NULL OR c.thread_id = :thread_id)
  AND json_contains(c.metadata, :metadata)
  AND (:scope IS NULL OR EXISTS (SELECT 1 FROM json_each(:scope) f WHERE json_contains(c.metadata, f.value)));

-- name: due_crons
-- Enabled crons whose tick has come, not past their end, soonest first.
SELECT * FROM crons
WHERE enabled = 1 AND next_run_date <= :now AND (end_time IS NULL OR end_time > :now)
ORDER BY next_run_date
LIMIT :limit;

-- name: advance_cron
-- A fire's claim: the cron moves to its next tick only if it is still at the tick the worker read.
UPDATE crons SET next_run_date = :next_run_date
WHERE cron_id = :cron_id AND next_run_date = :due AND enabled = 1;
