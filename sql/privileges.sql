-- Privileges: decide_admin edits policies and entities; decide_user only
-- asks for decisions; nobody else may do either; search_path tricks do not
-- redirect decide's functions or triggers.
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
\i sql/include/try.sql
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;

CREATE ROLE regress_decide_app;
CREATE ROLE regress_decide_admin;
CREATE ROLE regress_decide_nobody;
GRANT decide_user TO regress_decide_app;
GRANT decide_admin TO regress_decide_admin;

INSERT INTO decide.entities (uid, parents) VALUES ('user:alice', '{role:reader}');
INSERT INTO decide.policies (name, effect, actor, action, resource, condition)
VALUES ('readers-read', 'allow', 'role:reader', 'read', 'doc:*', '$.context.secret_word != "x"');

-- decide_user: decisions yes; policies, entities, epoch, explanations no.
SET ROLE regress_decide_app;
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1', '{"secret_word": "y"}');
SELECT decide_allowed('user:alice', 'read', 'doc:1', '{"secret_word": "y"}'),
       decide_epoch() > 0 AS has_epoch;
SELECT count(*) FROM decide_many(ARRAY['user:alice'], ARRAY['read'], ARRAY['doc:1']);
SELECT pg_temp.try($$SELECT * FROM decide.policies$$);
SELECT pg_temp.try($$SELECT * FROM decide.entities$$);
SELECT pg_temp.try($$SELECT * FROM decide.epoch$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('mine', 'allow', '*', '*', '*')$$);
SELECT pg_temp.try($$UPDATE decide.entities SET parents = '{role:admin}'$$);
SELECT pg_temp.try($$SELECT * FROM decide_explain('user:alice', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide.advance_epoch()$$);
SELECT pg_temp.try($$SELECT decide.invalidate_policy_set()$$);
-- Statistics, cache control and every setting that could weaken a check.
SELECT pg_temp.try($$SELECT * FROM decide_stats$$);
SELECT pg_temp.try($$SELECT decide_metrics()$$);
SELECT pg_temp.try($$SELECT decide_reset_stats()$$);
SELECT pg_temp.try($$SELECT decide_cache_reset()$$);
SELECT pg_temp.try($$SET decide.cache = off$$);
SELECT pg_temp.try($$SET decide.time_dependent_ttl = '1h'$$);
SELECT pg_temp.try($$SET decide.l1_cache_entries = 1000000$$);
SELECT pg_temp.try($$SET decide.shared_cache_size = '1GB'$$);
RESET ROLE;

-- A role with neither: no decisions, no tables.
SET ROLE regress_decide_nobody;
SELECT pg_temp.try($$SELECT decide('user:alice', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide_allowed('user:alice', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY['user:alice'], ARRAY['read'], ARRAY['doc:1'])$$);
SELECT pg_temp.try($$SELECT decide_epoch()$$);
SELECT pg_temp.try($$SELECT * FROM decide.policies$$);
SELECT pg_temp.try($$DELETE FROM decide.policies$$);
RESET ROLE;

-- decide_admin: edits policies and entities (the epoch moves through the
-- SECURITY DEFINER trigger), explains, but cannot touch the epoch itself.
SET ROLE regress_decide_admin;
SELECT decide_epoch() AS epoch_before \gset
INSERT INTO decide.policies (name, effect, priority, actor, action, resource)
VALUES ('no-doc-2', 'deny', 1, '*', '*', 'doc:2');
INSERT INTO decide.entities (uid, parents) VALUES ('user:bob', '{role:reader}');
SELECT decide_epoch() - :epoch_before AS epoch_moved;
SELECT allowed, policy FROM decide('user:bob', 'read', 'doc:2');
SELECT policy, decisive FROM decide_explain('user:bob', 'read', 'doc:2');
SELECT count(*) FROM decide.policies;
SELECT pg_temp.try($$UPDATE decide.epoch SET epoch = 1$$);
SELECT pg_temp.try($$SELECT decide.advance_epoch()$$);
SELECT pg_temp.try($$ALTER TABLE decide.policies DISABLE TRIGGER policies_changed$$);
SELECT pg_temp.try($$DROP TRIGGER policies_changed ON decide.policies$$);
SELECT decisions >= 0 AS admin_reads_stats FROM decide_stats;
SELECT pg_temp.try($$SELECT decide_cache_reset()$$);
SELECT pg_temp.try($$SET decide.cache = off$$);
RESET ROLE;

-- search_path hijacking: objects named like decide's (and like the
-- built-ins its triggers call) in a schema searched first change nothing.
CREATE SCHEMA regress_evil AUTHORIZATION regress_decide_admin;
SET ROLE regress_decide_admin;
CREATE TABLE regress_evil.policies (LIKE decide.policies);
CREATE TABLE regress_evil.entities (uid text, parents text[], attrs jsonb);
CREATE TABLE regress_evil.epoch (epoch bigint);
INSERT INTO regress_evil.epoch VALUES (-1);
CREATE FUNCTION regress_evil.pg_current_xact_id() RETURNS xid8 LANGUAGE sql AS $$ SELECT '1'::xid8 $$;
CREATE FUNCTION regress_evil.jsonb_path_match(jsonb, jsonpath, jsonb, boolean) RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION regress_evil.unnest(text[]) RETURNS SETOF text LANGUAGE sql AS $$ SELECT 'role:admin' $$;
CREATE FUNCTION regress_evil.decide_allowed(text, text, text, jsonb DEFAULT '{}') RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
CREATE TEMP TABLE epoch (epoch bigint);
SET search_path = regress_evil, pg_temp, public;
SELECT decide_epoch() AS epoch_before \gset
UPDATE decide.entities SET attrs = '{"x": 1}' WHERE uid = 'user:bob';
SELECT decide_epoch() - :epoch_before AS epoch_moved;
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('role:loop', '{role:loop}')$$);
SELECT allowed, policy FROM public.decide('user:bob', 'read', 'doc:1', '{"secret_word": "x"}');
SELECT allowed, policy FROM public.decide('user:bob', 'read', 'doc:1', '{"secret_word": "y"}');
SELECT public.decide_allowed('user:bob', 'read', 'doc:1', '{"secret_word": "x"}') AS qualified,
       decide_allowed('user:bob', 'read', 'doc:1', '{"secret_word": "x"}') AS own_function_first;
SELECT allowed, policy FROM public.decide('user:bob', 'read', 'doc:2');
RESET search_path;
DROP TABLE pg_temp.epoch;
RESET ROLE;

-- The decision functions are not SECURITY DEFINER: there is no definer's
-- right to borrow. They read the tables through the extension itself.
SELECT p.proname, p.prosecdef, p.proconfig
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proname LIKE 'decide%' ORDER BY 1;
-- Every SECURITY DEFINER function of the extension pins its search_path.
SELECT p.oid::regprocedure AS definer_function, p.proconfig
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'decide'
 WHERE p.prosecdef ORDER BY 1::text;

DROP SCHEMA regress_evil CASCADE;
TRUNCATE decide.policies, decide.entities;
DROP ROLE regress_decide_app, regress_decide_admin, regress_decide_nobody;
