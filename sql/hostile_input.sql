-- Hostile input: every case below gets a clear error with an
-- SQLSTATE, or a deny; never a crash, a hang or an allow; and the backend
-- answers afterwards (alive() after each group). Nothing printed depends
-- on timing, ids or timestamps: "never a hang" is enforced by generous
-- statement_timeouts (an overrun would print 57014 and fail the test).
SET client_min_messages = warning;
SET decide.log = 'none';                -- this file decides a lot: keep the log quiet
TRUNCATE decide.policies, decide.entities;
\i sql/include/try.sql
-- The first row of decide(), reduced to what does not vary.
CREATE FUNCTION pg_temp.d(actor text, action text, resource text, context jsonb DEFAULT '{}')
RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN allowed THEN 'allow' ELSE 'deny' END || ' by ' || coalesce(policy, '(no policy)')
      FROM decide(actor, action, resource, context)
$$;
-- The backend still answers, and answers right.
CREATE FUNCTION pg_temp.alive() RETURNS text LANGUAGE sql AS $$
    SELECT 'alive: ' || pg_temp.d('user:probe', 'read', 'doc:probe')
$$;

INSERT INTO decide.policies (name, effect, priority, actor, action, resource) VALUES
  ('anyone-reads', 'allow', 0, '*', 'read', '*'),
  ('no-secrets',   'deny',  1, '*', '*', 'secret:*');
SELECT pg_temp.alive();

-- 1. Empty uids and patterns: refused, in every position.
SELECT pg_temp.try($$SELECT decide('', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', '', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', '')$$);
SELECT pg_temp.try($$SELECT decide_allowed('user:a', 'read', '')$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY['user:a', ''], ARRAY['read', 'read'], ARRAY['doc:1', 'doc:2'])$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid) VALUES ('')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('user:a', ARRAY[''])$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p', 'allow', '*', '', '*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p', 'allow', '*', '*', '')$$);
SELECT pg_temp.alive();

-- 2. The size limit, 512 bytes: exactly at it is fine, one byte more is
-- refused, counted in bytes whatever the characters.
SELECT pg_temp.d(repeat('a', 512), 'read', 'doc:1');
SELECT pg_temp.try($$SELECT decide(repeat('a', 513), 'read', 'doc:1')$$);
SELECT pg_temp.d('user:a', repeat('r', 512), 'secret:' || repeat('s', 505));
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'secret:' || repeat('s', 506))$$);
-- é is 2 bytes, € 3, 𝄞 4: 512 bytes exactly, then one more.
SELECT octet_length(repeat('é', 256)) AS e_bytes, pg_temp.d(repeat('é', 256), 'read', 'doc:1');
SELECT pg_temp.try($$SELECT decide('x' || repeat('é', 256), 'read', 'doc:1')$$);
SELECT pg_temp.d(repeat('€', 170) || 'ab', 'read', 'doc:1');
SELECT pg_temp.try($$SELECT decide(repeat('€', 171), 'read', 'doc:1')$$);
SELECT pg_temp.d(repeat('𝄞', 128), 'read', 'doc:1');
SELECT pg_temp.try($$SELECT decide('a' || repeat('𝄞', 128), 'read', 'doc:1')$$);
-- A multi-byte character straddling the limit: 511 bytes, then a 2-byte
-- character that would end at byte 513.
SELECT pg_temp.try($$SELECT decide(repeat('a', 511) || 'é', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY[repeat('a', 511) || '€'], ARRAY['read'], ARRAY['doc:1'])$$);
-- The same limit on write, for uids, parents and patterns.
SELECT pg_temp.try($$INSERT INTO decide.entities (uid) VALUES (repeat('é', 256))$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid) VALUES (repeat('é', 256) || 'x')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('user:p', ARRAY[repeat('€', 171)])$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p512', 'allow', repeat('*', 512), 'read', '*')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p513', 'allow', repeat('*', 513), 'read', '*')$$);
DELETE FROM decide.policies WHERE name = 'p512';
DELETE FROM decide.entities;
-- '?' is one character: 256 of them match the 256 é (512 bytes), 512 do not.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource) VALUES
  ('q256', 'allow', 5, repeat('?', 256), 'write', '*'),
  ('q512', 'deny',  6, repeat('?', 512), 'write', '*');
SELECT pg_temp.d(repeat('é', 256), 'write', 'doc:1');
SELECT pg_temp.d(repeat('a', 512), 'write', 'doc:1');
DELETE FROM decide.policies WHERE name IN ('q256', 'q512');
SELECT pg_temp.alive();

-- 3. NUL and other control characters. PostgreSQL text cannot hold NUL:
-- every way of writing one fails before decide sees it.
SELECT pg_temp.try($$SELECT decide(E'user:\x00', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:' || chr(0), 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide(E'user:\u0000', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide(convert_from('\x757365723a00'::bytea, 'UTF8'), 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', '{"ip": "\u0000"}')$$);
-- Invalid UTF-8 (an overlong '/') cannot become text either.
SELECT pg_temp.try($$SELECT decide(convert_from('\x757365723ac0af'::bytea, 'UTF8'), 'read', 'doc:1')$$);
-- Backslash-x-zero-zero without E'' is four ordinary characters: a uid.
SELECT pg_temp.d('user:\x00', 'read', 'doc:1');
-- Control bytes are refused in uids and patterns; DEL too.
SELECT pg_temp.try($$SELECT decide(E'user:\x01', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', E'read\x7f', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', E'secret:\r\nx')$$);
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('p', 'allow', E'user:\x1b[31m*', '*', '*')$$);
-- Characters that are not control bytes are uids like any other, compared
-- byte for byte: no Unicode normalisation, so é (NFC) and e + U+0301
-- (NFD) are different uids, and a right-to-left override is just a byte.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource) VALUES
  ('jose-writes', 'allow', 5, 'user:josé', 'write', 'doc:*');
SELECT pg_temp.d('user:josé', 'write', 'doc:1');
SELECT pg_temp.d(E'user:jose\u0301', 'write', 'doc:1');
SELECT pg_temp.d(E'user:jos\u202Eé', 'write', 'doc:1');
SELECT pg_temp.d(E'user:josé\u200B', 'write', 'doc:1');
DELETE FROM decide.policies WHERE name = 'jose-writes';
SELECT pg_temp.alive();

-- 4. Thousands of stars. A pattern holds at most 512 bytes, so at most 512
-- stars; longer ones are refused on write. The longest and the nastiest
-- patterns against the longest uids decide at once (in milliseconds; the
-- generous statement_timeout only turns a hang into a failure of this
-- test, even on a loaded machine or a sanitized build).
SELECT pg_temp.try($$INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES ('stars', 'allow', repeat('*', 5000), '*', '*')$$);
-- One action per pattern, so that each is matched in full.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource) VALUES
  ('stars-511-z',  'deny', 10, repeat('*', 511) || 'z',            's1', '*'),
  ('star-q-256',   'deny', 10, repeat('*?', 256),                  's2', repeat('*', 512)),
  ('star-a-255-b', 'deny', 10, repeat('*a', 255) || '*b',          's3', '*'),
  ('backtrack',    'deny', 10, '*' || repeat('a', 254) || 'b*',    's4', '*'),
  ('long-literal', 'deny', 10, repeat('a', 510) || '?*',           's5', '*');
SET statement_timeout = '60s';
SELECT action, octet_length(actor) AS actor_bytes, pg_temp.d(actor, action, resource) AS decision
  FROM (VALUES ('s1', repeat('a', 512), 'doc:1'), ('s1', repeat('a', 511) || 'z', 'doc:1'),
               ('s2', repeat('b', 255), repeat('x', 512)), ('s2', repeat('b', 256), repeat('x', 512)),
               ('s3', repeat('a', 512), 'doc:1'), ('s3', repeat('a', 255) || 'b', 'doc:1'),
               ('s4', repeat('a', 512), 'doc:1'), ('s4', repeat('a', 300) || 'b', 'doc:1'),
               ('s5', repeat('a', 510), 'doc:1'), ('s5', repeat('a', 511), 'doc:1')) AS r(action, actor, resource);
-- The worst case for the matcher (the backtracking pattern against 512
-- a's), 2,000 times, each a distinct request.
SELECT count(*) FILTER (WHERE allowed) AS allowed, count(*) AS decided
  FROM decide_many(array_fill(repeat('a', 512), ARRAY[2000]), array_fill('s4'::text, ARRAY[2000]),
                   ARRAY(SELECT 'doc:' || g FROM generate_series(1, 2000) g));
RESET statement_timeout;
DELETE FROM decide.policies WHERE priority >= 10;
SELECT pg_temp.alive();

-- 5. Contexts: only JSON objects, at most 1 MB; deep nesting is fine.
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', '[]')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', '[{"ip": "10.0.0.1"}]')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', '1')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', '"x"')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', 'true')$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', 'null')$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY['user:a'], ARRAY['read'], ARRAY['doc:1'], ARRAY['7'::jsonb])$$);
-- 10 MB: refused with its size.
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', jsonb_build_object('blob', repeat('x', 10 * 1024 * 1024)))$$);
SELECT pg_temp.try($$SELECT * FROM decide_many(ARRAY['user:a'], ARRAY['read'], ARRAY['doc:1'],
                     ARRAY[jsonb_build_object('blob', repeat('x', 10 * 1024 * 1024))])$$);
-- Just under the limit, and 30,000 keys: decided.
SELECT pg_temp.d('user:a', 'read', 'doc:1', jsonb_build_object('blob', repeat('x', 1000000)));
SELECT pg_temp.d('user:a', 'read', 'doc:1', (SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 30000) g));
-- 100 levels of nesting, read by a condition 100 levels down and by $.**.
CREATE TEMP TABLE deep AS
SELECT (repeat('{"a":', 100) || '"needle"' || repeat('}', 100))::jsonb AS c100,
       (repeat('{"a":', 1000) || '1' || repeat('}', 1000))::jsonb AS c1000;
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('deep-path', 'allow', 5, '*', 'dig', 'hole:path', ('$.context' || repeat('.a', 100) || ' == "needle"')::jsonpath),
  ('deep-any',  'allow', 5, '*', 'dig', 'hole:any',  'exists($.context.** ? (@ == "needle"))');
SELECT pg_temp.d('user:a', 'dig', 'hole:path', c100), pg_temp.d('user:a', 'dig', 'hole:any', c100) FROM deep;
SELECT pg_temp.d('user:a', 'dig', 'hole:path', '{"a": 1}'), pg_temp.d('user:a', 'dig', 'hole:any', '{}');
-- Nesting the parser refuses (its stack limit) never reaches decide.
SELECT pg_temp.try($$SELECT decide('user:a', 'read', 'doc:1', (repeat('{"a":', 1000000) || '1' || repeat('}', 1000000))::jsonb)$$);
-- The context cannot pose as the request: it sits under "context", and
-- uids are values, never parsed as JSON.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('root-only', 'allow', 5, '*', 'admin', '*', '$.actor.uid == "user:root" || $.actor.attrs.admin == true');
SELECT pg_temp.d('user:eve', 'admin', 'doc:1', '{"actor": {"uid": "user:root", "attrs": {"admin": true}}}');
SELECT pg_temp.d('user:eve", "attrs": {"admin": true}, "x": "', 'admin', 'doc:1');
SELECT pg_temp.d('user:root', 'admin', 'doc:1');
-- Duplicate keys: jsonb keeps the last one, and so does the condition.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('intranet', 'allow', 5, '*', 'browse', '*', '$.context.ip starts with "10."');
SELECT pg_temp.d('user:a', 'browse', 'doc:1', '{"ip": "10.0.0.1", "ip": "203.0.113.9"}');
SELECT pg_temp.d('user:a', 'browse', 'doc:1', '{"ip": "203.0.113.9", "ip": "10.0.0.1"}');
DELETE FROM decide.policies WHERE priority = 5;
SELECT pg_temp.alive();

-- 6. Conditions that fail at run time fail closed: a deny applies, an
-- allow does not. Conditions that are slow are cut by statement_timeout
-- (57014), which is never mistaken for "unknown": the statement fails,
-- for a deny and for an allow alike.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('deny-divzero',  'deny',  5, '*', 'divide', 'deny:*',  '$.context.n / 0 > 1'),
  ('allow-divzero', 'allow', 5, '*', 'divide', 'allow:*', '$.context.n / 0 > 1'),
  ('deny-type',     'deny',  5, '*', 'compare', '*', '$.context.n like_regex "x"'),
  ('deny-slow',     'deny',  5, '*', 'crawl', 'deny:*',  'exists($.context.**.**.** ? (@ == "x"))'),
  ('allow-slow',    'allow', 5, '*', 'crawl', 'allow:*', 'exists($.context.**.**.** ? (@ == "x"))'),
  ('regex-long',    'deny',  5, '*', 'match', '*', '$.context.s like_regex "^(a|aa)*(b|ab)$"');
SELECT pg_temp.d('user:a', 'divide', 'deny:1', '{"n": 5}'), pg_temp.d('user:a', 'divide', 'allow:1', '{"n": 5}');
SELECT reason FROM decide('user:a', 'divide', 'deny:1', '{"n": 5}');
SELECT pg_temp.d('user:a', 'compare', 'doc:1', '{"n": [1, {"x": 2}]}');
-- like_regex over a 900 kB string: evaluated, quickly.
SET statement_timeout = '60s';
SELECT pg_temp.d('user:a', 'match', 'doc:1', jsonb_build_object('s', repeat('a', 900000) || 'b'));
SELECT pg_temp.d('user:a', 'match', 'doc:1', jsonb_build_object('s', repeat('a', 900000)));
RESET statement_timeout;
-- $.**.**.** over 1,000 levels would take minutes: cut at 200 ms.
SET statement_timeout = '200ms';
SELECT pg_temp.try($$SELECT decide('user:a', 'crawl', 'deny:1', (SELECT c1000 FROM deep))$$);
SELECT pg_temp.try($$SELECT decide('user:a', 'crawl', 'allow:1', (SELECT c1000 FROM deep))$$);
RESET statement_timeout;
-- Deep recursion: $.** on the deepest context the parser accepts here.
SELECT pg_temp.d('user:a', 'dig', 'hole:any', c1000) FROM deep;
DELETE FROM decide.policies WHERE priority = 5;
SELECT pg_temp.alive();

-- 7. Hierarchies: 10,000 levels attempted in one statement are refused
-- (at most 32 parent links; the check costs seconds here, not minutes);
-- so are cycles, however long (a ring longer than 32 is refused as too
-- deep before it is seen as a cycle).
-- Cycles made by two concurrent transactions: specs/hierarchy_cycle.spec.
SET statement_timeout = '300s';
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents)
                     SELECT 'deep:' || g, ARRAY['deep:' || (g + 1)] FROM generate_series(1, 10000) g$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents)
                     SELECT 'ring:' || g, ARRAY['ring:' || (g % 1000 + 1)] FROM generate_series(1, 1000) g$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents)
                     SELECT 'ring:' || g, ARRAY['ring:' || (g % 5 + 1)] FROM generate_series(1, 5) g$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('self:1', '{self:1}')$$);
-- Built up one level at a time: 32 links are fine, a 33rd is refused,
-- below the chain or above it.
DO $$
BEGIN
    FOR g IN REVERSE 32 .. 1 LOOP
        INSERT INTO decide.entities (uid, parents) VALUES ('step:' || g, ARRAY['step:' || (g + 1)]);
    END LOOP;
END
$$;
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('step:0', '{step:1}')$$);
SELECT pg_temp.try($$INSERT INTO decide.entities (uid, parents) VALUES ('step:33', '{step:34}')$$);
SELECT pg_temp.try($$UPDATE decide.entities SET parents = '{step:1}' WHERE uid = 'step:32'$$);
RESET statement_timeout;
SELECT count(*) AS entities FROM decide.entities;
SELECT pg_temp.d('step:1', 'read', 'doc:1');
DELETE FROM decide.entities;
SELECT pg_temp.alive();

-- 8. statement_timeout during a long decide_many: 100,000 distinct
-- requests (over a second of work without caches) stopped at 100 ms with
-- 57014.
-- The arrays are built first, outside the timeout.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition) VALUES
  ('slow-ish', 'allow', 5, 'user:*', 'batch', '*', 'exists($.context.** ? (@ == "x")) || $.actor.uid like_regex "9$"');
CREATE TABLE hostile_batch AS
SELECT array_agg('user:' || g) AS actors, array_fill('batch'::text, ARRAY[100000]) AS actions,
       array_agg('doc:' || g) AS resources
  FROM generate_series(1, 100000) g;
SET statement_timeout = '100ms';
SELECT pg_temp.try($$SELECT count(*) FROM hostile_batch, LATERAL decide_many(actors, actions, resources)$$);
RESET statement_timeout;
SELECT pg_temp.alive();
-- ... and so does a query cancel: another session (through dblink) runs
-- the batch without caches, and pg_cancel_backend() about 50 ms into it
-- stops it within seconds.
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('victim', format('dbname=%s port=%s host=%s', current_database(),
       current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT dblink_exec('victim', 'SET decide.cache = off; SET decide.log = ''none''');
CREATE TEMP TABLE victim AS SELECT pid FROM dblink('victim', 'SELECT pg_backend_pid()') AS t(pid integer);
SELECT dblink_send_query('victim',
       'SELECT count(*) FROM hostile_batch, LATERAL decide_many(actors, actions, resources)') AS sent;
DO $$
BEGIN
    -- until the batch runs, then a little longer: it is inside decide_many
    FOR i IN 1 .. 1000 LOOP
        PERFORM pg_stat_clear_snapshot();   -- else the first look is kept
        EXIT WHEN EXISTS (SELECT FROM pg_stat_activity a JOIN victim v USING (pid)
                           WHERE a.state = 'active' AND a.query LIKE '%decide_many%');
        PERFORM pg_sleep(0.01);
    END LOOP;
    PERFORM pg_sleep(0.05);
END
$$;
CREATE TEMP TABLE cancelled AS SELECT clock_timestamp() AS at, pg_cancel_backend(pid) AS signalled FROM victim;
SELECT signalled FROM cancelled;
SELECT pg_temp.try($$SELECT * FROM dblink_get_result('victim') AS t(n bigint)$$);
SELECT clock_timestamp() - at < interval '5 seconds' AS stopped_promptly FROM cancelled;
SELECT count(*) AS no_more_results FROM dblink_get_result('victim') AS t(n bigint);
-- The cancelled session goes on answering.
SELECT * FROM dblink('victim', 'SELECT count(*) FROM decide_many(ARRAY[''user:a''], ARRAY[''read''], ARRAY[''doc:1''])') AS t(n bigint);
SELECT dblink_disconnect('victim');
DROP EXTENSION dblink;
DROP TABLE hostile_batch;
SELECT pg_temp.alive();

TRUNCATE decide.policies, decide.entities;
