-- Exact instance counts per kind without counting rows: the unfiltered lists (the
-- original's pagination reports `count`) read a sum of 64 slots. Statement-level triggers
-- add each statement's rows to one random slot, so concurrent inserts rarely meet.
CREATE TABLE task_instance_counts (
    kind  varchar(10) NOT NULL,
    slot  integer NOT NULL,
    n     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, slot)
);
INSERT INTO task_instance_counts (kind, slot)
    SELECT k, s FROM (VALUES ('container'), ('executable')) v(k), generate_series(0, 63) s;
UPDATE task_instance_counts c SET n = x.n
    FROM (SELECT kind, count(*) AS n FROM task_instances GROUP BY kind) x
    WHERE c.kind = x.kind AND c.slot = 0;

-- The slot is drawn once per statement (random() in the WHERE clause would be drawn per row).
CREATE FUNCTION saltant_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s integer := floor(random() * 64)::int;
BEGIN
    UPDATE task_instance_counts c SET n = c.n + x.n
        FROM (SELECT kind, count(*) AS n FROM new_rows GROUP BY kind) x
        WHERE c.kind = x.kind AND c.slot = s;
    RETURN NULL;
END $$;

CREATE FUNCTION saltant_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s integer := floor(random() * 64)::int;
BEGIN
    UPDATE task_instance_counts c SET n = c.n - x.n
        FROM (SELECT kind, count(*) AS n FROM old_rows GROUP BY kind) x
        WHERE c.kind = x.kind AND c.slot = s;
    RETURN NULL;
END $$;

CREATE TRIGGER task_instances_count_inserted AFTER INSERT ON task_instances
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION saltant_count_inserted();
CREATE TRIGGER task_instances_count_deleted AFTER DELETE ON task_instances
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION saltant_count_deleted();
