-- The web pages' reads (docs/ui.md): instance lists filtered by state stay newest first
-- without a sort, and the dashboard counts instances per creation day and state with an
-- index-only scan.
CREATE INDEX task_instances_kind_state_created
    ON task_instances (kind, state, datetime_created DESC, uuid);
CREATE INDEX task_instances_created_state ON task_instances (datetime_created, state);
