-- The web pages' reads (docs/ui.md): instance lists filtered by state or by user stay
-- newest first without a sort, and the dashboard counts instances per creation day and
-- state with an index-only scan.
CREATE INDEX task_instances_kind_state_created
    ON task_instances (kind, state, datetime_created DESC, uuid);
CREATE INDEX task_instances_user_kind_created
    ON task_instances (user_id, kind, datetime_created DESC, uuid);
CREATE INDEX task_instances_created_state ON task_instances (datetime_created, state);
-- Name searches (`name__contains`, the lists' search box) find rare matches without
-- reading every instance: a trigram index (pg_trgm is a trusted extension, shipped with
-- PostgreSQL's contrib modules). Common matches keep reading newest first.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX task_instances_name_trgm ON task_instances USING gin (name gin_trgm_ops);
