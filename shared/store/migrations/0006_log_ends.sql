-- The end of each attempt's output, stored by the log-collector: how many chunks the
-- attempt sent (live tails end once they hold them all) and how many bytes of each stream
-- its output limit dropped (truncation is shown, never silent). docs/logs.md.
CREATE TABLE task_instance_log_ends (
    instance_uuid   uuid NOT NULL,
    attempt         integer NOT NULL,
    chunks          bigint NOT NULL,
    dropped_stdout  bigint NOT NULL DEFAULT 0,
    dropped_stderr  bigint NOT NULL DEFAULT 0,
    -- Chunks sent but never stored (kept in the executor's capture files): not waited for.
    lost            bigint[] NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_uuid, attempt)
);

-- Retention passes walk instances in the order they finished.
CREATE INDEX task_instances_finished ON task_instances (datetime_finished, uuid)
    WHERE datetime_finished IS NOT NULL;
