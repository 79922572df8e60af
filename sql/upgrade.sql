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

-- 0.6.0 moves the decision log's indexes from the parent to each partition
-- (so that pg_restore does not build them twice): a 0.5.0 log keeps its
-- rows, and each partition keeps its indexes as its own.
DROP EXTENSION decide;
CREATE EXTENSION decide VERSION '0.5.0';
-- Yesterday (UTC): within decide.log_retention, and not a day the worker makes.
SELECT to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYYMMDD') AS old_day_label \gset
DO $$
DECLARE
    day date := (now() AT TIME ZONE 'UTC')::date - 1;
BEGIN
    EXECUTE format('CREATE TABLE decide.%I PARTITION OF decide.decisions FOR VALUES FROM (%L) TO (%L)',
                   'decisions_' || to_char(day, 'YYYYMMDD'),
                   day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect, reason,
                                  epoch, source)
    VALUES (day::timestamp AT TIME ZONE 'UTC' + interval '10 hours', 'user:old', 'read', 'doc:1',
            false, 'deny', 'old', 1, 'miss');
END
$$;
-- The worker (0.6.0 library) makes today's partition of the 0.5.0 log as
-- 0.5.0 did, with the parent's indexes.
SELECT allowed FROM decide('user:new', 'read', 'doc:1');
SELECT decide_flush();
SELECT count(*) AS logged_at_0_5_0 FROM decide.decisions WHERE actor = 'user:new';
SELECT count(*) AS parent_indexes_before FROM pg_index WHERE indrelid = 'decide.decisions'::regclass;
ALTER EXTENSION decide UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'decide';
-- The rows of 0.6.0 are now in chunks, with their ids; their table is gone.
-- The partitions the update made are the log's, not members of the
-- extension (pg_dump saves them; retention may drop them).
SELECT count(*) AS partitions_in_the_extension
  FROM pg_depend d JOIN pg_inherits i ON i.inhrelid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'decide');
SELECT count(*) AS parent_indexes_after FROM pg_index WHERE indrelid = 'decide.decision_chunks'::regclass;
SELECT count(*) >= 2 AS two_or_more_partitions,
       count(*) FILTER (WHERE indexes <> 1) AS partitions_without_their_index
  FROM (SELECT (SELECT count(*) FROM pg_index x WHERE x.indrelid = h.inhrelid) AS indexes
          FROM pg_inherits h
         WHERE h.inhparent IN ('decide.decision_chunks'::regclass, 'decide.decision_keys'::regclass)) p;
SELECT actor FROM decide.decisions WHERE actor IN ('user:old', 'user:new') ORDER BY 1;
SELECT to_regclass('decide.decisions_' || :'old_day_label') AS old_partition,
       to_regclass('decide.decisions_of_0_6') AS old_table,
       (SELECT relkind FROM pg_class WHERE oid = 'decide.decisions'::regclass) AS decisions_kind;
SELECT replace(pg_get_indexdef(indexrelid), :'old_day_label', 'YYYYMMDD') AS index FROM pg_index
 WHERE indrelid = ('decide.decision_chunks_' || :'old_day_label')::regclass ORDER BY 1;
-- The rows logged before keep their reason and get their keys.
SELECT actor, allowed, reason, source FROM decide_decisions_page(NULL, 10, by_actor => 'user:old');
SELECT actor, reason FROM decide_decisions_page(NULL, 10, by_allowed => false, by_risk_level => NULL)
 WHERE actor IN ('user:old', 'user:new') ORDER BY 1;
-- An index of the log that an administrator dropped does not stop the update.
DROP EXTENSION decide;
CREATE EXTENSION decide VERSION '0.5.0';
DROP INDEX decide.decisions_policy_idx;
ALTER EXTENSION decide UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'decide';
DROP EXTENSION decide;
CREATE EXTENSION decide;
