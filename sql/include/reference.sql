-- sql/include/reference.sql — the decision semantics of decide in plain SQL.
--
-- What it is for:
--   * an oracle: the regression test sql/reference_agreement.sql draws random
--     requests and checks that decide() and decide_reference.decide() give
--     the same answer (allowed, effect, policy, risk_level) on every one;
--   * a baseline: the benchmarks (bench/run.sh) run the same workloads
--     through this implementation, to show what decide() saves over the
--     obvious SQL.
--
-- It follows the rules of docs/reference.md ("Semantics": entities and their
-- ancestors, patterns, conditions, combining rules) literally and is written
-- the way a competent user would write it without the extension:
-- one readable, set-based SQL function over decide.policies and
-- decide.entities, no caches, no indexes beyond the tables' own, no tricks.
-- It reads the tables directly, so it needs SELECT on them (decide_admin).
--
-- Load it with psql, from the repository's top directory:
--   \i sql/include/reference.sql
-- (re-runnable: it replaces the schema decide_reference).

DROP SCHEMA IF EXISTS decide_reference CASCADE;
CREATE SCHEMA decide_reference;
COMMENT ON SCHEMA decide_reference IS
    'plain-SQL reference implementation of decide() (sql/include/reference.sql): test oracle and benchmark baseline';

-- The entity itself and all its ancestors: the transitive closure of
-- "parents".  An entity without a row is its own only member.  UNION (not
-- UNION ALL) discards uids already seen, so even a cycle terminates.
CREATE FUNCTION decide_reference.ancestors(uid text)
    RETURNS SETOF text
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH RECURSIVE closure(uid) AS (
        SELECT ancestors.uid COLLATE "C"
        UNION
        SELECT parent
          FROM closure
          JOIN decide.entities e ON e.uid = closure.uid
          CROSS JOIN LATERAL unnest(e.parents) AS parent
    )
    SELECT closure.uid FROM closure;
$$;

-- Does a policy pattern match one uid?  A pattern without '*' or '?' is a
-- uid and must be equal; otherwise it is a glob: '*' matches any run of
-- characters, '?' exactly one.  The glob becomes a LIKE pattern once the
-- characters LIKE treats specially ('\', '%', '_') are escaped.
CREATE FUNCTION decide_reference.pattern_matches(pattern text, uid text)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN strpos(pattern, '*') = 0 AND strpos(pattern, '?') = 0
            THEN uid = pattern COLLATE "C"
        ELSE uid COLLATE "C" LIKE
             translate(replace(replace(replace(pattern, '\', '\\'), '%', '\%'), '_', '\_'),
                       '*?', '%_') COLLATE "C" ESCAPE '\'
    END;
$$;

-- The decision: among the active policies whose actor, action and resource
-- patterns each match the request's entity or one of its ancestors, and
-- whose condition holds, the first by priority (highest first), then deny
-- before allow, then id decides.  A condition that errors or yields unknown
-- counts as true for a deny and false for an allow (fail closed).  No such
-- policy: deny, with no policy and no risk level.
CREATE FUNCTION decide_reference.decide(
        actor text, action text, resource text, context jsonb DEFAULT '{}')
    RETURNS TABLE (allowed boolean, effect text, policy text, risk_level text)
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH request AS (
        -- Named here once; in the body, column names would shadow the
        -- parameters of the same name.
        SELECT $1 AS actor, $2 AS action, $3 AS resource, $4 AS context
    ),
    actor_closure AS (
        SELECT decide_reference.ancestors(request.actor) AS uid FROM request
    ),
    action_closure AS (
        SELECT decide_reference.ancestors(request.action) AS uid FROM request
    ),
    resource_closure AS (
        SELECT decide_reference.ancestors(request.resource) AS uid FROM request
    ),
    evaluation AS (
        -- What conditions see, and the one variable they may use: $now, the
        -- statement's start time as PostgreSQL writes a timestamptz in JSON
        -- at offset 0 ("2026-11-23T02:57:16.123456+00:00", trailing zeros of
        -- the fraction dropped).  to_jsonb() of the UTC timestamp prints
        -- exactly that, minus the offset.
        SELECT jsonb_build_object(
                   'actor', jsonb_build_object(
                       'uid', request.actor,
                       'attrs', coalesce((SELECT e.attrs FROM decide.entities e
                                           WHERE e.uid = request.actor), '{}')),
                   'action', request.action,
                   'resource', jsonb_build_object(
                       'uid', request.resource,
                       'attrs', coalesce((SELECT e.attrs FROM decide.entities e
                                           WHERE e.uid = request.resource), '{}')),
                   'context', request.context) AS document,
               jsonb_build_object(
                   'now', (to_jsonb(statement_timestamp() AT TIME ZONE 'UTC') #>> '{}') || '+00:00')
                   AS variables
          FROM request
    ),
    winner AS (
        SELECT p.effect = 'allow' AS allowed, p.effect::text AS effect,
               p.name AS policy, p.risk_level::text AS risk_level
          FROM decide.policies p, evaluation
         WHERE p.active
           AND EXISTS (SELECT FROM actor_closure a
                        WHERE decide_reference.pattern_matches(p.actor, a.uid))
           AND EXISTS (SELECT FROM action_closure a
                        WHERE decide_reference.pattern_matches(p.action, a.uid))
           AND EXISTS (SELECT FROM resource_closure r
                        WHERE decide_reference.pattern_matches(p.resource, r.uid))
           AND (p.condition IS NULL
                OR coalesce(jsonb_path_match(evaluation.document, p.condition,
                                             evaluation.variables, silent => true),
                            p.effect = 'deny'))     -- unknown: true for a deny only
         ORDER BY p.priority DESC, p.effect = 'deny' DESC, p.id
         LIMIT 1
    )
    SELECT winner.allowed, winner.effect, winner.policy, winner.risk_level FROM winner
    UNION ALL
    SELECT false, 'deny', NULL, NULL WHERE NOT EXISTS (SELECT FROM winner);
$$;

CREATE FUNCTION decide_reference.decide_allowed(
        actor text, action text, resource text, context jsonb DEFAULT '{}')
    RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT d.allowed FROM decide_reference.decide($1, $2, $3, $4) AS d;
$$;
