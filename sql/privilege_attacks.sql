-- Privilege attacks, beyond sql/privileges.sql: what a member of
-- decide_user (and a member of decide_admin) can reach, read from the
-- catalogs so that new objects are covered; every decide.* setting, every
-- way of setting it; SECURITY DEFINER misuse; roles; loading code. All
-- refused, and nothing changed afterwards.
--
-- The attacker logs in as itself (SET SESSION AUTHORIZATION), not through
-- SET ROLE from a superuser session, so that checks on the session user
-- apply as they would to a real connection.
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
\i sql/include/try.sql
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;

CREATE ROLE regress_attacker;
CREATE ROLE regress_bystander;
CREATE ROLE regress_pa_admin;
GRANT decide_user TO regress_attacker;
GRANT decide_admin TO regress_pa_admin;
CREATE SCHEMA regress_attack AUTHORIZATION regress_attacker;
CREATE SCHEMA regress_app AUTHORIZATION regress_pa_admin;
GRANT USAGE ON SCHEMA regress_attack, regress_app TO PUBLIC;

INSERT INTO decide.entities (uid, parents) VALUES ('user:alice', '{role:reader}');
INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES
  ('readers-read', 'allow', 'role:reader', 'read', 'doc:*', NULL),
  ('secret-word',  'allow', '*', 'peek', '*', '$.context.word == "swordfish"');

-- 1. What each role can reach, from the catalogs. A function counts as
-- reachable when the role may execute it and use its schema; a relation
-- or sequence when the role holds any privilege on it or on a column.
CREATE TEMP VIEW extension_objects AS
SELECT d.classid, d.objid
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
 WHERE e.extname = 'decide' AND d.deptype = 'e';
CREATE TEMP VIEW reachable AS
SELECT r.rolname, 'function ' || p.oid::regprocedure AS object
  FROM extension_objects o JOIN pg_proc p ON o.classid = 'pg_proc'::regclass AND p.oid = o.objid
 CROSS JOIN pg_roles r
 WHERE has_function_privilege(r.oid, p.oid, 'EXECUTE')
   AND has_schema_privilege(r.oid, p.pronamespace, 'USAGE')
UNION ALL
SELECT r.rolname, 'relation ' || c.oid::regclass
  FROM extension_objects o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
 CROSS JOIN pg_roles r
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND (has_table_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
        OR has_any_column_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
UNION ALL
SELECT r.rolname, 'sequence ' || c.oid::regclass
  FROM extension_objects o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
 CROSS JOIN pg_roles r
 WHERE c.relkind = 'S' AND has_sequence_privilege(r.oid, c.oid, 'USAGE, SELECT, UPDATE');
-- decide_user: the four decision functions and the two listing functions, nothing else.
SELECT object FROM reachable WHERE rolname = 'regress_attacker' ORDER BY 1;
-- A role with no decide role: nothing at all.
SELECT count(*) AS reachable_by_bystander FROM reachable WHERE rolname = 'regress_bystander';
-- What every role still sees: PostgreSQL's catalogs and statistics views
-- are readable by all, so a role with no decide role learns the names and
-- estimated sizes of decide's tables and of each day's log partition,
-- though it reads no row (docs/security.md says what to do about it).
SET SESSION AUTHORIZATION regress_bystander;
SELECT count(*) > 0 AS sees_decide_relations FROM pg_class
 WHERE relnamespace = 'decide'::regnamespace AND reltuples IS NOT NULL;
SELECT count(*) > 0 AS sees_decide_table_statistics FROM pg_stat_user_tables
 WHERE schemaname = 'decide' AND n_tup_ins IS NOT NULL;
SELECT bool_or(has_table_privilege(oid, 'SELECT')) AS reads_any_of_them FROM pg_class
 WHERE relnamespace = 'decide'::regnamespace AND relkind IN ('r', 'p', 'v');
RESET SESSION AUTHORIZATION;
-- Writing anywhere decide lives: nobody but the owner.
SELECT r.rolname, has_schema_privilege(r.oid, 'decide', 'USAGE') AS decide_usage,
       has_schema_privilege(r.oid, 'decide', 'CREATE') AS decide_create,
       has_schema_privilege(r.oid, 'public', 'CREATE') AS public_create
  FROM pg_roles r WHERE r.rolname IN ('regress_attacker', 'regress_pa_admin', 'regress_bystander')
 ORDER BY 1;

-- 2. Settings. The names and values of every decide.* setting, taken as
-- superuser (decide.redis_url is hidden from others), then each tried as
-- the attacker five ways: SET, SET LOCAL, set_config(), ALTER ROLE ... SET
-- and a function's SET clause. Each cell is the SQLSTATE: 42501 is
-- "permission denied", 55P02 "cannot be changed now/without a restart".
CREATE TEMP TABLE decide_settings AS
SELECT name, current_setting(name) AS value, context FROM pg_settings WHERE name LIKE 'decide.%';
GRANT SELECT ON decide_settings TO PUBLIC;
CREATE TEMP TABLE setting_attempts (name text, way text, outcome text);
GRANT INSERT, SELECT ON setting_attempts TO PUBLIC;
SET SESSION AUTHORIZATION regress_attacker;
DO $$
DECLARE
    s record;
    ways text[] := ARRAY['SET', 'SET LOCAL', 'set_config', 'ALTER ROLE', 'function SET'];
    way text;
    statement text;
BEGIN
    FOR s IN SELECT * FROM decide_settings ORDER BY name LOOP
        FOREACH way IN ARRAY ways LOOP
            statement := CASE way
                WHEN 'SET' THEN format('SET %s = %L', s.name, s.value)
                WHEN 'SET LOCAL' THEN format('SET LOCAL %s = %L', s.name, s.value)
                WHEN 'set_config' THEN format('SELECT set_config(%L, %L, false)', s.name, s.value)
                WHEN 'ALTER ROLE' THEN format('ALTER ROLE regress_attacker SET %s = %L', s.name, s.value)
                ELSE format('CREATE FUNCTION regress_attack.loosen() RETURNS int LANGUAGE sql '
                            'SECURITY DEFINER SET %s = %L AS ''SELECT 1''', s.name, s.value)
            END;
            INSERT INTO setting_attempts
            VALUES (s.name, way, split_part(pg_temp.try(statement), ':', 1));
        END LOOP;
    END LOOP;
END
$$;
RESET SESSION AUTHORIZATION;
SELECT s.name, s.context, string_agg(a.outcome, ' ' ORDER BY array_position(
           ARRAY['SET', 'SET LOCAL', 'set_config', 'ALTER ROLE', 'function SET'], a.way)) AS "SET | LOCAL | set_config | ALTER ROLE | function"
  FROM decide_settings s JOIN setting_attempts a USING (name)
 GROUP BY s.name, s.context ORDER BY s.name;
-- Anything the attacker could have weakened is unchanged.
SELECT count(*) AS settings_changed FROM decide_settings WHERE current_setting(name) <> value;
SELECT count(*) AS role_settings FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
 WHERE r.rolname = 'regress_attacker';
SELECT count(*) AS attacker_functions FROM pg_proc WHERE pronamespace = 'regress_attack'::regnamespace;
-- The remaining ways, and reading what is hidden.
SET SESSION AUTHORIZATION regress_attacker;
ALTER SYSTEM SET decide.cache = off;
SELECT pg_temp.try($$ALTER DATABASE contrib_regression SET decide.cache = off$$);
SELECT pg_temp.try($$GRANT SET ON PARAMETER decide.cache TO regress_attacker$$);
SELECT pg_temp.try($$GRANT ALTER SYSTEM ON PARAMETER decide.redis_url TO regress_attacker$$);
SELECT pg_temp.try($$SET decide.brand_new_setting = 'on'$$);
SELECT pg_temp.try($$SHOW decide.redis_url$$);
SELECT pg_temp.try($$SELECT current_setting('decide.redis_url')$$);
SELECT count(*) AS visible_redis_url FROM pg_settings WHERE name = 'decide.redis_url';
RESET SESSION AUTHORIZATION;

-- 3. SECURITY DEFINER misuse.
-- (a) The attacker's own definer functions run with the attacker's rights:
-- handed to a bystander they pass on decisions (which the attacker could
-- relay anyway), never more. (Bodies unchecked at creation, so that the
-- refusals come when they run.)
SET SESSION AUTHORIZATION regress_attacker;
SET check_function_bodies = off;
CREATE FUNCTION regress_attack.ask(actor text, action text, resource text) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT public.decide_allowed(actor, action, resource) $$;
CREATE FUNCTION regress_attack.peek() RETURNS bigint
    LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM decide.policies $$;
CREATE FUNCTION regress_attack.explain(actor text) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM public.decide_explain(actor, 'read', 'doc:1') $$;
CREATE FUNCTION regress_attack.loosen() RETURNS text
    LANGUAGE sql SECURITY DEFINER AS $$ SELECT set_config('decide.cache', 'off', true) $$;
CREATE FUNCTION regress_attack.bump() RETURNS void
    LANGUAGE sql SECURITY DEFINER AS $$ SELECT decide.advance_epoch() $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA regress_attack TO regress_bystander;
RESET check_function_bodies;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_bystander;
SELECT pg_temp.try($$SELECT decide_allowed('user:alice', 'read', 'doc:1')$$);
SELECT regress_attack.ask('user:alice', 'read', 'doc:1') AS relayed;
SELECT pg_temp.try($$SELECT regress_attack.peek()$$);
SELECT pg_temp.try($$SELECT regress_attack.explain('user:alice')$$);
SELECT pg_temp.try($$SELECT regress_attack.loosen()$$);
SELECT pg_temp.try($$SELECT regress_attack.bump()$$);
RESET SESSION AUTHORIZATION;
-- (b) The attacker cannot turn decide's own functions into definer
-- functions, replace them, or add its own next to them.
SET SESSION AUTHORIZATION regress_attacker;
SELECT pg_temp.try($$ALTER FUNCTION public.decide(text, text, text, jsonb) SECURITY DEFINER$$);
SELECT pg_temp.try($$CREATE OR REPLACE FUNCTION public.decide_allowed(text, text, text, jsonb) RETURNS boolean LANGUAGE sql AS 'SELECT true'$$);
SELECT pg_temp.try($$CREATE FUNCTION public.decide_allowed(text, text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'$$);
SELECT pg_temp.try($$CREATE FUNCTION decide.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'$$);
SELECT pg_temp.try($$ALTER FUNCTION public.decide_explain(text, text, text, jsonb) OWNER TO regress_attacker$$);
RESET SESSION AUTHORIZATION;
-- (c) The pitfall in an application's definer helper: an unqualified
-- decide_allowed() resolves through the caller's search_path, where the
-- attacker's impostor (in a schema it owns) comes first. Pinning
-- search_path, or writing public.decide_allowed, closes it.
SET SESSION AUTHORIZATION regress_pa_admin;
CREATE FUNCTION regress_app.can_peek_unpinned(word text) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT decide_allowed('user:alice', 'peek', 'doc:1', jsonb_build_object('word', word)) $$;
CREATE FUNCTION regress_app.can_peek_pinned(word text) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT decide_allowed('user:alice', 'peek', 'doc:1', jsonb_build_object('word', word)) $$;
CREATE FUNCTION regress_app.can_peek_qualified(word text) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT public.decide_allowed('user:alice', 'peek', 'doc:1', pg_catalog.jsonb_build_object('word', word)) $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA regress_app TO regress_attacker;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_attacker;
CREATE FUNCTION regress_attack.decide_allowed(text, text, text, jsonb DEFAULT '{}') RETURNS boolean
    LANGUAGE sql AS 'SELECT true';
SELECT regress_app.can_peek_unpinned('guess') AS unpinned, regress_app.can_peek_pinned('guess') AS pinned,
       regress_app.can_peek_qualified('guess') AS qualified;
SET search_path = regress_attack, public;
SELECT regress_app.can_peek_unpinned('guess') AS unpinned_hijacked, regress_app.can_peek_pinned('guess') AS pinned,
       regress_app.can_peek_qualified('guess') AS qualified;
RESET search_path;
RESET SESSION AUTHORIZATION;

-- 4. Roles: no way up.
SET SESSION AUTHORIZATION regress_attacker;
SELECT pg_temp.try($$SET ROLE decide_admin$$);
SELECT pg_temp.try($$SET ROLE decide_auditor$$);
SELECT pg_temp.try($$GRANT decide_admin TO regress_attacker$$);
SELECT pg_temp.try($$GRANT decide_user TO regress_bystander$$);
SELECT pg_temp.try($$CREATE ROLE regress_attacker_2 IN ROLE decide_admin$$);
SELECT pg_temp.try($$ALTER ROLE decide_user NOINHERIT$$);
SELECT pg_temp.try($$REVOKE decide_user FROM regress_attacker$$);
RESET SESSION AUTHORIZATION;

-- 5. Loading or replacing code.
SET SESSION AUTHORIZATION regress_attacker;
SELECT pg_temp.try($$LOAD 'decide'$$);
SELECT pg_temp.try($$CREATE EXTENSION decide SCHEMA regress_attack$$);
SELECT pg_temp.try($$ALTER EXTENSION decide UPDATE$$);
SELECT pg_temp.try($$DROP EXTENSION decide$$);
SELECT pg_temp.try($$CREATE FUNCTION regress_attack.c_code() RETURNS int AS '$libdir/decide', 'decide_epoch' LANGUAGE C$$);
RESET SESSION AUTHORIZATION;

-- 6. decide_admin changes rows, not the machinery around them.
SET SESSION AUTHORIZATION regress_pa_admin;
SELECT pg_temp.try($$CREATE TRIGGER sneaky BEFORE INSERT ON decide.policies FOR EACH ROW EXECUTE FUNCTION decide.touch_updated_at()$$);
SELECT pg_temp.try($$CREATE RULE sneaky AS ON INSERT TO decide.policies DO INSTEAD NOTHING$$);
SELECT pg_temp.try($$ALTER TABLE decide.policies ENABLE ROW LEVEL SECURITY$$);
SELECT pg_temp.try($$CREATE POLICY hide ON decide.policies USING (false)$$);
SELECT pg_temp.try($$ALTER TABLE decide.entities DROP CONSTRAINT entities_parents_are_valid$$);
SELECT pg_temp.try($$ALTER TABLE decide.policies OWNER TO regress_pa_admin$$);
SELECT pg_temp.try($$CREATE FUNCTION decide.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'$$);
SELECT pg_temp.try($$SELECT * FROM decide.epoch FOR UPDATE$$);
SELECT pg_temp.try($$LOCK TABLE decide.epoch IN EXCLUSIVE MODE$$);
SELECT pg_temp.try($$SELECT decide.check_hierarchy(ARRAY['user:alice'])$$);
SELECT pg_temp.try($$SELECT decide.on_policies_changed()$$);
SELECT pg_temp.try($$COPY decide.policies (name, effect, actor, action, resource) FROM PROGRAM 'echo x'$$);
SELECT pg_temp.try($$ALTER EXTENSION decide UPDATE$$);
SELECT pg_temp.try($$DROP EXTENSION decide$$);
SELECT pg_temp.try($$SET decide.cache = off$$);
RESET SESSION AUTHORIZATION;

-- After all that: the triggers, constraints and settings are intact and
-- decisions are right.
SELECT count(*) AS decide_triggers FROM pg_trigger
 WHERE tgrelid IN ('decide.policies'::regclass, 'decide.entities'::regclass) AND NOT tgisinternal AND tgenabled = 'O';
SELECT relrowsecurity, relhasrules FROM pg_class WHERE oid = 'decide.policies'::regclass;
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');
SELECT allowed, policy FROM decide('user:alice', 'peek', 'doc:1', '{"word": "guess"}');

DROP SCHEMA regress_attack, regress_app CASCADE;
TRUNCATE decide.policies, decide.entities;
DROP ROLE regress_attacker, regress_bystander, regress_pa_admin;
