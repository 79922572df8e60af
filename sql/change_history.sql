-- decide.changes: one row per row of decide.policies and decide.entities
-- that a statement inserts, updates, deletes or truncates, written in the
-- changing transaction, with the epoch it made, the session's and the
-- current role, and the row before and after.
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
TRUNCATE decide.changes, decide.changes_chain;
\i sql/include/try.sql
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;
CREATE ROLE regress_history_alice;
CREATE ROLE regress_history_bob;
CREATE ROLE regress_history_app;
CREATE ROLE regress_history_auditor;
GRANT decide_admin TO regress_history_alice, regress_history_bob;
GRANT decide_user TO regress_history_app;
GRANT decide_auditor TO regress_history_auditor;
SELECT epoch AS start_epoch FROM decide.epoch \gset

-- Changes by two roles; a transaction's changes share its epoch.
SET ROLE regress_history_alice;
BEGIN;
INSERT INTO decide.policies (name, effect, actor, action, resource)
VALUES ('h-read', 'allow', 'user:*', 'read', 'doc:*'),
       ('h-deny', 'deny', 'user:eve', '*', '*');
INSERT INTO decide.entities (uid, parents, attrs) VALUES ('user:ann', '{}', '{"dept": "x"}');
COMMIT;
RESET ROLE;
SET ROLE regress_history_bob;
UPDATE decide.policies SET priority = 5 WHERE name = 'h-read';
UPDATE decide.entities SET attrs = '{"dept": "y"}' WHERE uid = 'user:ann';
DELETE FROM decide.policies WHERE name = 'h-deny';
RESET ROLE;
SELECT epoch - :start_epoch AS epoch_step, session_user_name = session_user AS session_user,
       current_user_name, operation, table_name,
       key = coalesce(after, before)->>CASE table_name WHEN 'policies' THEN 'id' ELSE 'uid' END AS keyed,
       coalesce(after, before)->>CASE table_name WHEN 'policies' THEN 'name' ELSE 'uid' END AS row,
       before->>'priority' AS priority_before, after->>'priority' AS priority_after,
       before->'attrs' AS attrs_before, after->'attrs' AS attrs_after
  FROM decide.changes ORDER BY id;
SELECT max(epoch) = (SELECT epoch FROM decide.epoch) AS last_epoch_is_current FROM decide.changes;

-- A rolled-back transaction, and a rolled-back subtransaction, leave
-- nothing; what the transaction kept is recorded.
SELECT count(*) AS before_rollbacks, max(id) AS last_id FROM decide.changes \gset
BEGIN;
UPDATE decide.policies SET priority = 7 WHERE name = 'h-read';
ROLLBACK;
BEGIN;
SAVEPOINT s;
DELETE FROM decide.entities;
ROLLBACK TO SAVEPOINT s;
UPDATE decide.entities SET attrs = '{"dept": "z"}' WHERE uid = 'user:ann';
COMMIT;
SELECT operation, key = 'user:ann' AS ann, after->'attrs' AS attrs_after
  FROM decide.changes WHERE id > :last_id ORDER BY id;
SELECT count(*) - :before_rollbacks AS recorded FROM decide.changes;

-- A statement that changes nothing of a row records nothing for it; one
-- that renames a row records the old key with its row before and the new
-- key with its row after.
UPDATE decide.entities SET attrs = attrs WHERE uid = 'user:ann';
SELECT count(*) - :before_rollbacks AS recorded_after_no_op FROM decide.changes;
INSERT INTO decide.entities (uid) VALUES ('user:cy');
UPDATE decide.entities SET uid = 'user:cyd' WHERE uid = 'user:cy';
SELECT operation, key, before->>'uid' AS uid_before, after->>'uid' AS uid_after
  FROM decide.changes ORDER BY id DESC LIMIT 2;

-- TRUNCATE records every row it removes.
TRUNCATE decide.entities;
SELECT operation, table_name, key, after IS NULL AS no_after
  FROM decide.changes WHERE operation = 'TRUNCATE' ORDER BY key;
SELECT count(*) AS entities_left FROM decide.entities;

-- Who may read it: admins and auditors; decide_user and others may not.
-- Nobody but the owner writes it, not even an admin.
SET ROLE regress_history_app;
SELECT pg_temp.try($$SELECT count(*) FROM decide.changes$$);
RESET ROLE;
SET ROLE regress_history_auditor;
SELECT count(*) > 0 AS auditor_reads FROM decide.changes;
RESET ROLE;
SET ROLE regress_history_alice;
SELECT count(*) > 0 AS admin_reads FROM decide.changes;
SELECT pg_temp.try($$INSERT INTO decide.changes (epoch, changed_at, session_user_name, current_user_name,
                                                 operation, table_name, key)
                     VALUES (1, now(), 'x', 'x', 'INSERT', 'policies', '1')$$);
SELECT pg_temp.try($$UPDATE decide.changes SET current_user_name = 'someone else'$$);
SELECT pg_temp.try($$DELETE FROM decide.changes$$);
SELECT pg_temp.try($$TRUNCATE decide.changes$$);
-- The trigger function cannot be put on another table by an admin (not
-- even on one of the admin's own), nor record anything but decide's tables
-- when a superuser puts it there.
RESET ROLE;
CREATE TABLE public.history_bait (id int);
ALTER TABLE public.history_bait OWNER TO regress_history_alice;
SET ROLE regress_history_alice;
SELECT pg_temp.try($$CREATE TRIGGER bait AFTER INSERT ON public.history_bait
                     REFERENCING NEW TABLE AS new_rows
                     FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes()$$);
RESET ROLE;
CREATE TRIGGER bait AFTER INSERT ON public.history_bait REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes();
SELECT pg_temp.try($$INSERT INTO public.history_bait VALUES (1)$$);
SELECT pg_temp.try($$SELECT decide.record_changes()$$);
DROP TABLE public.history_bait;

-- The caller's search_path does not reach the trigger, which writes as
-- the owner: an operator and a function that would shadow the built-ins
-- for a caller who puts public first are not called.
CREATE FUNCTION public.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT '{"shadowed": true}'::jsonb $$;
SET search_path = public, pg_catalog;
INSERT INTO decide.entities (uid) VALUES ('user:shadow');
RESET search_path;
SELECT after ? 'shadowed' AS shadowed, after->>'uid' AS uid FROM decide.changes ORDER BY id DESC LIMIT 1;
DROP FUNCTION public.to_jsonb(anyelement);

-- As of an epoch: decide_policies_at() and decide_entities_at() give back
-- the tables as they were, at every epoch of a random run of 80 changes,
-- each in its own transaction (inserts, updates, deletes, renames and a
-- truncation of each table).
TRUNCATE decide.policies, decide.entities;
TRUNCATE decide.changes, decide.changes_chain;
CREATE TABLE public.history_states (epoch bigint PRIMARY KEY, policies jsonb, entities jsonb);
CREATE PROCEDURE public.history_snapshot() LANGUAGE sql AS $$
    INSERT INTO public.history_states
    SELECT e.epoch,
           (SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.id), '[]') FROM decide.policies p),
           (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.uid), '[]') FROM decide.entities x)
      FROM decide.epoch e
    ON CONFLICT (epoch) DO UPDATE SET policies = excluded.policies, entities = excluded.entities
$$;
CREATE PROCEDURE public.history_random_changes(n int) LANGUAGE plpgsql AS $$
DECLARE
    step int;
BEGIN
    PERFORM setseed(0.42);
    CALL public.history_snapshot();
    COMMIT;
    FOR i IN 1 .. n LOOP
        step := CASE WHEN i = 40 THEN 10 WHEN i = 60 THEN 11 ELSE floor(random() * 8)::int END;
        CASE step
            WHEN 0, 1 THEN
                INSERT INTO decide.policies (name, effect, actor, action, resource, priority)
                VALUES ('r' || i, 'allow', 'user:*', 'read', 'doc:' || i, i);
            WHEN 2 THEN
                UPDATE decide.policies SET priority = priority + 1, description = 'step ' || i
                 WHERE id IN (SELECT id FROM decide.policies ORDER BY random() LIMIT 2);
            WHEN 3 THEN
                DELETE FROM decide.policies
                 WHERE id IN (SELECT id FROM decide.policies ORDER BY random() LIMIT 1);
            WHEN 4, 5 THEN
                INSERT INTO decide.entities (uid, attrs) VALUES ('user:r' || i, jsonb_build_object('n', i));
            WHEN 6 THEN
                UPDATE decide.entities SET attrs = jsonb_build_object('n', i)
                 WHERE uid IN (SELECT uid FROM decide.entities ORDER BY random() LIMIT 2);
            WHEN 7 THEN
                UPDATE decide.entities SET uid = 'user:renamed' || i
                 WHERE uid IN (SELECT uid FROM decide.entities ORDER BY random() LIMIT 1);
            WHEN 10 THEN
                TRUNCATE decide.entities;
            ELSE
                TRUNCATE decide.policies;
        END CASE;
        CALL public.history_snapshot();
        COMMIT;
    END LOOP;
END
$$;
CALL public.history_random_changes(80);
SELECT count(*) AS epochs,
       count(*) FILTER (WHERE s.policies IS DISTINCT FROM
           (SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.id), '[]')
              FROM decide_policies_at(s.epoch) p)) AS policies_differ,
       count(*) FILTER (WHERE s.entities IS DISTINCT FROM
           (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.uid), '[]')
              FROM decide_entities_at(s.epoch) x)) AS entities_differ,
       count(DISTINCT s.policies) > 20 AND count(DISTINCT s.entities) > 20 AS states_vary
  FROM public.history_states s;
-- Epochs the history cannot give back, and who may ask.
SELECT min(epoch) AS first_epoch, max(epoch) AS last_epoch FROM public.history_states \gset
-- (epoch numbers depend on the tests run before: shown as N)
CREATE FUNCTION pg_temp.epochs_hidden(message text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(message, 'epochs [0-9]+ to [0-9]+', 'epochs N to N'),
                          'epoch [0-9]+ ', 'epoch N ')
$$;
SELECT pg_temp.epochs_hidden(pg_temp.try(format('SELECT count(*) FROM decide_policies_at(%s)', :first_epoch - 1)));
SELECT pg_temp.epochs_hidden(pg_temp.try(format('SELECT count(*) FROM decide_entities_at(%s)', :last_epoch + 1)));
SELECT count(*) AS policies_at_the_oldest FROM decide_policies_at(:first_epoch);
SELECT pg_temp.try($$SELECT count(*) FROM decide_policies_at(NULL)$$);
SET ROLE regress_history_app;
SELECT pg_temp.try($$SELECT count(*) FROM decide_policies_at(1)$$);
RESET ROLE;
SET ROLE regress_history_auditor;
SELECT count(*) >= 0 AS auditor_rebuilds FROM decide_entities_at(:last_epoch);
RESET ROLE;
DROP PROCEDURE public.history_random_changes(int), public.history_snapshot();
DROP TABLE public.history_states;

TRUNCATE decide.policies, decide.entities;
TRUNCATE decide.changes, decide.changes_chain;
DROP ROLE regress_history_alice, regress_history_bob, regress_history_app, regress_history_auditor;
