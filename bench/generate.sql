-- Synthetic governance data set for benchmarks.
--
--   psql -v policies=10000 -v actors=10000 -v roles=50 -v resources=50000 -f bench/generate.sql
--
-- Actors are users in roles (each role under one of 5 departments);
-- resources are documents in folders (each folder under one of 10
-- top-level areas); actions are 10 verbs in 2 action groups.  Policies are
-- spread over (role, action, folder) so each request meets only the few
-- that concern it, as in a real deployment; 10% carry a condition, 5% are
-- globs, 5% name single users, and a few broad deny rules use '*'.
-- Deterministic for given parameters.
\set ON_ERROR_STOP on
\if :{?policies} \else \set policies 10000 \endif
\if :{?actors} \else \set actors 10000 \endif
\if :{?roles} \else \set roles 50 \endif
\if :{?resources} \else \set resources 50000 \endif

SET client_min_messages = warning;
SELECT setseed(0.5);
TRUNCATE decide.policies, decide.entities;

-- Folders: enough that (role, action, folder) triples hold every policy.
SELECT greatest(1, ceil(:policies::numeric / (:roles * 10)))::int AS folders \gset

BEGIN;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'dept:' || d, '{}', jsonb_build_object('region', CASE WHEN d % 2 = 0 THEN 'eu' ELSE 'us' END)
  FROM generate_series(0, 4) d;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'role:' || r, ARRAY['dept:' || (r % 5)], '{}'
  FROM generate_series(0, :roles - 1) r;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'user:' || u, ARRAY['role:' || (u % :roles)],
       jsonb_build_object('level', u % 7, 'mfa', u % 3 = 0)
  FROM generate_series(0, :actors - 1) u;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'area:' || a, '{}', '{}' FROM generate_series(0, 9) a;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'folder:' || f, ARRAY['area:' || (f % 10)], '{}'
  FROM generate_series(0, :folders - 1) f;
INSERT INTO decide.entities (uid, parents, attrs)
SELECT 'doc:' || d, ARRAY['folder:' || (d % :folders)],
       jsonb_build_object('classification',
                          CASE WHEN d % 10 = 0 THEN 'secret' ELSE 'internal' END,
                          'owner', 'user:' || (d % :actors))
  FROM generate_series(0, :resources - 1) d;
INSERT INTO decide.entities (uid, parents) VALUES
  ('read', '{action:view}'), ('list', '{action:view}'), ('export', '{action:view}'),
  ('comment', '{action:view}'), ('audit', '{action:view}'),
  ('write', '{action:modify}'), ('delete', '{action:modify}'), ('share', '{action:modify}'),
  ('approve', '{action:modify}'), ('archive', '{action:modify}');

INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition, risk_level)
SELECT 'p' || i,
       CASE WHEN i % 4 = 0 THEN 'deny' ELSE 'allow' END::decide.effect,
       i % 3,
       CASE WHEN i % 20 = 1 THEN 'user:' || (i % :actors)
            ELSE 'role:' || (i % :roles) END,
       (ARRAY['read','list','export','comment','audit','write','delete','share','approve','archive'])
         [1 + (i / :roles) % 10],
       CASE WHEN i % 20 = 2 THEN 'doc:' || (i % 97) || '*'
            ELSE 'folder:' || ((i / (:roles * 10)) % :folders) END,
       CASE WHEN i % 10 = 3 THEN '$.actor.attrs.level >= 3'::jsonpath
            WHEN i % 10 = 7 THEN '$.context.ip starts with "10."'::jsonpath END,
       (ARRAY['low','medium','high','critical'])[1 + i % 4]::decide.risk_level
  FROM generate_series(0, :policies - 5) i;
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition, risk_level) VALUES
  ('deny-secret-off-network', 'deny', 5, '*', '*', '*',
   '$.resource.attrs.classification == "secret" && !($.context.ip starts with "10.")', 'high'),
  ('owners-modify', 'allow', 4, 'user:*', 'action:modify', 'doc:*',
   '$.resource.attrs.owner == $.actor.uid', 'medium'),
  ('eu-no-export', 'deny', 6, 'dept:0', 'export', 'area:*', NULL, 'high'),
  ('auditors-view', 'allow', 1, 'role:0', 'action:view', '*', NULL, 'low');
COMMIT;
ANALYZE decide.entities;
ANALYZE decide.policies;
SELECT count(*) AS policies FROM decide.policies;
SELECT count(*) AS entities FROM decide.entities;
