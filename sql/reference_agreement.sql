-- decide() against the plain-SQL reference implementation (sql/include/reference.sql).
--
-- Builds a random but reproducible world (setseed), a few thousand entities
-- in hierarchies and a few hundred policies mixing exact uids, globs, '*',
-- priorities with ties, allows and denies, and conditions (some of which
-- error or yield unknown at run time), then asks decide() and
-- decide_reference.decide() the same few thousand random requests and
-- counts the disagreements, which must be zero.  The coverage counts show
-- which paths the requests took; on a disagreement the first ones are listed
-- with both answers.
--
-- The output must not depend on plans: random draws are made in CTEs over
-- generate_series, in series order, and the few table lookups (to aim
-- requests at policies) are by key with sorted results.  Counts assume a
-- UTF-8 database, as pg_regress creates under a UTF-8 locale ('?' matches
-- one character of 'doc:é5').
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
\set ECHO none
\set QUIET on
\i sql/include/reference.sql
\set ECHO all
TRUNCATE decide.policies, decide.entities;
SELECT setseed(0.42) AS seeded \gset

-- A random element of an array.
CREATE FUNCTION pg_temp.pick(choices text[]) RETURNS text
    LANGUAGE sql VOLATILE
    AS $$ SELECT choices[1 + floor(random() * cardinality(choices))::int] $$;

-- Entities --------------------------------------------------------------

-- Actions: read and list are views, write and delete edits, delete and
-- share administration; all three groups are in action:any.  "export"
-- (no row) and "admin" (no row) are requested too.
INSERT INTO decide.entities (uid, parents) VALUES
  ('action:any',    '{}'),
  ('action:view',   '{action:any}'),
  ('action:edit',   '{action:any}'),
  ('action:manage', '{action:any}'),
  ('read',          '{action:view}'),
  ('list',          '{action:view}'),
  ('write',         '{action:edit}'),
  ('delete',        '{action:edit,action:manage}'),
  ('share',         '{action:manage}');

-- Roles: a tree of 20 (role:0 at the top, three levels below it), a few
-- with a second parent.
INSERT INTO decide.entities (uid, parents)
SELECT 'role:' || i,
       CASE WHEN i = 0 THEN '{}'
            WHEN i % 7 = 0 THEN ARRAY['role:' || (i - 1) / 3, 'role:' || (i - 1) / 5]
            ELSE ARRAY['role:' || (i - 1) / 3] END
  FROM generate_series(0, 19) AS i;

-- Groups: 80, each in one or two random roles; groups 60-79 are also in a
-- lower-numbered group (a group of groups).
WITH draws AS (
    SELECT i, random() AS a, random() AS b, random() AS c FROM generate_series(0, 79) AS i
)
INSERT INTO decide.entities (uid, parents)
SELECT 'group:' || i,
       ARRAY['role:' || floor(a * 20)::int]
       || CASE WHEN b < 0.4 THEN ARRAY['role:' || floor(c * 20)::int] ELSE '{}' END
       || CASE WHEN i >= 60 THEN ARRAY['group:' || (i - 60)] ELSE '{}' END
  FROM draws;

-- Users: 1500, in up to three groups or roles (some in none), with
-- attributes: dept, level (usually a number, sometimes a string or absent),
-- mfa, a spending limit; some have no attributes at all.
WITH draws AS (
    SELECT i, random() AS n_parents, random() AS p1, random() AS p2, random() AS p3,
           random() AS has_attrs, random() AS level_kind, random() AS level,
           random() AS mfa, random() AS lim, pg_temp.pick('{legal,eng,sales,hr}') AS dept
      FROM generate_series(0, 1499) AS i
)
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'user:' || i,
       (ARRAY['group:' || floor(p1 * 80)::int,
              'group:' || floor(p2 * 80)::int,
              'role:' || floor(p3 * 20)::int])[1:floor(n_parents * 4)::int],
       CASE WHEN has_attrs < 0.1 THEN '{}'
       ELSE jsonb_strip_nulls(jsonb_build_object(
           'dept', dept,
           'level', CASE WHEN level_kind < 0.8 THEN to_jsonb(1 + floor(level * 5)::int)
                         WHEN level_kind < 0.9 THEN to_jsonb((1 + floor(level * 5)::int)::text)
                    END,
           'mfa', CASE WHEN mfa < 0.5 THEN to_jsonb(mfa < 0.3) END,
           'limit', CASE WHEN lim < 0.3 THEN to_jsonb(floor(lim * 3000)::int) END))
       END
  FROM draws;

-- Folders: a tree of 130 (folder:0 at the top, four levels below it).
WITH draws AS (
    SELECT i, random() AS c FROM generate_series(0, 129) AS i
)
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'folder:' || i,
       CASE WHEN i = 0 THEN '{}' ELSE ARRAY['folder:' || (i - 1) / 3] END,
       CASE WHEN c < 0.3 THEN jsonb_build_object('classification', 'secret') ELSE '{}' END
  FROM draws;

-- Documents: 1200, in one folder or two, with classification, level and
-- owner (user:<k mod 50>, so that requests can name the owner).
WITH draws AS (
    SELECT i, random() AS f1, random() AS f2, random() AS two, random() AS has_owner,
           random() AS level, pg_temp.pick('{public,internal,secret,NULL}') AS classification
      FROM generate_series(0, 1199) AS i
)
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'doc:' || i,
       ARRAY['folder:' || floor(f1 * 130)::int]
       || CASE WHEN two < 0.15 THEN ARRAY['folder:' || floor(f2 * 130)::int] ELSE '{}' END,
       jsonb_strip_nulls(jsonb_build_object(
           'classification', classification,
           'level', 1 + floor(level * 5)::int,
           'owner', CASE WHEN has_owner < 0.6 THEN 'user:' || i % 50 END))
  FROM draws;

-- Uids with multibyte characters and with the characters LIKE treats
-- specially, to check glob translation.
INSERT INTO decide.entities (uid, parents, attrs) VALUES
  ('doc:é5',   '{folder:7}', '{"classification":"secret"}'),
  ('doc:_5',   '{folder:8}', '{}'),
  ('doc:%5',   '{folder:9}', '{}'),
  ('doc:a\b5', '{folder:10}', '{}'),
  ('user:ü1',  '{group:3}',  '{"dept":"eng","level":4}'),
  ('user:_1',  '{group:4}',  '{}');

-- Policies --------------------------------------------------------------

CREATE TEMP TABLE condition_templates (k int, condition text);
INSERT INTO condition_templates (k, condition) VALUES
  ( 0, '$.actor.attrs.dept == "%s"'),
  ( 1, '$.actor.attrs.level >= %n'),                    -- string levels: unknown
  ( 2, '$.resource.attrs.classification == "%c"'),
  ( 3, '$.resource.attrs.owner == $.actor.uid'),
  ( 4, '$.context.ip starts with "10."'),
  ( 5, '!($.context.ip starts with "10.")'),            -- no ip: unknown
  ( 6, '$.context.mfa == true'),
  ( 7, 'strict $.actor.attrs.level > $.resource.attrs.level'),  -- missing: error
  ( 8, '$.context.n / 0 > 1'),                          -- division by zero: error
  ( 9, '$.actor.attrs.dept > %n'),                      -- string vs number: unknown
  (10, 'strict $.context.hour < 18'),
  (11, '$.context.hour >= 9 && $.context.hour < 17'),
  (12, 'exists($.context.tags[*] ? (@ == "urgent"))'),
  (13, '$.context.amount <= $.actor.attrs.limit'),
  (14, '$.resource.attrs.classification == "public" || $.actor.attrs.level > %n'),
  (15, '($.context.n > %n) is unknown'),
  (16, '$now starts with "2" && $.context.mfa == true'),
  (17, '$.context.expires.datetime() > $now.datetime()'),  -- "soon": unknown
  (18, '$now == $.context.now'),                        -- checks the format of $now
  (19, '$.actor.attrs.mfa == true && $.context.n > %n'),
  (20, '$.action == "read" || $.action == "list"'),
  (21, '$.resource.uid like_regex "^doc:1"'),
  (22, '$.context.n == $.actor.attrs.level'),
  (23, '$.context.n % 2 == 0'),                         -- string n: error
  (24, 'strict $.actor.attrs.dept starts with "e"'),
  (25, '$.context.n.abs() + $.actor.attrs.level > 6');

WITH draws AS (
    SELECT i,
           random() AS actor_kind, random() AS actor_n,
           random() AS action_kind,
           random() AS resource_kind, random() AS resource_n,
           random() AS deny, random() AS priority, random() AS inactive,
           random() AS has_condition, random() AS template, random() AS number,
           pg_temp.pick('{low,medium,high,critical}') AS risk,
           pg_temp.pick('{legal,eng,sales,hr}') AS dept,
           pg_temp.pick('{public,internal,secret}') AS classification,
           pg_temp.pick('{read,list,write,delete,share,export}') AS action_uid,
           pg_temp.pick('{action:any,action:view,action:edit,action:manage}') AS action_group,
           pg_temp.pick('{*,r*,*e,action:*,?rite,action:?iew,de*te}') AS action_glob,
           pg_temp.pick('{user:1*,user:2?,user:*5,user:1*2,group:1*,group:?,role:1?,user:??,user:_*,user:ü?,*:1*3}') AS actor_glob,
           pg_temp.pick('{doc:?5,doc:1*,doc:*7,folder:4*,folder:1?,doc:??,doc:_*,doc:%*,doc:a\\*,img:*,doc:1?3*}') AS resource_glob
      FROM generate_series(1, 400) AS i
)
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition,
                             risk_level, active)
SELECT 'p' || i,
       CASE WHEN deny < 0.4 THEN 'deny' ELSE 'allow' END::decide.effect,
       -- broad rules ('*' or a glob for the actor or the resource) rank
       -- lower, as they usually do, and rules on everyone and everything lowest
       CASE WHEN actor_kind < 0.12 AND resource_kind < 0.12 THEN 0
            WHEN actor_kind < 0.12 OR actor_kind >= 0.75
              OR resource_kind < 0.12 OR resource_kind >= 0.65
            THEN floor(priority * priority * 2)::int       -- 0 (71%) or 1
            ELSE floor(priority * 4)::int END,
       CASE WHEN actor_kind < 0.12 THEN '*'
            WHEN actor_kind < 0.30 THEN 'user:' || floor(actor_n * 1500)::int
            WHEN actor_kind < 0.52 THEN 'group:' || floor(actor_n * 80)::int
            WHEN actor_kind < 0.70 THEN 'role:' || floor(actor_n * 20)::int
            WHEN actor_kind < 0.75 THEN 'svc:' || floor(actor_n * 5)::int   -- no row
            ELSE actor_glob END,
       CASE WHEN action_kind < 0.2 THEN '*'
            WHEN action_kind < 0.6 THEN action_uid
            WHEN action_kind < 0.9 THEN action_group
            ELSE action_glob END,
       CASE WHEN resource_kind < 0.12 THEN '*'
            WHEN resource_kind < 0.30 THEN 'doc:' || floor(resource_n * 1200)::int
            WHEN resource_kind < 0.62 THEN 'folder:' || floor(resource_n * 130)::int
            WHEN resource_kind < 0.65 THEN 'img:' || floor(resource_n * 5)::int  -- no row
            ELSE resource_glob END,
       CASE WHEN has_condition < 0.45 THEN
           replace(replace(replace(
               (SELECT t.condition FROM condition_templates t
                 WHERE t.k = floor(template * 26)::int),
               '%s', dept), '%c', classification), '%n', (1 + floor(number * 5)::int)::text)
       END::jsonpath,
       risk::decide.risk_level,
       inactive >= 0.08
  FROM draws;

-- Above all of them, for requests that read: $now must be what the
-- reference computes (the comparison puts that value in the context).
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition)
VALUES ('now-format', 'allow', 4, '*', 'read', '*', '$now == $.context.now');

SELECT (SELECT count(*) FROM decide.entities) AS entities,
       count(*) AS policies,
       count(*) FILTER (WHERE NOT active) AS inactive,
       count(*) FILTER (WHERE condition IS NOT NULL) AS with_condition,
       count(*) FILTER (WHERE actor ~ '[*?]' OR action ~ '[*?]' OR resource ~ '[*?]')
           AS with_glob,
       count(DISTINCT priority) AS priorities
  FROM decide.policies;

-- Requests --------------------------------------------------------------

-- Random requests rarely meet a rule on one user or one document, so a third
-- of them aim at a random policy: its actor or a direct member of it, its
-- action, its resource or a direct child of it (exact patterns only; the
-- other parts stay random).  Actors and resources include uids without rows
-- (user:1500-1699, doc:1200-1349, svc:*, img:*); one request in ten names a
-- document and its owner.  Contexts carry random keys of random types;
-- with_now marks the requests whose context will carry the statement's $now.
CREATE TEMP TABLE requests AS
WITH draws AS (
    SELECT i,
           random() AS actor_kind, random() AS actor_n,
           random() AS resource_kind, random() AS resource_n,
           random() AS owner_request, random() AS targeted, random() AS target,
           random() AS member, random() AS child,
           pg_temp.pick('{read,read,list,write,write,delete,share,export,admin,action:view}') AS action,
           pg_temp.pick('{user:ü1,user:_1,group:3,role:2,svc:1}') AS odd_actor,
           pg_temp.pick('{doc:é5,doc:_5,doc:%5,doc:a\\b5,img:2,folder:0}') AS odd_resource,
           random() AS ip, random() AS mfa, random() AS hour, random() AS n, random() AS amount,
           random() AS tags, random() AS expires, random() AS with_now, random() AS empty
      FROM generate_series(1, 3000) AS i
),
random_requests AS (
    SELECT i, targeted, target, member, child,
           CASE WHEN owner_request < 0.1 THEN 'user:' || floor(resource_n * 1200)::int % 50
                WHEN actor_kind < 0.85 THEN 'user:' || floor(actor_n * 1700)::int
                WHEN actor_kind < 0.90 THEN 'group:' || floor(actor_n * 80)::int
                WHEN actor_kind < 0.94 THEN 'svc:' || floor(actor_n * 5)::int
                ELSE odd_actor END AS actor,
           action,
           CASE WHEN owner_request < 0.1 THEN 'doc:' || floor(resource_n * 1200)::int
                WHEN resource_kind < 0.75 THEN 'doc:' || floor(resource_n * 1350)::int
                WHEN resource_kind < 0.90 THEN 'folder:' || floor(resource_n * 140)::int
                WHEN resource_kind < 0.94 THEN 'img:' || floor(resource_n * 5)::int
                ELSE odd_resource END AS resource,
           CASE WHEN empty < 0.1 THEN '{}'
           ELSE jsonb_strip_nulls(jsonb_build_object(
               'ip', CASE WHEN ip < 0.3 THEN '10.0.0.' || floor(ip * 100)::int
                          WHEN ip < 0.6 THEN '192.168.1.' || floor(ip * 100)::int END,
               'mfa', CASE WHEN mfa < 0.3 THEN to_jsonb(true) WHEN mfa < 0.5 THEN to_jsonb(false)
                           WHEN mfa < 0.6 THEN to_jsonb('yes'::text) END,
               'hour', CASE WHEN hour < 0.5 THEN to_jsonb(floor(hour * 48)::int)
                            WHEN hour < 0.6 THEN to_jsonb('9'::text) END,
               'n', CASE WHEN n < 0.5 THEN to_jsonb(floor(n * 20)::int - 3)
                         WHEN n < 0.6 THEN to_jsonb('7'::text) END,
               'amount', CASE WHEN amount < 0.4 THEN to_jsonb(floor(amount * 5000)::int) END,
               'tags', CASE WHEN tags < 0.15 THEN '["urgent"]'::jsonb
                            WHEN tags < 0.3 THEN '["normal", "x"]'::jsonb END,
               'expires', CASE WHEN expires < 0.1 THEN to_jsonb('2099-01-01T00:00:00+00:00'::text)
                               WHEN expires < 0.2 THEN to_jsonb('2001-01-01T00:00:00+00:00'::text)
                               WHEN expires < 0.3 THEN to_jsonb('soon'::text) END))
           END AS context,
           with_now < 0.1 AS with_now
      FROM draws
)
-- The lookups below are by key, sorted: their results do not depend on plans.
SELECT r.i AS id,
       CASE WHEN t.actor IS NULL OR t.actor ~ '[*?]' THEN r.actor
            WHEN r.member < 0.5 THEN t.actor
            ELSE coalesce((SELECT (array_agg(e.uid::text ORDER BY e.uid))
                                      [1 + floor((r.member - 0.5) * 2 * count(*))::int]
                             FROM decide.entities e WHERE e.parents @> ARRAY[t.actor::text]),
                          t.actor) END AS actor,
       CASE WHEN t.action IS NULL OR t.action ~ '[*?]' THEN r.action
            ELSE t.action END AS action,
       CASE WHEN t.resource IS NULL OR t.resource ~ '[*?]' THEN r.resource
            WHEN r.child < 0.3 THEN t.resource
            ELSE coalesce((SELECT (array_agg(e.uid::text ORDER BY e.uid))
                                      [1 + floor((r.child - 0.3) / 0.7 * count(*))::int]
                             FROM decide.entities e WHERE e.parents @> ARRAY[t.resource::text]),
                          t.resource) END AS resource,
       r.context, r.with_now
  FROM random_requests r
  LEFT JOIN decide.policies t
         ON r.targeted < 0.33 AND t.name = 'p' || (1 + floor(r.target * 400)::int);

-- The comparison ------------------------------------------------------

-- Both implementations, and decide_explain(), answer each request in the
-- same statement, so $now is the same for all three; requests marked
-- with_now get $now (formatted as the reference formats it) in their
-- context.  decide_explain() only feeds the coverage counts (which paths the
-- requests took) and a consistency check against decide().
CREATE TEMP TABLE answers AS
SELECT r.id, r.actor, r.action, r.resource, c.context,
       d.allowed AS d_allowed, d.effect AS d_effect, d.policy AS d_policy, d.risk_level AS d_risk,
       ref.allowed AS r_allowed, ref.effect AS r_effect, ref.policy AS r_policy,
       ref.risk_level AS r_risk,
       x.*
  FROM requests r
 CROSS JOIN LATERAL (
       SELECT CASE WHEN r.with_now
                   THEN r.context || jsonb_build_object('now',
                            (to_jsonb(statement_timestamp() AT TIME ZONE 'UTC') #>> '{}') || '+00:00')
                   ELSE r.context END AS context) c
 CROSS JOIN LATERAL decide(r.actor, r.action, r.resource, c.context) d
 CROSS JOIN LATERAL decide_reference.decide(r.actor, r.action, r.resource, c.context) ref
 CROSS JOIN LATERAL (
       SELECT max(e.policy) FILTER (WHERE e.decisive) AS explain_policy,
              -- a deny decided because its condition could not be evaluated
              coalesce(bool_or(e.decisive AND e.condition = 'unknown'), false)
                  AS unknown_deny_decided,
              -- an allow that would have decided, had unknown counted as true
              coalesce(bool_or(e.effect = 'allow' AND e.condition = 'unknown'
                               AND e.rank < coalesce(e.decisive_rank, 2147483647)), false)
                  AS unknown_allow_passed,
              -- another policy that applies at the decisive priority: the
              -- tie is broken by deny over allow, or by id
              coalesce(bool_or(NOT e.decisive AND e.applies AND e.priority = e.decisive_priority
                               AND e.effect <> e.decisive_effect), false) AS tie_deny_over_allow,
              coalesce(bool_or(NOT e.decisive AND e.applies AND e.priority = e.decisive_priority
                               AND e.effect = e.decisive_effect), false) AS tie_by_id
         FROM (SELECT e.*,
                      e.actor_matched AND e.action_matched AND e.resource_matched
                        AND (e.condition IN ('none', 'true')
                             OR (e.condition = 'unknown' AND e.effect = 'deny')) AS applies,
                      min(e.rank) FILTER (WHERE e.decisive) OVER () AS decisive_rank,
                      min(e.priority) FILTER (WHERE e.decisive) OVER () AS decisive_priority,
                      min(e.effect) FILTER (WHERE e.decisive) OVER () AS decisive_effect
                 FROM decide_explain(r.actor, r.action, r.resource, c.context) e) e) x;

-- Coverage: what the requests exercised.
SELECT count(*) AS requests,
       count(*) FILTER (WHERE r_allowed) AS allowed,
       count(*) FILTER (WHERE NOT r_allowed) AS denied,
       count(*) FILTER (WHERE r_policy IS NULL) AS default_deny,
       count(DISTINCT r_policy) AS deciding_policies,
       count(*) FILTER (WHERE NOT EXISTS (SELECT FROM decide.entities e WHERE e.uid = a.actor))
           AS actor_without_row,
       count(*) FILTER (WHERE NOT EXISTS (SELECT FROM decide.entities e WHERE e.uid = a.resource))
           AS resource_without_row
  FROM answers a;

-- ... by the deciding policy (of the reference's answer)
SELECT count(*) FILTER (WHERE p.condition IS NOT NULL) AS by_condition,
       count(*) FILTER (WHERE p.condition IS NOT NULL AND p.effect = 'allow')
           AS allowed_by_condition,
       count(*) FILTER (WHERE p.condition::text LIKE '%$"now"%') AS by_now_condition,
       count(*) FILTER (WHERE p.actor ~ '[*?]' AND p.actor <> '*'
                           OR p.action ~ '[*?]' AND p.action <> '*'
                           OR p.resource ~ '[*?]' AND p.resource <> '*') AS by_glob,
       count(*) FILTER (WHERE p.actor !~ '[*?]' AND p.actor <> a.actor
                           OR p.action !~ '[*?]' AND p.action <> a.action
                           OR p.resource !~ '[*?]' AND p.resource <> a.resource)
           AS via_ancestor
  FROM answers a
  JOIN decide.policies p ON p.name = a.r_policy;

-- ... and by the paths through the combining rules (from decide_explain)
SELECT count(*) FILTER (WHERE unknown_deny_decided) AS unknown_deny_decided,
       count(*) FILTER (WHERE unknown_allow_passed) AS unknown_allow_passed,
       count(*) FILTER (WHERE tie_deny_over_allow) AS tie_deny_over_allow,
       count(*) FILTER (WHERE tie_by_id) AS tie_by_id
  FROM answers;

-- The verdict: both must be 0.
SELECT count(*) FILTER (WHERE (d_allowed, d_effect, d_policy, d_risk)
                              IS DISTINCT FROM (r_allowed, r_effect, r_policy, r_risk))
           AS mismatches,
       count(*) FILTER (WHERE explain_policy IS DISTINCT FROM d_policy)
           AS explain_disagrees_with_decide
  FROM answers;

-- The first disagreements, if any, with both answers.
SELECT id, actor, action, resource, context,
       (d_allowed, d_effect, d_policy, d_risk) AS decide,
       (r_allowed, r_effect, r_policy, r_risk) AS reference
  FROM answers
 WHERE (d_allowed, d_effect, d_policy, d_risk)
       IS DISTINCT FROM (r_allowed, r_effect, r_policy, r_risk)
 ORDER BY id
 LIMIT 5;

-- ... and the policies those answers name.
SELECT p.name, p.effect, p.priority, p.actor, p.action, p.resource, p.condition, p.active
  FROM decide.policies p
 WHERE p.name IN (SELECT unnest(ARRAY[d_policy, r_policy])
                    FROM (SELECT * FROM answers
                           WHERE (d_allowed, d_effect, d_policy, d_risk)
                                 IS DISTINCT FROM (r_allowed, r_effect, r_policy, r_risk)
                           ORDER BY id
                           LIMIT 5) AS first_mismatches)
 ORDER BY p.id;

-- Policies changing under the caches ---------------------------------
--
-- 25 rounds over 60 of the requests (those without $now): decide them
-- (filling L1 and L2 under the current epoch), commit one random change to
-- one random policy (effect, priority, active, or its resource pattern),
-- then decide them again beside the reference.  Most answers after a change
-- come from a cache (carried forward from the previous epoch's entries, or
-- found in L2 where the worker, woken by the commit, put them first); none
-- may differ from the reference.
CREATE TEMP TABLE churn_requests AS
SELECT id, actor, action, resource, context FROM requests WHERE NOT with_now ORDER BY id LIMIT 60;
CREATE TEMP TABLE churn_results (round int, mismatches bigint, decided bigint, from_cache bigint);
DO $$
DECLARE
    victim bigint;
    kind int;
    mismatches bigint;
    before record;
    after record;
BEGIN
    FOR round IN 1 .. 25 LOOP
        PERFORM count(*) FROM churn_requests c, LATERAL decide(c.actor, c.action, c.resource, c.context) d;
        SELECT id INTO victim FROM decide.policies ORDER BY id
         OFFSET floor(random() * (SELECT count(*) FROM decide.policies)) LIMIT 1;
        kind := floor(random() * 4);
        IF kind = 0 THEN
            UPDATE decide.policies SET effect = CASE effect WHEN 'allow' THEN 'deny' ELSE 'allow' END::decide.effect
             WHERE id = victim;
        ELSIF kind = 1 THEN
            UPDATE decide.policies SET priority = floor(random() * 5) WHERE id = victim;
        ELSIF kind = 2 THEN
            UPDATE decide.policies SET active = NOT active WHERE id = victim;
        ELSE
            UPDATE decide.policies
               SET resource = (SELECT p.resource FROM decide.policies p ORDER BY p.id
                                OFFSET floor(random() * (SELECT count(*) FROM decide.policies)) LIMIT 1)
             WHERE id = victim;
        END IF;
        COMMIT;
        SELECT decisions, l1_hits + l2_hits + carried_forward AS cached INTO before FROM decide_stats;
        SELECT count(*) INTO mismatches
          FROM churn_requests c
         CROSS JOIN LATERAL decide(c.actor, c.action, c.resource, c.context) d
         CROSS JOIN LATERAL decide_reference.decide(c.actor, c.action, c.resource, c.context) ref
         WHERE (d.allowed, d.effect, d.policy, d.risk_level)
               IS DISTINCT FROM (ref.allowed, ref.effect, ref.policy, ref.risk_level);
        SELECT decisions, l1_hits + l2_hits + carried_forward AS cached INTO after FROM decide_stats;
        INSERT INTO churn_results
        VALUES (round, mismatches, after.decisions - before.decisions, after.cached - before.cached);
        COMMIT;
    END LOOP;
END
$$;
SELECT count(*) AS rounds, sum(mismatches) AS mismatches, sum(decided) AS decided_after_changes,
       sum(from_cache) > sum(decided) / 2 AS mostly_from_cache
  FROM churn_results;
DROP TABLE churn_requests, churn_results;

-- Leave nothing behind.
DROP TABLE answers, requests, condition_templates;
DROP FUNCTION pg_temp.pick(text[]);
TRUNCATE decide.policies, decide.entities;
DROP SCHEMA decide_reference CASCADE;
