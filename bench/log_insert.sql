-- bench/log_insert.sql — what one row of the decision log costs to write,
-- and how much of it each index adds.  Run by bench/layers.sh (logcost):
-- 200,000 rows shaped like the worker's batches (10,000 actors, 50
-- policies, 4 risk levels, 20% denials) inserted with one INSERT ... SELECT
-- into a scratch copy of decide.decisions' columns, first with no index,
-- then adding the table's indexes one at a time.  Prints one line per step:
-- microseconds per row (the best of five), and what that index added; then
-- the cost with every index once the table already holds 2,000,000 rows;
-- last, what building the same five indexes afterwards, by sort, costs a row.
SET client_min_messages = notice;
CREATE TEMP TABLE log_rows AS
SELECT 'user:u' || (i % 10000) AS actor, 'read'::text AS action,
       'doc:' || (i * 7919 % 100000) AS resource, i % 5 <> 0 AS allowed,
       'policy-' || (i % 50) AS policy,
       (ARRAY['low', 'medium', 'high', 'critical'])[1 + i % 4]::decide.risk_level AS risk_level
  FROM generate_series(1, 200000) i;
DROP TABLE IF EXISTS public.log_insert_scratch;
CREATE TABLE public.log_insert_scratch (LIKE decide.decisions INCLUDING DEFAULTS);
-- Writes the 200,000 rows once, as the worker's INSERT ... SELECT does;
-- returns the microseconds a row took.
CREATE FUNCTION pg_temp.insert_log_rows() RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    INSERT INTO public.log_insert_scratch (decided_at, actor, action, resource, allowed,
                                           effect, policy, risk_level, reason, epoch, source)
    SELECT clock_timestamp(), actor, action, resource, allowed,
           CASE WHEN allowed THEN 'allow' ELSE 'deny' END::decide.effect, policy, risk_level,
           'allowed by policy "policy-x" (priority 10)', 5, 'miss'
      FROM log_rows;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / 200000;
END
$$;
DO $$
DECLARE
    labels text[] := ARRAY['heap only', 'primary key (decided_at, id)', '(actor, decided_at, id)',
                           '(decided_at, id) WHERE NOT allowed', '(risk_level, decided_at, id)',
                           '(policy, decided_at, id)'];
    steps text[] := ARRAY[
        NULL,
        'ALTER TABLE public.log_insert_scratch ADD PRIMARY KEY (decided_at, id)',
        'CREATE INDEX ON public.log_insert_scratch (actor, decided_at, id)',
        'CREATE INDEX ON public.log_insert_scratch (decided_at, id) WHERE NOT allowed',
        'CREATE INDEX ON public.log_insert_scratch (risk_level, decided_at, id)',
        'CREATE INDEX ON public.log_insert_scratch (policy, decided_at, id)'];
    i int;
    step text;
    previous double precision := 0;
    best double precision;
    attempt int;
BEGIN
    FOR i IN 1 .. array_length(labels, 1) LOOP
        step := steps[i];
        IF step IS NOT NULL THEN
            EXECUTE step;
        END IF;
        best := NULL;
        FOR attempt IN 1 .. 5 LOOP      -- the best of five: the machine may be shared
            TRUNCATE public.log_insert_scratch;
            best := least(best, pg_temp.insert_log_rows());
        END LOOP;
        RAISE NOTICE 'log row cost: % | % us/row | +% us', labels[i], round(best::numeric, 2),
            round((best - previous)::numeric, 2);
        previous := best;
    END LOOP;

    -- The steps above write into an empty table, the lower bound.  The
    -- worker writes into a day's partition that grows to millions of rows:
    -- deeper trees, more splits.  The same rows once more, into the table
    -- with every index and 2,000,000 rows already in it.
    TRUNCATE public.log_insert_scratch;
    FOR attempt IN 1 .. 10 LOOP
        PERFORM pg_temp.insert_log_rows();
    END LOOP;
    best := NULL;
    FOR attempt IN 1 .. 3 LOOP
        best := least(best, pg_temp.insert_log_rows());
    END LOOP;
    RAISE NOTICE 'log row cost: all indexes, 2,000,000 rows already in | % us/row | ', round(best::numeric, 2);
END
$$;

-- The least any design that indexes every row can spend: the indexes built
-- afterwards in one sorted pass each (as if deferred until the day's
-- partition closes), in place of one insertion per row.  One process, no
-- parallel workers: this is CPU a row costs, not wall time.
SET max_parallel_maintenance_workers = 0;
DO $$
DECLARE
    rows bigint := (SELECT count(*) FROM public.log_insert_scratch);
    t0 timestamptz;
    index_oid oid;
BEGIN
    FOR index_oid IN SELECT indexrelid FROM pg_index WHERE indrelid = 'public.log_insert_scratch'::regclass
                      AND NOT indisprimary LOOP
        EXECUTE format('DROP INDEX %s', index_oid::regclass);
    END LOOP;
    ALTER TABLE public.log_insert_scratch DROP CONSTRAINT log_insert_scratch_pkey;
    t0 := clock_timestamp();
    ALTER TABLE public.log_insert_scratch ADD PRIMARY KEY (decided_at, id);
    CREATE INDEX ON public.log_insert_scratch (actor, decided_at, id);
    CREATE INDEX ON public.log_insert_scratch (decided_at, id) WHERE NOT allowed;
    CREATE INDEX ON public.log_insert_scratch (risk_level, decided_at, id);
    CREATE INDEX ON public.log_insert_scratch (policy, decided_at, id);
    RAISE NOTICE 'log row cost: all indexes built afterwards by sort, over % rows | % us/row | ', rows,
        round((extract(epoch FROM clock_timestamp() - t0) * 1e6 / rows)::numeric, 2);
END
$$;
DROP TABLE public.log_insert_scratch;
