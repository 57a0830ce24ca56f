-- The digest of the results manifest an attempt's final event named (docs/security.md,
-- "Results are checked"): the api serves an attempt's files only under a manifest with
-- this digest. Changes recorded before digests existed say 'unverified' (their files are
-- served as stored); later ones without files have none. Adding the column with a default
-- and dropping the default rewrites no row.
ALTER TABLE task_instance_history ADD COLUMN results_digest text DEFAULT 'unverified';
ALTER TABLE task_instance_history ALTER COLUMN results_digest DROP DEFAULT;
