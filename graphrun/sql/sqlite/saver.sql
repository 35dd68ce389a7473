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
