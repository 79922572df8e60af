-- decide_replay(): logged decisions decided again under the policies the
-- caller sees now, its own uncommitted change included; those that differ.
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
\i sql/include/try.sql
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;
INSERT INTO decide.entities (uid, parents) VALUES
    ('user:ann', ARRAY['role:staff']), ('user:bob', ARRAY['role:staff']),
    ('user:cy', ARRAY['role:guest']);
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
    ('staff-read', 'allow', 0, 'role:staff', 'read', 'doc:*', NULL),
    ('guest-read-public', 'allow', 0, 'role:guest', 'read', 'doc:public-*', NULL),
    ('office-only', 'deny', 5, '*', 'read', 'doc:secret-*', '!($.context.ip starts with "10.")');
SELECT decide_flush();
SELECT clock_timestamp() AS start \gset
-- 30 logged decisions: 3 actors x 10 resources; one more with its context.
SET decide.log = 'all';
SELECT count(*) FROM (SELECT decide(a, 'read', r)
                        FROM unnest(ARRAY['user:ann', 'user:bob', 'user:cy']) a,
                             unnest(ARRAY['doc:1', 'doc:2', 'doc:3', 'doc:4', 'doc:public-1',
                                          'doc:public-2', 'doc:secret-1', 'doc:secret-2',
                                          'doc:secret-3', 'doc:x']) r) s;
SET decide.log_context = on;
SELECT allowed FROM decide('user:ann', 'read', 'doc:secret-9', '{"ip": "10.1.1.1"}');
RESET decide.log_context;
SELECT decide_flush();
SELECT count(*) AS logged FROM decide.decisions WHERE decided_at >= :'start';
SELECT epoch AS epoch_before FROM decide.epoch \gset
SELECT count(*) AS logged_before FROM decide.decisions \gset
SELECT l2_entries AS l2_before FROM decide_stats \gset

-- Nothing changed: nothing differs (ann's read of doc:secret-9, allowed for
-- the IP in its logged context, is replayed with that context).
SELECT count(*) AS differ_unchanged FROM decide_replay(:'start');

-- A change that flips a known set, inside a transaction rolled back
-- after: bob loses his staff role, so his 7 allowed reads (doc:1 to 4,
-- public-1, public-2, x) flip; his secret reads stay denied.
BEGIN;
UPDATE decide.entities SET parents = ARRAY[]::text[] WHERE uid = 'user:bob';
SELECT actor, resource, allowed_then, policy_then, allowed_now, policy_now, context_logged
  FROM decide_replay(:'start') ORDER BY resource, actor;
-- At most max_rows, the newest: of the 15 newest, bob's doc:x only.
SELECT actor, resource FROM decide_replay(:'start', now(), 15);
-- The same request decided by the caller now: the uncommitted answer, not cached.
SELECT allowed, source FROM decide('user:bob', 'read', 'doc:1');
ROLLBACK;
SELECT epoch = :epoch_before AS epoch_unchanged FROM decide.epoch;
-- Of all that, only the caller's own decide() call was logged, not the
-- decisions the replays made.
SELECT decide_flush();
SELECT count(*) - :logged_before AS logged_since FROM decide.decisions;
SELECT l2_entries = :l2_before AS shared_cache_unchanged FROM decide_stats;
SELECT allowed, policy FROM decide('user:bob', 'read', 'doc:1');

-- A logged context is replayed; a request logged without one is replayed
-- with '{}', and the result says which: dropping the office rule's IP
-- exception flips ann's read from the office.  (Bob's denial logged inside
-- the rolled-back transaction above differs too, now and below.)
BEGIN;
UPDATE decide.policies SET condition = NULL WHERE name = 'office-only';
SELECT actor, resource, allowed_then, policy_then, allowed_now, policy_now, context_logged
  FROM decide_replay(:'start') ORDER BY resource, actor;
ROLLBACK;

-- Bad input; only admins may replay.
SELECT pg_temp.try($$SELECT * FROM decide_replay(NULL)$$);
SELECT pg_temp.try($$SELECT * FROM decide_replay(now(), NULL)$$);
SELECT pg_temp.try($$SELECT * FROM decide_replay(now(), now(), 0)$$);
CREATE ROLE regress_replay_app;
CREATE ROLE regress_replay_auditor;
CREATE ROLE regress_replay_admin;
GRANT decide_user TO regress_replay_app;
GRANT decide_auditor TO regress_replay_auditor;
GRANT decide_admin TO regress_replay_admin;
SET ROLE regress_replay_app;
SELECT pg_temp.try($$SELECT * FROM decide_replay(now() - interval '1 hour')$$);
RESET ROLE;
SET ROLE regress_replay_auditor;
SELECT pg_temp.try($$SELECT * FROM decide_replay(now() - interval '1 hour')$$);
RESET ROLE;
SET ROLE regress_replay_admin;
SELECT count(*) AS admin_replays FROM decide_replay(:'start');
-- Replaying does not let an admin stop the logging of what follows.
SELECT allowed FROM decide('user:ann', 'read', 'doc:after-replay');
RESET ROLE;
SELECT decide_flush();
SELECT count(*) AS logged_after_replay FROM decide.decisions WHERE resource = 'doc:after-replay';
DROP ROLE regress_replay_app, regress_replay_auditor, regress_replay_admin;
TRUNCATE decide.policies, decide.entities;
