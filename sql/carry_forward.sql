-- Carrying cached decisions across a policy change: after a change, a
-- cached decision is reused (source l1 or l2, carried_forward counted) only
-- for a request that no changed policy matches by pattern, in either its
-- old or its new version; anything else is decided again.  Entity changes
-- carry nothing, and entities read before a policy-only change are reused
-- (entity_fetches does not move).
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
INSERT INTO decide.entities (uid, parents) VALUES
    ('user:ann', '{role:staff}'), ('user:bob', '{role:guest}'),
    ('doc:1', '{folder:a}'), ('doc:2', '{folder:b}');
INSERT INTO decide.policies (name, effect, priority, actor, action, resource) VALUES
    ('staff-read-a', 'allow', 0, 'role:staff', 'read', 'folder:a'),
    ('guest-read-b', 'allow', 0, 'role:guest', 'read', 'folder:b'),
    ('nobody-deletes-b', 'deny', 5, '*', 'delete', 'folder:b');
SELECT decide_cache_reset();

CREATE TEMP TABLE counters AS
SELECT carried_forward, entity_fetches FROM decide_stats;
-- What moved since the last call.
CREATE FUNCTION pg_temp.moved(OUT carried bigint, OUT fetched bigint)
LANGUAGE sql AS $$
    WITH now AS (SELECT carried_forward, entity_fetches FROM decide_stats),
         upd AS (UPDATE counters c SET carried_forward = n.carried_forward,
                                      entity_fetches = n.entity_fetches
                   FROM now n RETURNING c.*)
    SELECT n.carried_forward - o.carried_forward, n.entity_fetches - o.entity_fetches
      FROM now n, counters o
$$;
SELECT * FROM pg_temp.moved() \gset

SELECT allowed, policy, source FROM decide('user:ann', 'read', 'doc:1');
SELECT allowed, policy, source FROM decide('user:bob', 'read', 'doc:2');
SELECT allowed, policy, source FROM decide('user:bob', 'delete', 'doc:2');
SELECT carried, fetched > 0 AS fetched_entities FROM pg_temp.moved();

-- A change none of the three requests meets: all three carried over, under
-- the new epoch, without reading an entity again.
INSERT INTO decide.policies (name, effect, actor, action, resource)
VALUES ('staff-write-c', 'allow', 'role:staff', 'write', 'folder:c');
SELECT allowed, policy, source, epoch = decide_epoch() AS current_epoch
  FROM decide('user:ann', 'read', 'doc:1');
SELECT allowed, policy, source FROM decide('user:bob', 'read', 'doc:2');
SELECT allowed, policy, source FROM decide('user:bob', 'delete', 'doc:2');
SELECT carried, fetched FROM pg_temp.moved();
-- Carried answers were stored under the new epoch: plain hits now.
SELECT allowed, policy, source FROM decide('user:ann', 'read', 'doc:1');
SELECT carried FROM pg_temp.moved();

-- A change that one request meets (a new deny above the allow it had):
-- that one is decided again, the others are carried.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource)
VALUES ('ann-not-a', 'deny', 10, 'user:ann', 'read', 'folder:*');
SELECT allowed, policy, source FROM decide('user:ann', 'read', 'doc:1');
SELECT allowed, policy, source FROM decide('user:bob', 'read', 'doc:2');
SELECT carried FROM pg_temp.moved();

-- The deciding policy renamed: its name is in the answer, so no carrying.
UPDATE decide.policies SET name = 'guests-read-b' WHERE name = 'guest-read-b';
SELECT allowed, policy, source FROM decide('user:bob', 'read', 'doc:2');
-- Its risk level changed: the same.
UPDATE decide.policies SET risk_level = 'high' WHERE name = 'guests-read-b';
SELECT allowed, policy, risk_level, source FROM decide('user:bob', 'read', 'doc:2');
-- Deactivated: the request falls to the default deny.
UPDATE decide.policies SET active = false WHERE name = 'guests-read-b';
SELECT allowed, policy, source FROM decide('user:bob', 'read', 'doc:2');
-- A condition added to a policy that matches by pattern: decided again
-- (the condition is false for a request without an ip: default deny).
UPDATE decide.policies SET condition = '$.context.ip starts with "10."' WHERE name = 'nobody-deletes-b';
SELECT allowed, policy, source FROM decide('user:bob', 'delete', 'doc:2');
SELECT carried FROM pg_temp.moved();

-- Two commits between decisions: carried from the epoch before both.
-- (Only from the epoch of the set this backend had before: an entry cached
-- under any older epoch is not looked for.)
SELECT allowed, policy, source FROM decide('user:ann', 'read', 'doc:1');
INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('x1', 'allow', 'role:x', 'read', 'folder:x');
INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('x2', 'allow', 'role:x', 'read', 'folder:x');
SELECT allowed, policy, source FROM decide('user:ann', 'read', 'doc:1');
SELECT carried, fetched FROM pg_temp.moved();

-- An entity change carries nothing, though this request's entities did
-- not change: entities are versioned as a whole.
INSERT INTO decide.entities (uid, parents) VALUES ('user:cy', '{role:guest}');
SELECT allowed, policy, source FROM decide('user:ann', 'read', 'doc:1');
SELECT carried, fetched > 0 AS fetched_entities FROM pg_temp.moved();

-- Under this transaction's own uncommitted change nothing is cached or
-- carried; after the rollback the entries of the committed epoch answer.
SELECT allowed, policy, source FROM decide('user:bob', 'delete', 'doc:2');
BEGIN;
UPDATE decide.policies SET effect = 'allow' WHERE name = 'nobody-deletes-b';
SELECT allowed, policy, source FROM decide('user:bob', 'delete', 'doc:2');
ROLLBACK;
SELECT allowed, policy, source FROM decide('user:bob', 'delete', 'doc:2');
SELECT carried FROM pg_temp.moved();

-- More than 1,024 changed policies at once: not carried, decided again.
INSERT INTO decide.policies (name, effect, actor, action, resource)
SELECT 'bulk-' || g, 'allow', 'role:bulk', 'read', 'folder:bulk' FROM generate_series(1, 1100) g;
SELECT allowed, policy, source FROM decide('user:ann', 'read', 'doc:1');
SELECT carried FROM pg_temp.moved();

TRUNCATE decide.policies, decide.entities;
