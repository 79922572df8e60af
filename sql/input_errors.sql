-- Bad input: every case gets a clear error with an SQLSTATE (or a deny),
-- never a crash, a hang or an allow. try() runs a statement and reports
-- the SQLSTATE, message, detail and hint.
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
\i sql/include/try.sql

INSERT INTO decide.policies (name, effect, actor, action, resource)
VALUES ('all', 'allow', '*', '*', '*');

-- Request arguments.
SELECT pg_temp.try($$SELECT decide(NULL, 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', NULL, 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', NULL)$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', NULL)$$);
SELECT pg_temp.try($$SELECT decide_allowed(NULL, 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:' || repeat('x', 507), 'read', 'doc:1')$$);  -- 512 bytes: ok
SELECT pg_temp.try($$SELECT decide('user:' || repeat('x', 508), 'read', 'doc:1')$$);  -- 513 bytes
SELECT pg_temp.try($$SELECT decide('user:' || repeat('é', 254), 'read', 'doc:1')$$);  -- 513 bytes, 259 chars
SELECT pg_temp.try($$SELECT decide('user:*', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'rea?', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', E'doc:\n1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', '[1,2]')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', '"ip"')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', '7')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1',
                                   jsonb_build_object('blob', repeat('x', 1100000)))$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', '{bad json')$$);

-- decide_many() arguments.
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY['user:a'], ARRAY['read', 'write'], ARRAY['doc:1'])$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY['user:a', NULL], ARRAY['read', 'read'], ARRAY['doc:1', 'doc:2'])$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY[['user:a']], ARRAY[['read']], ARRAY[['doc:1']])$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(NULL, ARRAY['read'], ARRAY['doc:1'])$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY['user:a'], ARRAY['read'], ARRAY['doc:1'], ARRAY['{}', '{}']::jsonb[])$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY['user:a'], ARRAY['read'], ARRAY['doc:1'], ARRAY['[]']::jsonb[])$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY['user:*'], ARRAY['read'], ARRAY['doc:1'])$$);
SELECT pg_temp.try($$SELECT count(*) FROM decide_many(array_fill('u'::text, ARRAY[100001]),
       array_fill('r'::text, ARRAY[100001]), array_fill('d'::text, ARRAY[100001]))$$);

-- Policies: rejected at write time.
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p', 'permit', '*', '*', '*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource, risk_level) VALUES ('p', 'allow', '*', '*', '*', 'severe')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p', 'allow', '', '*', '*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p', 'allow', '*', repeat('a', 513), '*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p', 'allow', '*', '*', E'doc:\t*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p', 'allow', NULL, '*', '*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('', 'allow', '*', '*', '*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('   ', 'allow', '*', '*', '*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('all', 'deny', '*', '*', '*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES ('p', 'allow', '*', '*', '*', '$.context.ip')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES ('p', 'allow', '*', '*', '*', '$.context ? (@.ip == "1")')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES ('p', 'allow', '*', '*', '*', '$.a == $user')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES ('p', 'allow', '*', '*', '*', '$.a === 1')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES ('p', 'allow', '*', '*', '*', '$.a like_regex "(("')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES ('p', 'allow', '*', '*', '*',
    (SELECT string_agg('$.a == ' || g, ' || ') FROM generate_series(1, 2000) g)::jsonpath)$$);
-- Globs of thousands of stars are valid and cheap to match.
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, priority, actor, action, resource) VALUES ('stars', 'deny', 1, repeat('*', 500), repeat('*?', 200), '*')$$);
SELECT allowed, policy FROM decide('user:a', 'read', 'doc:1');
SELECT allowed, policy FROM decide('user:a', repeat('r', 512), 'doc:1');

-- Entities: rejected at write time.
SELECT pg_temp.try($$INSERT INTO decide.entities (uid) VALUES ('')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid) VALUES ('user:*')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid) VALUES (repeat('u', 513))$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('user:a', '{NULL}')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('user:a', '{role:*}')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('user:a', '{{a},{b}}')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('user:a', (SELECT array_agg('role:' || g) FROM generate_series(1, 65) g))$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, attrs) VALUES ('user:a', '[1]')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, attrs) VALUES ('user:a', jsonb_build_object('x', repeat('y', 70000)))$$);

-- Hierarchy: cycles and excessive depth are refused on write.
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('role:self', '{role:self}')$$);
INSERT INTO decide.entities (uid, parents) VALUES ('role:a', '{role:b}'), ('role:b', '{role:c}');
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('role:c', '{role:a}')$$);
SELECT pg_temp.try($$UPDATE decide.entities SET parents = '{role:a}' WHERE uid = 'role:b'$$);
-- chain:1 .. chain:32 is a chain of 31 parent links; chain:0 makes 32,
-- the most allowed; a 33rd link below or above it is refused.
INSERT INTO decide.entities (uid, parents)
SELECT 'chain:' || g, CASE WHEN g < 32 THEN ARRAY['chain:' || (g + 1)] ELSE '{}' END
  FROM generate_series(1, 32) g;
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('chain:0', '{chain:1}')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('chain:-1', '{chain:0}')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('chain:33', '{}')$$);
SELECT pg_temp.try($$UPDATE decide.entities SET parents = '{chain:33}' WHERE uid = 'chain:32'$$);
-- Adding the top of a chain after its bottom is checked too: rev:1 ..
-- rev:32 point up to rev:33, which has no row yet (32 links).
INSERT INTO decide.entities (uid, parents)
SELECT 'rev:' || g, ARRAY['rev:' || (g + 1)] FROM generate_series(1, 32) g;
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('rev:33', '{rev:34}')$$);
SELECT allowed, policy FROM decide('chain:0', 'read', 'doc:1');
-- Too many ancestors (at most 1023): refused on write for the entity
-- written.  wide:all gets 15 parents with 64 parents each: 975 ancestors.
INSERT INTO decide.entities (uid, parents)
SELECT 'wide:' || g, (SELECT array_agg('wide:' || g || ':' || p) FROM generate_series(1, 64) p)
  FROM generate_series(1, 16) g;
INSERT INTO decide.entities (uid, parents)
SELECT 'wide:all', array_agg('wide:' || g) FROM generate_series(1, 15) g;
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents)
                     SELECT 'wide:too-many', array_agg('wide:' || g) FROM generate_series(1, 16) g$$);
-- A descendant that grows past the limit through a change above it is cut
-- at decision time: wide:all reaches 1023, wide:child (below it) 1024.
INSERT INTO decide.entities (uid, parents) VALUES ('wide:child', '{wide:all}');
UPDATE decide.entities
   SET parents = parents || ARRAY(SELECT 'extra:' || g FROM generate_series(1, 48) g)
 WHERE uid = 'wide:all';
SELECT allowed, policy FROM decide('wide:all', 'read', 'doc:1');
SELECT pg_temp.try($$SELECT decide('wide:child', 'read', 'doc:1')$$);
SELECT count(*) AS entities FROM decide.entities;

-- After all these errors the backend still answers.
SELECT allowed, policy FROM decide('user:a', 'read', 'doc:1');
TRUNCATE decide.policies, decide.entities;
