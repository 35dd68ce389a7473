-- Why a run was cancelled (the SDK's Run.cancel_reason): cancelled (an explicit cancel),
-- client_disconnect (its stream or wait went away with on_disconnect=cancel), superseded_by_interrupt
-- or superseded_by_rollback (a newer run's multitask strategy). NULL: not cancelled.
ALTER TABLE runs ADD COLUMN cancel_reason TEXT;
