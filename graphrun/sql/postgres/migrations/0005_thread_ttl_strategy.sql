-- What a thread's TTL does when it passes: NULL or 'delete' deletes the thread; 'keep_latest' prunes its
-- checkpoints to the latest of each namespace and keeps the thread.
ALTER TABLE threads ADD COLUMN IF NOT EXISTS ttl_strategy TEXT;
