-- decide() and decide_explain() as of an epoch: a logged decision decided
-- and explained again under the policies and entities of the epoch it was
-- made at gives the answer and the policy it was made with, however the
-- policies and entities changed since; not logged, not cached.
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
TRUNCATE decide.changes, decide.changes_chain;
\i sql/include/try.sql
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;
CREATE ROLE regress_as_of_auditor;
CREATE ROLE regress_as_of_app;
GRANT decide_auditor TO regress_as_of_auditor;
GRANT decide_user TO regress_as_of_app;
SELECT decide_flush();
SELECT clock_timestamp() AS start \gset

-- A policy changed several times, then deleted; ann moves between groups
-- and her attributes change.  One logged decision per epoch.
INSERT INTO decide.entities (uid, parents, attrs) VALUES
    ('user:ann', ARRAY['group:staff'], '{"dept": "ops"}');
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
    ('staff-read', 'allow', 1, 'group:staff', 'read', 'doc:*', NULL),
    ('ops-only', 'deny', 0, '*', 'read', 'doc:ops-*', '$.actor.attrs.dept != "ops"');
SET decide.log = 'all';
SELECT allowed, policy FROM decide('user:ann', 'read', 'doc:ops-1');
UPDATE decide.policies SET priority = 9 WHERE name = 'ops-only';
SELECT allowed, policy FROM decide('user:ann', 'read', 'doc:ops-1');
UPDATE decide.entities SET attrs = '{"dept": "sales"}' WHERE uid = 'user:ann';
SELECT allowed, policy FROM decide('user:ann', 'read', 'doc:ops-1');
UPDATE decide.policies SET effect = 'allow', condition = NULL, name = 'ops-open' WHERE name = 'ops-only';
SELECT allowed, policy FROM decide('user:ann', 'read', 'doc:ops-1');
UPDATE decide.entities SET parents = ARRAY['group:guests'] WHERE uid = 'user:ann';
SELECT allowed, policy FROM decide('user:ann', 'read', 'doc:ops-1');
DELETE FROM decide.policies WHERE name = 'ops-open';
SELECT allowed, policy FROM decide('user:ann', 'read', 'doc:ops-1');
RESET decide.log;
SELECT decide_flush();

-- Each logged decision, decided and explained at its epoch, then and now.
SELECT l.epoch - min(l.epoch) OVER () AS step, l.allowed AS logged_allowed, l.policy AS logged_policy,
       a.allowed AS at_epoch_allowed, a.policy AS at_epoch_policy, a.epoch = l.epoch AS at_its_epoch,
       a.reason,
       (SELECT policy FROM decide_explain(l.actor, l.action, l.resource, '{}', l.epoch) WHERE decisive)
           AS explained_policy,
       (SELECT string_agg(policy || ':' || coalesce(condition, '-'), ', ' ORDER BY rank)
          FROM decide_explain(l.actor, l.action, l.resource, '{}', l.epoch)) AS candidates,
       n.policy AS now_policy
  FROM decide.decisions l,
       LATERAL decide(l.actor, l.action, l.resource, '{}', l.epoch) a,
       LATERAL decide(l.actor, l.action, l.resource) n
 WHERE l.decided_at >= :'start'
 ORDER BY l.decided_at;

-- Named arguments; the current epoch answers as decide() does now.
SELECT allowed, policy FROM decide('user:ann', 'read', 'doc:ops-1', context => '{}',
                                   at_epoch => (SELECT epoch FROM decide.epoch));

-- Not logged, not counted, and no cache entry is shared with live
-- decisions: the live answer, cached first, is not the one of the epoch.
SELECT decide_flush();
SELECT count(*) AS logged_before FROM decide.decisions \gset
SELECT decisions AS decisions_before FROM decide_stats \gset
SELECT min(epoch) AS first_epoch FROM decide.decisions WHERE decided_at >= :'start' \gset
SELECT policy AS live FROM decide('user:ann', 'read', 'doc:ops-1');
SELECT policy AS at_first_epoch FROM decide('user:ann', 'read', 'doc:ops-1', '{}', :first_epoch);
SELECT policy AS live_again FROM decide('user:ann', 'read', 'doc:ops-1');
SELECT decide_flush();
SELECT count(*) - :logged_before AS logged_only_the_two_live FROM decide.decisions;
SELECT decisions - :decisions_before AS counted_only_the_two_live FROM decide_stats;

-- Inside a transaction that changed policies: its own epoch is asked for,
-- and earlier epochs still answer as they were.
BEGIN;
INSERT INTO decide.policies (name, effect, priority, actor, action, resource)
VALUES ('uncommitted', 'deny', 50, '*', '*', '*');
SELECT policy AS own_epoch FROM decide('user:ann', 'read', 'doc:ops-1', '{}', (SELECT epoch FROM decide.epoch));
SELECT policy AS first_epoch_in_transaction FROM decide('user:ann', 'read', 'doc:ops-1', '{}', :first_epoch);
ROLLBACK;
SELECT policy AS first_epoch_after_rollback FROM decide('user:ann', 'read', 'doc:ops-1', '{}', :first_epoch);

-- A randomized check: 60 changes, each in its own transaction (policies
-- inserted, reprioritized, flipped, deleted; entities moved between
-- groups, their attributes changed), with 12 logged decisions after each.
-- Every logged decision, decided and explained at its epoch, gives the
-- answer and the policy it was logged with.
TRUNCATE decide.policies, decide.entities;
SELECT clock_timestamp() AS random_start \gset
CREATE PROCEDURE public.as_of_random_run(n int) LANGUAGE plpgsql AS $$
DECLARE
    step int;
BEGIN
    PERFORM setseed(0.17);
    INSERT INTO decide.entities (uid, parents, attrs)
    SELECT 'user:u' || g, ARRAY['group:g' || (g % 3)], jsonb_build_object('level', g)
      FROM generate_series(1, 4) g;
    COMMIT;
    FOR i IN 1 .. n LOOP
        step := floor(random() * 6)::int;
        CASE step
            WHEN 0, 1 THEN
                INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition)
                VALUES ('r' || i, (CASE WHEN random() < 0.5 THEN 'allow' ELSE 'deny' END)::decide.effect,
                        floor(random() * 10)::int,
                        (ARRAY['*', 'group:g0', 'group:g1', 'group:g2', 'user:u1'])[1 + floor(random() * 5)::int],
                        (ARRAY['*', 'read', 'write'])[1 + floor(random() * 3)::int],
                        (ARRAY['*', 'doc:*', 'doc:a', 'doc:b'])[1 + floor(random() * 4)::int],
                        CASE WHEN random() < 0.3 THEN '$.actor.attrs.level > 2'::jsonpath END);
            WHEN 2 THEN
                UPDATE decide.policies SET priority = floor(random() * 10)::int
                 WHERE id IN (SELECT id FROM decide.policies ORDER BY random() LIMIT 1);
            WHEN 3 THEN
                UPDATE decide.policies
                   SET effect = CASE effect WHEN 'allow' THEN 'deny'::decide.effect ELSE 'allow' END
                 WHERE id IN (SELECT id FROM decide.policies ORDER BY random() LIMIT 1);
            WHEN 4 THEN
                DELETE FROM decide.policies
                 WHERE id IN (SELECT id FROM decide.policies ORDER BY random() LIMIT 1);
            ELSE
                UPDATE decide.entities
                   SET parents = ARRAY['group:g' || floor(random() * 3)::int],
                       attrs = jsonb_build_object('level', floor(random() * 5)::int)
                 WHERE uid IN (SELECT uid FROM decide.entities ORDER BY random() LIMIT 1);
        END CASE;
        COMMIT;
        PERFORM decide(a, act, r)
           FROM unnest(ARRAY['user:u1', 'user:u2', 'user:u3']) a,
                unnest(ARRAY['read', 'write']) act,
                unnest(ARRAY['doc:a', 'doc:b']) r;
        COMMIT;
    END LOOP;
END
$$;
SET decide.log = 'all';
CALL public.as_of_random_run(60);
RESET decide.log;
SELECT decide_flush();
SELECT count(*) AS logged,
       count(DISTINCT l.epoch) AS epochs,
       count(DISTINCT coalesce(l.policy, '-')) > 10 AS policies_vary,
       count(*) FILTER (WHERE a.allowed IS DISTINCT FROM l.allowed
                           OR a.policy IS DISTINCT FROM l.policy) AS decisions_differ,
       count(*) FILTER (WHERE (SELECT policy FROM decide_explain(l.actor, l.action, l.resource, '{}', l.epoch)
                                WHERE decisive) IS DISTINCT FROM l.policy) AS explanations_differ,
       count(*) FILTER (WHERE n.allowed IS DISTINCT FROM l.allowed
                           OR n.policy IS DISTINCT FROM l.policy) > 0 AS some_differ_now
  FROM decide.decisions l,
       LATERAL decide(l.actor, l.action, l.resource, '{}', l.epoch) a,
       LATERAL decide(l.actor, l.action, l.resource) n
 WHERE l.decided_at >= :'random_start';
DROP PROCEDURE public.as_of_random_run(int);

-- Epochs outside the history, NULL, and who may ask.
SELECT epoch AS last_epoch FROM decide.epoch \gset
SELECT min(epoch) - 1 AS oldest_epoch FROM decide.changes \gset
CREATE FUNCTION pg_temp.epochs_hidden(message text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(message, 'epochs [0-9]+ to [0-9]+', 'epochs N to N'),
                          'epoch [0-9]+ ', 'epoch N ')
$$;
SELECT pg_temp.epochs_hidden(pg_temp.try(format(
    $$SELECT decide('user:u1', 'read', 'doc:a', '{}', %s)$$, :last_epoch + 1)));
SELECT pg_temp.epochs_hidden(pg_temp.try(format(
    $$SELECT count(*) FROM decide_explain('user:u1', 'read', 'doc:a', '{}', %s)$$, :oldest_epoch - 1)));
SELECT pg_temp.try($$SELECT decide('user:u1', 'read', 'doc:a', '{}', NULL)$$);
SELECT pg_temp.try($$SELECT decide('user:u1', 'read', 'doc:a', NULL, 1)$$);
SET ROLE regress_as_of_auditor;
SELECT allowed IS NOT NULL AS auditor_decides FROM decide('user:u1', 'read', 'doc:a', '{}', :oldest_epoch);
SELECT count(*) >= 0 AS auditor_explains FROM decide_explain('user:u1', 'read', 'doc:a', '{}', :oldest_epoch);
RESET ROLE;
SET ROLE regress_as_of_app;
SELECT pg_temp.try(format($$SELECT decide('user:u1', 'read', 'doc:a', '{}', %s)$$, :last_epoch));
SELECT pg_temp.try(format($$SELECT count(*) FROM decide_explain('user:u1', 'read', 'doc:a', '{}', %s)$$, :last_epoch));
RESET ROLE;

TRUNCATE decide.policies, decide.entities;
DROP ROLE regress_as_of_auditor, regress_as_of_app;
