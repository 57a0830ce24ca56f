-- More of the web pages' reads (docs/ui.md, docs/benchmarks.md "Web pages"): a user's
-- instances newest first (the list's user filter resolves the user's id first), and name
-- searches (`name__contains`, the lists' search box) that find rare matches without
-- reading every instance: a trigram index (pg_trgm is a trusted extension, shipped with
-- PostgreSQL's contrib modules). Common matches keep reading newest first.
CREATE INDEX task_instances_user_kind_created
    ON task_instances (user_id, kind, datetime_created DESC, uuid);
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX task_instances_name_trgm ON task_instances USING gin (name gin_trgm_ops);
