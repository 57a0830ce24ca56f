-- saltant's data model: the original's seven models (reference §1) plus what the runtime
-- needs (attempts, executor, exit code, trace id, state history, logs).

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      varchar(150) NOT NULL UNIQUE,
    -- argon2 PHC string; '' means no usable password
    password      text NOT NULL DEFAULT '',
    email         varchar(254) NOT NULL DEFAULT '',
    first_name    varchar(150) NOT NULL DEFAULT '',
    last_name     varchar(150) NOT NULL DEFAULT '',
    is_staff      boolean NOT NULL DEFAULT false,
    is_superuser  boolean NOT NULL DEFAULT false,
    is_active     boolean NOT NULL DEFAULT true,
    last_login    timestamptz,
    date_joined   timestamptz NOT NULL DEFAULT now(),
    time_zone     text NOT NULL DEFAULT 'America/Vancouver'
);

-- One permanent API token per user. Only the SHA-256 of the token is stored, so a
-- database leak reveals no usable token.
CREATE TABLE api_tokens (
    key_sha256  bytea PRIMARY KEY,
    user_id     bigint NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE container_task_types (
    id                                 bigserial PRIMARY KEY,
    name                               varchar(200) NOT NULL UNIQUE,
    description                        text NOT NULL DEFAULT '',
    user_id                            bigint REFERENCES users (id) ON DELETE SET NULL,
    datetime_created                   timestamptz NOT NULL DEFAULT now(),
    command_to_run                     varchar(400) NOT NULL,
    environment_variables              jsonb NOT NULL DEFAULT '[]',
    required_arguments                 jsonb NOT NULL DEFAULT '[]',
    required_arguments_default_values  jsonb NOT NULL DEFAULT '{}',
    logs_path                          varchar(400),
    results_path                       varchar(400),
    container_image                    varchar(200) NOT NULL,
    container_type                     varchar(11) NOT NULL
        CHECK (container_type IN ('docker', 'singularity'))
);

CREATE TABLE executable_task_types (
    id                                 bigserial PRIMARY KEY,
    name                               varchar(200) NOT NULL UNIQUE,
    description                        text NOT NULL DEFAULT '',
    user_id                            bigint REFERENCES users (id) ON DELETE SET NULL,
    datetime_created                   timestamptz NOT NULL DEFAULT now(),
    command_to_run                     varchar(400) NOT NULL,
    environment_variables              jsonb NOT NULL DEFAULT '[]',
    required_arguments                 jsonb NOT NULL DEFAULT '[]',
    required_arguments_default_values  jsonb NOT NULL DEFAULT '{}',
    json_file_option                   varchar(50)
);

CREATE TABLE task_whitelists (
    id           bigserial PRIMARY KEY,
    name         varchar(50) NOT NULL UNIQUE,
    description  text NOT NULL DEFAULT '',
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE TABLE task_whitelist_container_types (
    whitelist_id  bigint NOT NULL REFERENCES task_whitelists (id) ON DELETE CASCADE,
    task_type_id  bigint NOT NULL REFERENCES container_task_types (id) ON DELETE CASCADE,
    PRIMARY KEY (whitelist_id, task_type_id)
);
CREATE INDEX ON task_whitelist_container_types (task_type_id);

CREATE TABLE task_whitelist_executable_types (
    whitelist_id  bigint NOT NULL REFERENCES task_whitelists (id) ON DELETE CASCADE,
    task_type_id  bigint NOT NULL REFERENCES executable_task_types (id) ON DELETE CASCADE,
    PRIMARY KEY (whitelist_id, task_type_id)
);
CREATE INDEX ON task_whitelist_executable_types (task_type_id);

CREATE TABLE task_queues (
    id                                bigserial PRIMARY KEY,
    name                              varchar(50) NOT NULL UNIQUE,
    description                       text NOT NULL DEFAULT '',
    user_id                           bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    private                           boolean NOT NULL DEFAULT false,
    runs_executable_tasks             boolean NOT NULL DEFAULT true,
    runs_docker_container_tasks       boolean NOT NULL DEFAULT true,
    runs_singularity_container_tasks  boolean NOT NULL DEFAULT true,
    active                            boolean NOT NULL DEFAULT true
);

CREATE TABLE task_queue_whitelists (
    queue_id      bigint NOT NULL REFERENCES task_queues (id) ON DELETE CASCADE,
    whitelist_id  bigint NOT NULL REFERENCES task_whitelists (id) ON DELETE CASCADE,
    PRIMARY KEY (queue_id, whitelist_id)
);
CREATE INDEX ON task_queue_whitelists (whitelist_id);

-- Both instance classes in one table: `kind` says which, and exactly one type column is set.
CREATE TABLE task_instances (
    uuid                     uuid PRIMARY KEY,
    kind                     varchar(10) NOT NULL CHECK (kind IN ('container', 'executable')),
    name                     varchar(200) NOT NULL DEFAULT '',
    state                    varchar(10) NOT NULL DEFAULT 'created'
        CHECK (state IN ('created', 'published', 'running', 'successful', 'failed', 'terminated')),
    user_id                  bigint REFERENCES users (id) ON DELETE SET NULL,
    task_queue_id            bigint NOT NULL REFERENCES task_queues (id) ON DELETE CASCADE,
    container_task_type_id   bigint REFERENCES container_task_types (id) ON DELETE CASCADE,
    executable_task_type_id  bigint REFERENCES executable_task_types (id) ON DELETE CASCADE,
    datetime_created         timestamptz NOT NULL DEFAULT now(),
    datetime_finished        timestamptz,
    arguments                jsonb NOT NULL DEFAULT '{}',
    -- runtime (never in the original's responses)
    spec                     jsonb NOT NULL,
    queue_name               varchar(50) NOT NULL,
    attempt                  integer NOT NULL DEFAULT 1,
    datetime_started         timestamptz,
    executor                 text,
    exit_code                integer,
    reason                   text,
    trace_id                 text,
    terminate_requested      boolean NOT NULL DEFAULT false,
    CHECK ((kind = 'container') = (container_task_type_id IS NOT NULL)),
    CHECK ((kind = 'executable') = (executable_task_type_id IS NOT NULL))
);
CREATE INDEX task_instances_kind_created ON task_instances (kind, datetime_created DESC, uuid);
CREATE INDEX task_instances_container_type ON task_instances (container_task_type_id)
    WHERE container_task_type_id IS NOT NULL;
CREATE INDEX task_instances_executable_type ON task_instances (executable_task_type_id)
    WHERE executable_task_type_id IS NOT NULL;
CREATE INDEX task_instances_queue ON task_instances (task_queue_id);
-- The scheduler's sweep for instances the bus may not have seen.
CREATE INDEX task_instances_unfinished ON task_instances (datetime_created)
    WHERE state IN ('created', 'published', 'running');

-- Every state change an instance went through, in the order recorded.
CREATE TABLE task_instance_history (
    id             bigserial PRIMARY KEY,
    instance_uuid  uuid NOT NULL REFERENCES task_instances (uuid) ON DELETE CASCADE,
    attempt        integer NOT NULL,
    state          varchar(10) NOT NULL,
    at             timestamptz NOT NULL,
    executor       text,
    exit_code      integer,
    reason         text
);
CREATE INDEX ON task_instance_history (instance_uuid, id);

-- Output of instances, persisted by the log-collector from the logs stream.
CREATE TABLE task_instance_logs (
    instance_uuid  uuid NOT NULL,
    seq            bigint NOT NULL,
    attempt        integer NOT NULL,
    stream         varchar(6) NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    data           bytea NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_uuid, attempt, seq)
);

-- The position of a state in the life cycle; mirrors saltant_core::State::rank.
CREATE FUNCTION saltant_state_rank(s text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE s WHEN 'created' THEN 0 WHEN 'published' THEN 1
                        WHEN 'running' THEN 2 ELSE 3 END $$;
