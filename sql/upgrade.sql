-- Upgrade path: a database created at 0.1.0 keeps its policies and gains
-- the 0.2.0 objects through ALTER EXTENSION ... UPDATE.
SET client_min_messages = warning;
DROP EXTENSION decide;
CREATE EXTENSION decide VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'decide';
INSERT INTO decide.entities (uid, parents) VALUES ('user:alice', '{role:reader}');
INSERT INTO decide.policies (name, effect, actor, action, resource)
VALUES ('readers-read', 'allow', 'role:reader', 'read', 'doc:*');
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');
SELECT to_regclass('decide_stats') AS stats_view_before;

ALTER EXTENSION decide UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'decide';
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
SELECT to_regclass('decide_stats') AS stats_view_after, decisions > 0 AS counting FROM decide_stats;

-- The same objects as a fresh install at the default version.
CREATE TEMP TABLE upgraded AS
SELECT pg_describe_object(classid, objid, objsubid) AS object
  FROM pg_depend WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'decide');
DROP EXTENSION decide;
CREATE EXTENSION decide;
SELECT object AS only_in_upgraded FROM upgraded
EXCEPT SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'decide');
SELECT pg_describe_object(classid, objid, objsubid) AS only_in_fresh FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'decide')
EXCEPT SELECT object FROM upgraded;
DROP TABLE upgraded;

-- 0.5.0 drops decide() and creates it again with a named result type: a
-- view that uses it stops the update, which then changes nothing.
DROP EXTENSION decide;
CREATE EXTENSION decide VERSION '0.4.0';
CREATE VIEW my_decision AS SELECT * FROM decide('user:alice', 'read', 'doc:1');
ALTER EXTENSION decide UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'decide';
SELECT allowed, source FROM my_decision;
DROP VIEW my_decision;
ALTER EXTENSION decide UPDATE;
SELECT extversion, pg_get_function_result('decide(text, text, text, jsonb)'::regprocedure)
  FROM pg_extension WHERE extname = 'decide';
SELECT allowed, (decide('user:alice', 'read', 'doc:1')).policy FROM decide('user:alice', 'read', 'doc:1');
DROP EXTENSION decide;
CREATE EXTENSION decide;
