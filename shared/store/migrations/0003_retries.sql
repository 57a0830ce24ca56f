-- A retried instance goes back to `created` with the next attempt; it is dispatched again
-- once `dispatch_after` has passed (the retry back-off).
ALTER TABLE task_instances ADD COLUMN dispatch_after timestamptz;
-- The lost-executor check reads running instances.
CREATE INDEX task_instances_running ON task_instances (executor) WHERE state = 'running';
