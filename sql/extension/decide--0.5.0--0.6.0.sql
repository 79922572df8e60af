-- decide 0.5.0 -> 0.6.0: the decision log's indexes belong to each daily
-- partition instead of to the partitioned parent.
--
-- Why: the parent decide.decisions is created by CREATE EXTENSION, the
-- partitions by the worker.  pg_dump saves the partitions (they hold user
-- data) with their indexes; pg_restore then runs CREATE EXTENSION, which
-- made the parent's indexes, attaches each restored partition, which built
-- that partition's copy of every parent index, and creates the dumped
-- indexes again: five "already exists" errors per partition, and no restore
-- at all with --single-transaction or --exit-on-error.  With the indexes on
-- the partitions only, a dump restores without an error.
--
-- Queries are unchanged: the planner uses each partition's indexes, as it
-- did when they were attached to the parent's.
--
-- The update detaches every existing partition (its indexes stay, now its
-- own), drops the parent's indexes, and attaches the partitions again.
-- Attaching reads each partition once to check its bounds; no index is
-- rebuilt.

\echo Use "ALTER EXTENSION decide UPDATE TO '0.6.0'" to load this file. \quit

-- Creates the partition of decide.decisions for one UTC day, with the
-- indexes for the queries governance users run, each newest first: by time
-- (the primary key), by actor, denials, by risk level, by policy.  Does
-- nothing when that day's partition exists.  Called by the worker.
CREATE FUNCTION decide.create_log_partition(day date) RETURNS regclass
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text;
    existing regclass;
BEGIN
    -- Partition names carry the year in four digits (the worker reads them
    -- back to apply the retention): other years would be misread.
    IF day IS NULL OR NOT isfinite(day) OR day < '0001-01-01' OR day > '9999-12-31' THEN
        RAISE EXCEPTION 'a decision log partition needs a day between 0001-01-01 and 9999-12-31, not %',
                        coalesce(CASE WHEN isfinite(day) THEN to_char(day, 'YYYY-MM-DD AD')
                                      ELSE day::text END, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    name := 'decisions_' || to_char(day, 'YYYYMMDD');
    existing := to_regclass(format('decide.%I', name));
    IF existing IS NOT NULL THEN
        RETURN existing;
    END IF;
    EXECUTE format('CREATE TABLE decide.%I PARTITION OF decide.decisions'
                   ' FOR VALUES FROM (%L) TO (%L)', name,
                   to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
                   to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    EXECUTE format('ALTER TABLE decide.%I ADD CONSTRAINT %I PRIMARY KEY (decided_at, id)',
                   name, name || '_pkey');
    EXECUTE format('CREATE INDEX %I ON decide.%I (actor, decided_at, id)',
                   name || '_actor_decided_at_id_idx', name);
    EXECUTE format('CREATE INDEX %I ON decide.%I (decided_at, id) WHERE NOT allowed',
                   name || '_decided_at_id_idx', name);
    EXECUTE format('CREATE INDEX %I ON decide.%I (risk_level, decided_at, id)',
                   name || '_risk_level_decided_at_id_idx', name);
    EXECUTE format('CREATE INDEX %I ON decide.%I (policy, decided_at, id)',
                   name || '_policy_decided_at_id_idx', name);
    RETURN format('decide.%I', name)::regclass;
END
$$;
REVOKE ALL ON FUNCTION decide.create_log_partition(date) FROM PUBLIC;
COMMENT ON FUNCTION decide.create_log_partition(date) IS
    'creates the decision log partition of one UTC day, with its indexes';

DO $$
DECLARE
    partitions regclass[];
    bounds text[];
    i int;
BEGIN
    -- First, so that no partition can be created (by the worker) between
    -- reading the list and dropping the parent's indexes: one created then
    -- would lose its copies of them and keep none.
    LOCK TABLE decide.decisions IN ACCESS EXCLUSIVE MODE;
    SELECT coalesce(array_agg(c.oid::regclass ORDER BY c.oid), '{}'),
           coalesce(array_agg(pg_get_expr(c.relpartbound, c.oid) ORDER BY c.oid), '{}')
      INTO partitions, bounds
      FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
     WHERE h.inhparent = 'decide.decisions'::regclass;
    FOR i IN 1 .. cardinality(partitions) LOOP
        EXECUTE format('ALTER TABLE decide.decisions DETACH PARTITION %s', partitions[i]);
    END LOOP;
    -- IF EXISTS: an administrator may have dropped one already.
    ALTER TABLE decide.decisions DROP CONSTRAINT IF EXISTS decisions_pkey;
    DROP INDEX IF EXISTS decide.decisions_actor_idx, decide.decisions_denied_idx,
                         decide.decisions_risk_idx, decide.decisions_policy_idx;
    FOR i IN 1 .. cardinality(partitions) LOOP
        EXECUTE format('ALTER TABLE decide.decisions ATTACH PARTITION %s %s',
                       partitions[i], bounds[i]);
    END LOOP;
END
$$;

COMMENT ON TABLE decide.decisions IS
    'decision log, written by the decide background worker; one partition per UTC day, '
    'created with its indexes by decide.create_log_partition()';
