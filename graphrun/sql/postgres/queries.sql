-- Named queries of the PostgreSQL control store, the same names and parameters as sqlite/queries.sql
-- (the logic that runs them is shared: graphrun/stores/_sqlstore.py). Parameters are %(name)s; JSON
-- arrives as text and is cast to jsonb, times arrive as UTC text and are cast to timestamptz. JSON
-- filters use jsonb @>, where an empty filter matches everything.

-- name: lock_migrations
-- Several processes may start at once: one applies the migrations, the others wait and find them done.
SELECT pg_advisory_xact_lock(7283746501);

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                                              applied_at TIMESTAMPTZ NOT NULL);

-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version, name, applied_at) VALUES (%(version)s, %(name)s, %(now)s::timestamptz);

-- name: lock_thread
-- Writers that decide a thread's status from its runs take the thread's row first, so that they see
-- each other's runs (SQLite needs no such lock: it has one writer). Returns the row (none: no thread).
SELECT * FROM threads WHERE thread_id = %(thread_id)s FOR UPDATE;

-- ---------------------------------------------------------------- assistants

-- name: get_assistant
SELECT * FROM assistants WHERE assistant_id = %(assistant_id)s;

-- name: insert_assistant
INSERT INTO assistants (assistant_id, graph_id, config, context, metadata, name, description, version,
                        created_at, updated_at)
VALUES (%(assistant_id)s, %(graph_id)s, %(config)s::jsonb, %(context)s::jsonb, %(metadata)s::jsonb, %(name)s,
        %(description)s, 1, %(now)s::timestamptz, %(now)s::timestamptz)
ON CONFLICT (assistant_id) DO NOTHING;  -- processes starting together each ensure the system assistants

-- name: insert_assistant_version
INSERT INTO assistant_versions (assistant_id, version, graph_id, config, context, metadata, name, description,
                                created_at)
VALUES (%(assistant_id)s, %(version)s, %(graph_id)s, %(config)s::jsonb, %(context)s::jsonb, %(metadata)s::jsonb,
        %(name)s, %(description)s, %(now)s::timestamptz)
ON CONFLICT (assistant_id, version) DO NOTHING;

-- name: max_assistant_version
SELECT COALESCE(MAX(version), 0) AS version FROM assistant_versions WHERE assistant_id = %(assistant_id)s;

-- name: get_assistant_version
SELECT * FROM assistant_versions WHERE assistant_id = %(assistant_id)s AND version = %(version)s;

-- name: set_assistant_current
UPDATE assistants
SET graph_id = %(graph_id)s, config = %(config)s::jsonb, context = %(context)s::jsonb,
    metadata = %(metadata)s::jsonb, name = %(name)s, description = %(description)s, version = %(version)s,
    updated_at = %(now)s::timestamptz
WHERE assistant_id = %(assistant_id)s;

-- name: delete_assistant
DELETE FROM assistants WHERE assistant_id = %(assistant_id)s;

-- name: search_assistants
SELECT * FROM assistants a
WHERE (%(graph_id)s::text IS NULL OR a.graph_id = %(graph_id)s::text)
  AND (%(name)s::text IS NULL OR a.name LIKE '%%' || %(name)s::text || '%%')
  AND (%(metadata)s::jsonb IS NULL OR a.metadata @> %(metadata)s::jsonb)
  AND (%(scope)s::jsonb IS NULL
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE a.metadata @> f.value))
ORDER BY
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'assistant_id' THEN a.assistant_id END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'graph_id' THEN a.graph_id END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'name' THEN a.name END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'updated_at' THEN a.updated_at END ASC,
  CASE WHEN %(sort_order)s = 'asc' THEN a.created_at END ASC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'assistant_id' THEN a.assistant_id END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'graph_id' THEN a.graph_id END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'name' THEN a.name END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'updated_at' THEN a.updated_at END DESC,
  CASE WHEN %(sort_order)s = 'desc' THEN a.created_at END DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_assistants
SELECT COUNT(*) AS n FROM assistants a
WHERE (%(graph_id)s::text IS NULL OR a.graph_id = %(graph_id)s::text)
  AND (%(name)s::text IS NULL OR a.name LIKE '%%' || %(name)s::text || '%%')
  AND (%(metadata)s::jsonb IS NULL OR a.metadata @> %(metadata)s::jsonb)
  AND (%(scope)s::jsonb IS NULL
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE a.metadata @> f.value));

-- name: list_assistant_versions
SELECT * FROM assistant_versions v
WHERE v.assistant_id = %(assistant_id)s
  AND (%(metadata)s::jsonb IS NULL OR v.metadata @> %(metadata)s::jsonb)
ORDER BY v.version DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- ---------------------------------------------------------------- threads

-- name: get_thread
SELECT * FROM threads WHERE thread_id = %(thread_id)s;

-- name: insert_thread
-- A thread another process creates at the same moment is not an error: both then use it.
INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata, status, state_values,
                     interrupts, config, ttl_minutes, ttl_strategy)
VALUES (%(thread_id)s, %(now)s::timestamptz, %(now)s::timestamptz, %(now)s::timestamptz, %(metadata)s::jsonb,
        'idle', %(values)s::jsonb, '{}', %(config)s::jsonb, %(ttl_minutes)s::float8, %(ttl_strategy)s)
ON CONFLICT (thread_id) DO NOTHING
RETURNING *;  -- no row: the thread already existed

-- name: set_thread_metadata
UPDATE threads
SET metadata = %(metadata)s::jsonb, ttl_minutes = COALESCE(%(ttl_minutes)s::float8, ttl_minutes),
    ttl_strategy = COALESCE(%(ttl_strategy)s, ttl_strategy), updated_at = %(now)s::timestamptz
WHERE thread_id = %(thread_id)s;

-- name: touch_thread
UPDATE threads SET updated_at = %(now)s::timestamptz WHERE thread_id = %(thread_id)s;

-- name: expired_threads
-- Threads with nothing in flight, not updated for their TTL (their own, else the default; a NULL or 0
-- default means never).
SELECT thread_id, COALESCE(ttl_strategy, %(default_strategy)s::text) AS ttl_strategy FROM threads
WHERE status != 'busy'
  AND COALESCE(ttl_minutes, NULLIF(%(default_ttl_minutes)s::float8, 0)) IS NOT NULL
  AND updated_at + COALESCE(ttl_minutes, NULLIF(%(default_ttl_minutes)s::float8, 0)) * interval '1 minute'
      < %(now)s::timestamptz
ORDER BY updated_at
LIMIT %(limit)s;

-- name: set_thread_state
UPDATE threads
SET state_values = %(values)s::jsonb, interrupts = %(interrupts)s::jsonb, state_updated_at = %(now)s::timestamptz,
    updated_at = %(now)s::timestamptz,
    status = CASE WHEN status = 'busy' THEN 'busy' ELSE %(status)s::text END
WHERE thread_id = %(thread_id)s;

-- name: delete_thread
DELETE FROM threads WHERE thread_id = %(thread_id)s;

-- name: search_threads
SELECT * FROM threads t
WHERE (%(status)s::text IS NULL OR t.status = %(status)s::text)
  AND (%(ids)s::jsonb IS NULL OR t.thread_id IN (SELECT jsonb_array_elements_text(%(ids)s::jsonb)))
  AND (%(metadata)s::jsonb IS NULL OR %(metadata)s::jsonb = '{}'::jsonb OR t.metadata @> %(metadata)s::jsonb)
  AND (%(scope)s::jsonb IS NULL
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE t.metadata @> f.value))
  AND (%(values)s::jsonb IS NULL OR %(values)s::jsonb = '{}'::jsonb OR t.state_values @> %(values)s::jsonb)
ORDER BY
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'thread_id' THEN t.thread_id END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'status' THEN t.status END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'updated_at' THEN t.updated_at END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'state_updated_at' THEN t.state_updated_at END ASC,
  CASE WHEN %(sort_order)s = 'asc' THEN t.created_at END ASC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'thread_id' THEN t.thread_id END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'status' THEN t.status END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'updated_at' THEN t.updated_at END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'state_updated_at' THEN t.state_updated_at END DESC,
  CASE WHEN %(sort_order)s = 'desc' THEN t.created_at END DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_threads
SELECT COUNT(*) AS n FROM threads t
WHERE (%(status)s::text IS NULL OR t.status = %(status)s::text)
  AND (%(metadata)s::jsonb IS NULL OR %(metadata)s::jsonb = '{}'::jsonb OR t.metadata @> %(metadata)s::jsonb)
  AND (%(scope)s::jsonb IS NULL
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE t.metadata @> f.value))
  AND (%(values)s::jsonb IS NULL OR %(values)s::jsonb = '{}'::jsonb OR t.state_values @> %(values)s::jsonb);

-- name: set_thread_after_run
UPDATE threads
SET status = CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = %(thread_id)s
                                 AND r.status IN ('pending', 'running')) THEN 'busy' ELSE %(status)s::text END,
    state_values = COALESCE(%(values)s::jsonb, state_values),
    interrupts = %(interrupts)s::jsonb, error = %(error)s::jsonb, updated_at = %(now)s::timestamptz,
    state_updated_at = %(now)s::timestamptz
WHERE thread_id = %(thread_id)s;

-- name: settle_thread_status
-- After a run left without executing (cancelled while pending, deleted): busy only while runs are in flight.
UPDATE threads
SET status = CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = %(thread_id)s
                                 AND r.status IN ('pending', 'running')) THEN 'busy'
                  WHEN status = 'busy' THEN 'idle' ELSE status END,
    updated_at = %(now)s::timestamptz
WHERE thread_id = %(thread_id)s;

-- name: set_thread_after_rollback
UPDATE threads
SET status = CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = %(thread_id)s
                                 AND r.status IN ('pending', 'running')) THEN 'busy' ELSE %(status)s::text END,
    state_values = %(values)s::jsonb, interrupts = %(interrupts)s::jsonb, error = NULL,
    updated_at = %(now)s::timestamptz, state_updated_at = %(now)s::timestamptz
WHERE thread_id = %(thread_id)s;

-- ---------------------------------------------------------------- runs

-- name: insert_run
-- One statement (one round trip) that also does what SQLite's mark_thread_busy does, and wakes the idle
-- workers of every process when the transaction commits (PgWakeup LISTENs).
-- The run takes its thread's priority: the one stored, else the one this run assigns (stored on the
-- thread here unless it has settings already), else 0.
WITH run AS (
    INSERT INTO runs (run_id, thread_id, assistant_id, graph_id, status, metadata, multitask_strategy, request,
                      created_at, updated_at, available_at, priority)
    VALUES (%(run_id)s, %(thread_id)s, %(assistant_id)s, %(graph_id)s, 'pending', %(metadata)s::jsonb,
            %(multitask_strategy)s, %(request)s::jsonb, %(now)s::timestamptz, %(now)s::timestamptz,
            %(available_at)s::timestamptz,
            COALESCE((SELECT t.priority FROM threads t WHERE t.thread_id = %(thread_id)s),
                     %(priority)s::smallint, 0))
    RETURNING *
), busy AS (
    UPDATE threads
    SET status = 'busy', metadata = metadata || %(stamp)s::jsonb, updated_at = %(now)s::timestamptz,
        fairness_group = CASE WHEN priority IS NULL THEN %(fairness_group)s::text ELSE fairness_group END,
        priority = COALESCE(priority, %(priority)s::smallint)
    WHERE thread_id = %(thread_id)s
), woken AS (
    SELECT pg_notify('graphrun_new_run', '')
)
SELECT run.* FROM run, woken;

-- name: insert_run_on_new_thread
-- A run on a thread its request creates, in one statement (no transaction around it): the thread is
-- born busy, stamped as insert_run stamps it. No row: the thread exists, and nothing was written.
WITH thread AS (
    INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata, status, state_values,
                         interrupts, config, ttl_minutes, priority, fairness_group)
    VALUES (%(thread_id)s, %(now)s::timestamptz, %(now)s::timestamptz, %(now)s::timestamptz, %(stamp)s::jsonb,
            'busy', NULL, '{}', '{}', NULL, %(priority)s::smallint, %(fairness_group)s::text)
    ON CONFLICT (thread_id) DO NOTHING
    RETURNING thread_id
), run AS (
    INSERT INTO runs (run_id, thread_id, assistant_id, graph_id, status, metadata, multitask_strategy, request,
                      created_at, updated_at, available_at, priority)
    SELECT %(run_id)s, thread.thread_id, %(assistant_id)s, %(graph_id)s, 'pending', %(metadata)s::jsonb,
           %(multitask_strategy)s, %(request)s::jsonb, %(now)s::timestamptz, %(now)s::timestamptz,
           %(available_at)s::timestamptz, COALESCE(%(priority)s::smallint, 0)
    FROM thread
    RETURNING *
), woken AS (
    SELECT pg_notify('graphrun_new_run', '')
)
SELECT run.* FROM run, woken;

-- name: get_run
SELECT * FROM runs WHERE run_id = %(run_id)s AND thread_id = %(thread_id)s;

-- name: get_run_by_id
SELECT * FROM runs WHERE run_id = %(run_id)s;

-- name: inflight_runs
SELECT * FROM runs WHERE thread_id = %(thread_id)s AND status IN ('pending', 'running') ORDER BY created_at;

-- name: inflight_runs_matching
SELECT * FROM runs
WHERE status IN ('pending', 'running') AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(assistant_id)s::text IS NULL OR assistant_id = %(assistant_id)s::text)
  AND (%(scope)s::jsonb IS NULL
       OR thread_id IN (SELECT t.thread_id FROM threads t, jsonb_array_elements(%(scope)s::jsonb) f
                        WHERE t.metadata @> f.value))
ORDER BY created_at
LIMIT %(limit)s;

-- name: list_runs
SELECT * FROM runs
WHERE thread_id = %(thread_id)s AND (%(status)s::text IS NULL OR status = %(status)s::text)
ORDER BY created_at DESC, run_id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: delete_run
DELETE FROM runs WHERE run_id = %(run_id)s AND thread_id = %(thread_id)s;

-- name: delete_old_runs
-- Finished runs that ended more than %(days)s days ago, oldest first, at most %(limit)s (GRAPHRUN_RUN_RETENTION_DAYS).
DELETE FROM runs WHERE run_id IN (
    SELECT run_id FROM runs
    WHERE status NOT IN ('pending', 'running')
      AND updated_at < %(now)s::timestamptz - %(days)s::float8 * interval '1 day'
    ORDER BY updated_at
    LIMIT %(limit)s
) RETURNING run_id;

-- name: delete_pending_run
DELETE FROM runs WHERE run_id = %(run_id)s AND status = 'pending';

-- name: cancel_pending_run
UPDATE runs SET status = 'interrupted', cancel_action = %(action)s,
    cancel_reason = COALESCE(cancel_reason, %(reason)s), updated_at = %(now)s::timestamptz
WHERE run_id = %(run_id)s AND status = 'pending';

-- name: request_cancel_running
UPDATE runs SET cancel_action = %(action)s, cancel_reason = COALESCE(cancel_reason, %(reason)s),
    updated_at = %(now)s::timestamptz
WHERE run_id = %(run_id)s AND status = 'running';

-- name: claim_runs
-- The oldest pending run of each thread that has nothing running, if it is ready; at most %(limit)s of
-- them, the lowest priority number first (-5 before 5), then the longest waiting, skipping rows another
-- worker is claiming at this moment (SKIP LOCKED). Only a thread's oldest pending run is a candidate, so
-- two workers never take two runs of one thread.
UPDATE runs
SET status = 'running', attempt = attempt + 1, lease_owner = %(worker_id)s,
    lease_expires_at = %(lease_expires_at)s::timestamptz, updated_at = %(now)s::timestamptz
WHERE run_id IN (
    SELECT r.run_id FROM runs r
    WHERE r.run_id IN (
        SELECT c.run_id FROM (
            SELECT DISTINCT ON (p.thread_id) p.run_id, p.thread_id, p.available_at, p.created_at, p.priority
            FROM runs p WHERE p.status = 'pending'
            ORDER BY p.thread_id, p.created_at, p.run_id
        ) c
        WHERE c.available_at <= %(now)s::timestamptz
          AND NOT EXISTS (SELECT 1 FROM runs b WHERE b.thread_id = c.thread_id AND b.status = 'running')
        ORDER BY c.priority, c.available_at, c.created_at
        LIMIT %(limit)s
    )
    FOR UPDATE SKIP LOCKED
)
AND status = 'pending'
RETURNING *;

-- name: renew_lease
UPDATE runs SET lease_expires_at = %(lease_expires_at)s::timestamptz
WHERE run_id = %(run_id)s AND attempt = %(attempt)s AND lease_owner = %(worker_id)s AND status = 'running'
RETURNING cancel_action;

-- name: finish_run
UPDATE runs
SET status = %(status)s, output = %(output)s::jsonb, error = %(error)s::jsonb, lease_owner = NULL,
    lease_expires_at = NULL, updated_at = %(now)s::timestamptz, usage = %(usage)s::jsonb
WHERE run_id = %(run_id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING thread_id;

-- name: finish_run_and_thread
-- finish_run and set_thread_after_run in one round trip, without BEGIN/COMMIT (migration 0003).
SELECT graphrun_finish_run(%(run_id)s, %(attempt)s, %(thread_id)s, %(status)s, %(output)s::jsonb,
                           %(error)s::jsonb, %(thread_status)s, %(values)s::jsonb, %(interrupts)s::jsonb,
                           %(now)s::timestamptz, %(usage)s::jsonb) AS finished;

-- name: release_run
UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s::timestamptz
WHERE run_id = %(run_id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING thread_id;

-- name: rollback_run
DELETE FROM runs WHERE run_id = %(run_id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING thread_id;

-- name: expired_runs
-- Locked so that two reapers never handle one run; one being reaped elsewhere is left to that reaper.
SELECT * FROM runs WHERE status = 'running' AND lease_expires_at < %(now)s::timestamptz
FOR UPDATE SKIP LOCKED;

-- name: all_running_runs
SELECT * FROM runs WHERE status = 'running' FOR UPDATE SKIP LOCKED;

-- Analytics (ControlStore.run_stats): the runs created in [since, until), of one graph or all. The same
-- numbers on both dialects: percentiles by nearest rank (the smallest value with at least p percent of the
-- values at or below it: row number * 100 >= p * count).

-- name: stats_by_status
SELECT status, COUNT(*) AS runs FROM runs WHERE runs.created_at >= %(since)s::timestamptz AND runs.created_at < %(until)s::timestamptz AND (%(graph_id)s::text IS NULL OR graph_id = %(graph_id)s::text) AND (%(scope)s::jsonb IS NULL OR runs.thread_id IN (SELECT t.thread_id FROM threads t WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE t.metadata @> f.value))) GROUP BY status ORDER BY status;

-- name: stats_turns
WITH per_thread AS (SELECT thread_id, COUNT(*) AS turns FROM runs WHERE runs.created_at >= %(since)s::timestamptz AND runs.created_at < %(until)s::timestamptz AND (%(graph_id)s::text IS NULL OR graph_id = %(graph_id)s::text) AND (%(scope)s::jsonb IS NULL OR runs.thread_id IN (SELECT t.thread_id FROM threads t WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE t.metadata @> f.value))) GROUP BY thread_id),
ranked AS (SELECT turns, ROW_NUMBER() OVER (ORDER BY turns) AS rn, COUNT(*) OVER () AS n FROM per_thread)
SELECT COUNT(*) AS threads, AVG(turns) AS turns_avg, MIN(CASE WHEN rn * 100 >= 95 * n THEN turns END) AS turns_p95
FROM ranked;

-- name: stats_latency
WITH done AS (
    SELECT EXTRACT(EPOCH FROM (updated_at - created_at))::float8 AS s FROM runs
    WHERE runs.created_at >= %(since)s::timestamptz AND runs.created_at < %(until)s::timestamptz AND (%(graph_id)s::text IS NULL OR graph_id = %(graph_id)s::text) AND (%(scope)s::jsonb IS NULL OR runs.thread_id IN (SELECT t.thread_id FROM threads t WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE t.metadata @> f.value))) AND status IN ('success', 'error', 'timeout', 'interrupted')
),
ranked AS (SELECT s, ROW_NUMBER() OVER (ORDER BY s) AS rn, COUNT(*) OVER () AS n FROM done)
SELECT MIN(CASE WHEN rn * 100 >= 50 * n THEN s END) AS p50,
       MIN(CASE WHEN rn * 100 >= 95 * n THEN s END) AS p95,
       MIN(CASE WHEN rn * 100 >= 99 * n THEN s END) AS p99
FROM ranked;

-- name: stats_tokens
SELECT j.key AS model, SUM((j.value->>'input')::bigint) AS input, SUM((j.value->>'output')::bigint) AS output
FROM runs, jsonb_each(runs.usage) AS j
WHERE runs.usage IS NOT NULL AND runs.created_at >= %(since)s::timestamptz AND runs.created_at < %(until)s::timestamptz AND (%(graph_id)s::text IS NULL OR graph_id = %(graph_id)s::text) AND (%(scope)s::jsonb IS NULL OR runs.thread_id IN (SELECT t.thread_id FROM threads t WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE t.metadata @> f.value)))
GROUP BY j.key ORDER BY j.key;

-- Crons (ControlStore.*_cron*).

-- name: insert_cron
INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule, timezone, end_time, enabled,
                   on_run_completed, next_run_date, payload, metadata, template, created_at, updated_at)
VALUES (%(cron_id)s, %(assistant_id)s, %(thread_id)s, %(user_id)s, %(schedule)s, %(timezone)s,
        %(end_time)s::timestamptz, %(enabled)s::boolean, %(on_run_completed)s, %(next_run_date)s::timestamptz,
        %(payload)s::jsonb, %(metadata)s::jsonb, %(template)s::jsonb, %(now)s::timestamptz, %(now)s::timestamptz)
RETURNING *;

-- name: get_cron
SELECT * FROM crons WHERE cron_id = %(cron_id)s;

-- name: update_cron
-- A NULL next_run_date keeps the tick the cron is at (a worker may have moved it since it was read).
UPDATE crons
SET schedule = %(schedule)s, timezone = %(timezone)s, end_time = %(end_time)s::timestamptz,
    enabled = %(enabled)s::boolean, on_run_completed = %(on_run_completed)s,
    next_run_date = COALESCE(%(next_run_date)s::timestamptz, next_run_date), payload = %(payload)s::jsonb,
    metadata = %(metadata)s::jsonb, template = %(template)s::jsonb, updated_at = %(now)s::timestamptz
WHERE cron_id = %(cron_id)s
RETURNING *;

-- name: delete_cron
DELETE FROM crons WHERE cron_id = %(cron_id)s;

-- name: search_crons
SELECT * FROM crons c
WHERE (%(assistant_id)s::text IS NULL OR c.assistant_id = %(assistant_id)s::text)
  AND (%(thread_id)s::text IS NULL OR c.thread_id = %(thread_id)s::text)
  AND (%(enabled)s::boolean IS NULL OR c.enabled = %(enabled)s::boolean)
  AND (%(metadata)s::jsonb IS NULL OR %(metadata)s::jsonb = '{}'::jsonb OR c.metadata @> %(metadata)s::jsonb)
  AND (%(scope)s::jsonb IS NULL
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE c.metadata @> f.value))
ORDER BY
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'cron_id' THEN c.cron_id END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'assistant_id' THEN c.assistant_id END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'thread_id' THEN c.thread_id END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'next_run_date' THEN c.next_run_date END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'end_time' THEN c.end_time END ASC,
  CASE WHEN %(sort_order)s = 'asc' AND %(sort_by)s = 'updated_at' THEN c.updated_at END ASC,
  CASE WHEN %(sort_order)s = 'asc' THEN c.created_at END ASC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'cron_id' THEN c.cron_id END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'assistant_id' THEN c.assistant_id END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'thread_id' THEN c.thread_id END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'next_run_date' THEN c.next_run_date END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'end_time' THEN c.end_time END DESC,
  CASE WHEN %(sort_order)s = 'desc' AND %(sort_by)s = 'updated_at' THEN c.updated_at END DESC,
  CASE WHEN %(sort_order)s = 'desc' THEN c.created_at END DESC,
  c.cron_id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_crons
SELECT COUNT(*) AS n FROM crons c
WHERE (%(assistant_id)s::text IS NULL OR c.assistant_id = %(assistant_id)s::text)
  AND (%(thread_id)s::text IS NULL OR c.thread_id = %(thread_id)s::text)
  AND (%(metadata)s::jsonb IS NULL OR %(metadata)s::jsonb = '{}'::jsonb OR c.metadata @> %(metadata)s::jsonb)
  AND (%(scope)s::jsonb IS NULL
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(%(scope)s::jsonb) f WHERE c.metadata @> f.value));

-- name: due_crons
-- Enabled crons whose tick has come, not past their end, soonest first.
SELECT * FROM crons
WHERE enabled AND next_run_date <= %(now)s::timestamptz
  AND (end_time IS NULL OR end_time > %(now)s::timestamptz)
ORDER BY next_run_date
LIMIT %(limit)s;

-- name: advance_cron
-- A fire's claim: the cron moves to its next tick only if it is still at the tick the worker read (a
-- second worker's update waits on the row lock, then finds the tick moved and changes nothing).
UPDATE crons SET next_run_date = %(next_run_date)s::timestamptz
WHERE cron_id = %(cron_id)s AND next_run_date = %(due)s::timestamptz AND enabled;
