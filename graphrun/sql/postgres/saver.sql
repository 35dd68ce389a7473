-- Queries on the tables of LangGraph's PostgreSQL saver and store (langgraph-checkpoint-postgres), not
-- ours (see graphrun/stores/pgsaver.py). Parameters are %(name)s. The saver keeps checkpoint metadata
-- as jsonb, as its own `alist` filter reads it.

-- name: saver_setup_try_lock
-- The savers' setup() is not safe when several processes run it at once (concurrent CREATE TABLE IF
-- NOT EXISTS collide): one process at a time, the others wait and find the tables there. The migrations
-- CREATE INDEX CONCURRENTLY, which waits for every transaction of the database, so the lock is a
-- session one taken in autocommit, and waiters retry instead of blocking in pg_advisory_lock (a
-- statement waiting there is a transaction the index build would wait for: a deadlock).
SELECT pg_try_advisory_lock(7283746502) AS locked;

-- name: saver_setup_unlock
SELECT pg_advisory_unlock(7283746502);

-- name: saver_delete_run_writes
DELETE FROM checkpoint_writes w
USING checkpoints c
WHERE c.thread_id = %(thread_id)s AND c.metadata ->> 'run_id' = ANY(%(run_ids)s)
  AND w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id;

-- name: saver_delete_run_checkpoints
DELETE FROM checkpoints
WHERE thread_id = %(thread_id)s AND metadata ->> 'run_id' = ANY(%(run_ids)s);
