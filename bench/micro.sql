-- bench/micro.sql — the cost of one uncached decision inside the backend.
--
--   psql -X -At -v calls=100000 -v actors=10000 -v resources=50000 -f bench/micro.sql
--
-- One statement calls decide() :calls times over requests spread across all
-- actors and resources (key g -> user (g*7919 mod actors), one of 10 actions,
-- doc (g*104729 mod resources), an on- or off-network context). It is timed
-- inside the server with clock_timestamp(), and so is the same statement with
-- a no-op in place of decide() (the same LATERAL computing the same
-- arguments); the difference divided by :calls is the cost of a decision.
--
-- Run in a fresh connection:
--   load     the first decide() call of the backend, which compiles the
--            policy set (ms);
--   cold     the first pass: every entity is fetched and its ancestors
--            computed (the per-backend entity cache starts empty);
--   warm     three more passes with the entity cache filled (the figure the
--            targets refer to); each has its own no-op pass just before it,
--            and the median is reported;
--   allowed  the same warm passes through decide_allowed(), the boolean form
--            that RLS policies call (no result row to build).
-- If a decision cache exists (GUC decide.cache, decide 0.2 on), it is turned off
-- first, so that these stay uncached costs.
-- Prints one JSON object.
\set ON_ERROR_STOP on
\if :{?calls} \else \set calls 100000 \endif
\if :{?actors} \else \set actors 10000 \endif
\if :{?resources} \else \set resources 50000 \endif
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
SET jit = off;
SELECT current_setting('decide.cache', true) IS NOT NULL AS has_cache_guc \gset
\if :has_cache_guc
SET decide.cache = off;
\endif

CREATE FUNCTION pg_temp.elapsed_ms(statement text) RETURNS float8
    LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE statement;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END
$$;

CREATE TEMP TABLE passes (n serial, kind text, ms float8);

-- The request of key g; {call} is replaced by what consumes it.
SELECT format($q$
    SELECT count(*) FILTER (WHERE %%s)
      FROM generate_series(1::bigint, %1$s) AS g
     CROSS JOIN LATERAL (SELECT 'user:' || mod(g * 7919, %2$s),
                                (ARRAY['read','list','export','comment','audit',
                                       'write','delete','share','approve','archive'])[1 + mod(g, 10)],
                                'doc:' || mod(g * 104729, %3$s),
                                (ARRAY['{"ip":"10.1.2.3"}', '{"ip":"203.0.113.9"}']::jsonb[])[1 + mod(g / 10, 2)])
                  AS x(actor, action, resource, context)
      %%s $q$, :'calls', :'actors', :'resources') AS template \gset

SELECT format(:'template', 'x.actor IS NOT NULL AND x.action IS NOT NULL AND x.resource IS NOT NULL AND x.context IS NOT NULL', '') AS q_noop,
       format(:'template', 'd.allowed', 'CROSS JOIN LATERAL decide(x.actor, x.action, x.resource, x.context) AS d') AS q_decide,
       format(:'template', 'decide_allowed(x.actor, x.action, x.resource, x.context)', '') AS q_allowed \gset

-- The first call compiles the policy set for this backend.
INSERT INTO passes (kind, ms)
SELECT 'load', pg_temp.elapsed_ms($$SELECT decide('user:0', 'read', 'doc:0')$$);
-- Cold: the entity cache holds only the three entities of that call.
INSERT INTO passes (kind, ms) SELECT 'noop', pg_temp.elapsed_ms(:'q_noop');
INSERT INTO passes (kind, ms) SELECT 'cold', pg_temp.elapsed_ms(:'q_decide');
INSERT INTO passes (kind, ms) SELECT 'noop', pg_temp.elapsed_ms(:'q_noop');
INSERT INTO passes (kind, ms) SELECT 'warm', pg_temp.elapsed_ms(:'q_decide');
INSERT INTO passes (kind, ms) SELECT 'noop', pg_temp.elapsed_ms(:'q_noop');
INSERT INTO passes (kind, ms) SELECT 'warm', pg_temp.elapsed_ms(:'q_decide');
INSERT INTO passes (kind, ms) SELECT 'noop', pg_temp.elapsed_ms(:'q_noop');
INSERT INTO passes (kind, ms) SELECT 'warm', pg_temp.elapsed_ms(:'q_decide');
INSERT INTO passes (kind, ms) SELECT 'noop', pg_temp.elapsed_ms(:'q_noop');
INSERT INTO passes (kind, ms) SELECT 'allowed', pg_temp.elapsed_ms(:'q_allowed');
INSERT INTO passes (kind, ms) SELECT 'noop', pg_temp.elapsed_ms(:'q_noop');
INSERT INTO passes (kind, ms) SELECT 'allowed', pg_temp.elapsed_ms(:'q_allowed');
INSERT INTO passes (kind, ms) SELECT 'noop', pg_temp.elapsed_ms(:'q_noop');
INSERT INTO passes (kind, ms) SELECT 'allowed', pg_temp.elapsed_ms(:'q_allowed');

SELECT json_build_object(
    'calls', :calls,
    'policies', (SELECT count(*) FROM decide.policies),
    'entities', (SELECT count(*) FROM decide.entities),
    'decision_cache_guc', :'has_cache_guc'::boolean,
    'load_ms', (SELECT round(ms::numeric, 3) FROM passes WHERE kind = 'load'),
    'noop_ms', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM passes WHERE kind = 'noop'),
    'cold_us', (SELECT round(((c.ms - n.ms) * 1000 / :calls)::numeric, 3)
                  FROM passes c, passes n WHERE c.kind = 'cold' AND n.n = c.n - 1),
    'warm_us', (SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ((w.ms - n.ms) * 1000 / :calls))::numeric, 3)
                  FROM passes w JOIN passes n ON n.n = w.n - 1 WHERE w.kind = 'warm'),
    'allowed_us', (SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ((w.ms - n.ms) * 1000 / :calls))::numeric, 3)
                  FROM passes w JOIN passes n ON n.n = w.n - 1 WHERE w.kind = 'allowed'),
    'passes', (SELECT json_agg(json_build_object('kind', kind, 'ms', round(ms::numeric, 3)) ORDER BY n) FROM passes));
