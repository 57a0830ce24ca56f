-- When termination was first asked for: the scheduler's sweep repeats requests that the
-- bus may not have seen.
ALTER TABLE task_instances ADD COLUMN terminate_requested_at timestamptz;
CREATE INDEX task_instances_terminating ON task_instances (terminate_requested_at)
    WHERE terminate_requested AND state IN ('created', 'published', 'running');

-- Browser sessions of the web pages and the DRF-style login: only a SHA-256 of the cookie
-- value is stored, so a database leak does not reveal usable sessions.
CREATE TABLE sessions (
    key_sha256  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    expires     timestamptz NOT NULL
);
CREATE INDEX ON sessions (expires);

-- Server-wide secrets generated once (e.g. the JWT signing key), shared by every api
-- replica through the database unless configured explicitly.
CREATE TABLE secrets (
    name     text PRIMARY KEY,
    value    bytea NOT NULL,
    created  timestamptz NOT NULL DEFAULT now()
);
