-- Freshness within a session: the epoch moves by exactly one per committed
-- transaction that changes policies or entities; the next transaction sees
-- the change; a rolled-back change changes nothing.
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;

CREATE TEMP TABLE epochs (label text, epoch bigint);
INSERT INTO epochs SELECT 'start', decide_epoch();

SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');

-- One statement, one transaction: +1.
INSERT INTO decide.policies (name, effect, actor, action, resource)
VALUES ('alice-reads', 'allow', 'user:alice', 'read', 'doc:*');
INSERT INTO epochs SELECT 'after insert', decide_epoch();
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');

-- Several statements in one transaction: +1 in all.
BEGIN;
UPDATE decide.policies SET priority = 1 WHERE name = 'alice-reads';
INSERT INTO decide.policies (name, effect, priority, actor, action, resource)
VALUES ('no-doc-2', 'deny', 5, '*', '*', 'doc:2');
INSERT INTO decide.entities (uid, parents) VALUES ('user:bob', '{user:alice}');
-- The transaction reads its own writes.
SELECT allowed, policy FROM decide('user:bob', 'read', 'doc:2');
COMMIT;
INSERT INTO epochs SELECT 'after 3-statement transaction', decide_epoch();
SELECT allowed, policy FROM decide('user:bob', 'read', 'doc:1');

-- Rollback: no change, same epoch, the old answer.
BEGIN;
DELETE FROM decide.policies WHERE name = 'alice-reads';
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');
ROLLBACK;
INSERT INTO epochs SELECT 'after rollback', decide_epoch();
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');

-- A rolled-back savepoint inside a committed transaction still counts once.
BEGIN;
SAVEPOINT s;
UPDATE decide.policies SET active = false;
ROLLBACK TO SAVEPOINT s;
UPDATE decide.entities SET attrs = '{"level": 3}' WHERE uid = 'user:bob';
COMMIT;
INSERT INTO epochs SELECT 'after savepoint rollback + commit', decide_epoch();
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');

-- Entity changes count: removing bob's parent removes alice's rights from him.
UPDATE decide.entities SET parents = '{}' WHERE uid = 'user:bob';
INSERT INTO epochs SELECT 'after entity update', decide_epoch();
SELECT allowed, policy FROM decide('user:bob', 'read', 'doc:1');

-- DELETE and TRUNCATE count.
DELETE FROM decide.entities WHERE uid = 'user:bob';
INSERT INTO epochs SELECT 'after entity delete', decide_epoch();
TRUNCATE decide.policies;
INSERT INTO epochs SELECT 'after truncate', decide_epoch();
SELECT allowed, policy FROM decide('user:alice', 'read', 'doc:1');

-- A statement that changes no row still runs the statement trigger: +1.
DELETE FROM decide.policies WHERE false;
INSERT INTO epochs SELECT 'after empty delete', decide_epoch();

-- The decision reports the epoch it was made under.
SELECT epoch = decide_epoch() AS decision_epoch_is_current FROM decide('user:alice', 'read', 'doc:1');

SELECT label, epoch - first_value(epoch) OVER (ORDER BY ctid) AS since_start,
       epoch - lag(epoch) OVER (ORDER BY ctid) AS step
  FROM epochs ORDER BY ctid;
DROP TABLE epochs;
