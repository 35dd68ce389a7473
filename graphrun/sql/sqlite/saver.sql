-- Queries on the tables of LangGraph's SQLite checkpoint saver (langgraph-checkpoint-sqlite), not ours:
-- that saver does not implement `adelete_for_runs` (see graphrun/checkpointer.py). Its metadata column
-- holds JSON, as its own `alist` filter reads it.

-- name: saver_run_checkpoints
SELECT checkpoint_ns, checkpoint_id FROM checkpoints
WHERE thread_id = :thread_id AND json_extract(CAST(metadata AS TEXT), '$.run_id') = :run_id;

-- name: saver_delete_writes
DELETE FROM writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: saver_delete_checkpoint
DELETE FROM checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: saver_prune_writes
-- keep_latest: the pending writes of every checkpoint but the latest of its namespace go.
DELETE FROM writes
WHERE thread_id = :thread_id
  AND checkpoint_id < (SELECT MAX(c.checkpoint_id) FROM checkpoints c
                       WHERE c.thread_id = writes.thread_id AND c.checkpoint_ns = writes.checkpoint_ns);

-- name: saver_prune_checkpoints
-- keep_latest: every checkpoint but the latest of its namespace goes (ids are time-ordered, as the
-- saver's own "latest" reads them).
DELETE FROM checkpoints
WHERE thread_id = :thread_id
  AND checkpoint_id < (SELECT MAX(c.checkpoint_id) FROM checkpoints c
                       WHERE c.thread_id = checkpoints.thread_id AND c.checkpoint_ns = checkpoints.checkpoint_ns);

-- name: saver_prune_parents
-- keep_latest: the kept checkpoints' parents are gone; they become the first of their thread.
UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = :thread_id;
