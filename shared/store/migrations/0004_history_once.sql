-- One history row per instance, attempt and state: events redelivered by the bus (an ack
-- lost in a NATS restart) are recorded once.
DELETE FROM task_instance_history h USING task_instance_history d
    WHERE h.instance_uuid = d.instance_uuid AND h.attempt = d.attempt AND h.state = d.state
      AND h.id > d.id;
CREATE UNIQUE INDEX task_instance_history_once
    ON task_instance_history (instance_uuid, attempt, state);
