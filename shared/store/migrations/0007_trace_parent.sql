-- The W3C `traceparent` of the span that created each instance (the api's), so that work
-- done later on its behalf without a message to carry it (sweep resubmissions, retries,
-- lost-executor failures, queue time-outs, terminations) continues the instance's trace.
ALTER TABLE task_instances ADD COLUMN trace_parent text;
