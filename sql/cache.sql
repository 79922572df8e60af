-- Decision caches: the source column, hit and miss counting, invalidation
-- by epoch, injective keys, bounded memory, and the stats view and metrics.
-- (Cross-backend behaviour is in specs/ and t/.)
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
SELECT decide_cache_reset();
SELECT decide_reset_stats();

INSERT INTO decide.entities (uid, parents) VALUES ('user:alice', '{role:reader}');
INSERT INTO decide.policies (name, effect, actor, action, resource)
VALUES ('readers-read', 'allow', 'role:reader', 'read', 'doc:*');

-- First a miss, then L1 hits; L2 was filled by the miss too.
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
SELECT decide_allowed('user:alice', 'read', 'doc:1');
-- With L1 emptied, L2 answers (and refills L1).
SET decide.l1_cache_entries = 0;
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
RESET decide.l1_cache_entries;
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
SELECT decisions, l1_hits, l1_misses, l2_hits, l2_misses, uncached, hit_ratio
  FROM decide_stats;

-- A committed change moves the epoch: the next decision is a miss.
UPDATE decide.policies SET effect = 'deny';
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');

-- Inside a transaction with its own uncommitted change nothing is cached
-- (that epoch number could be rolled back and reused); after rollback the
-- old entry is still good.
BEGIN;
UPDATE decide.policies SET effect = 'allow';
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
ROLLBACK;
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');

-- decide.cache = off bypasses both layers (superuser only).
SET decide.cache = off;
SELECT allowed, policy, source FROM decide('user:alice', 'read', 'doc:1');
RESET decide.cache;

-- Time-dependent decisions (a condition read $now) expire after
-- decide.time_dependent_ttl; with 0 they are never cached.
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition)
VALUES ('after-2000', 'allow', 9, '*', 'open', '*', '$now > "2000-01-01"');
SET decide.time_dependent_ttl = 0;
SELECT allowed, policy, source FROM decide('user:alice', 'open', 'doc:1');
SELECT allowed, policy, source FROM decide('user:alice', 'open', 'doc:1');
SET decide.time_dependent_ttl = '100ms';
SELECT allowed, policy, source FROM decide('user:alice', 'open', 'doc:2');
SELECT allowed, policy, source FROM decide('user:alice', 'open', 'doc:2');
SELECT pg_sleep(0.2);
SELECT allowed, policy, source FROM decide('user:alice', 'open', 'doc:2');
RESET decide.time_dependent_ttl;

-- The TTL counts from $now, the start of the statement that decided, not
-- from when the answer was stored: a statement that ran past a deadline
-- leaves no answer behind to be served after it, in this session (L1) or
-- another (L2).
SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC' + interval '1 second',
               'YYYY-MM-DD"T"HH24:MI:SS.US') AS deadline \gset
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, condition)
VALUES ('until-deadline', 'allow', 9, 'user:temp', 'read', 'doc:t',
        format('$now < "%s"', :'deadline')::jsonpath);
SET decide.time_dependent_ttl = '1s';
SELECT (r).allowed, (r).policy, (r).source
  FROM (SELECT decide('user:temp', 'read', 'doc:t') AS r
          FROM (SELECT pg_sleep(2)) slept OFFSET 0) decided;
SELECT allowed, policy, source FROM decide('user:temp', 'read', 'doc:t');
\c
SELECT allowed, policy, source FROM decide('user:temp', 'read', 'doc:t');
DELETE FROM decide.policies WHERE name = 'until-deadline';

-- Injective keys: requests whose fields would collide if concatenated,
-- with or without a separator, each get their own decision.
TRUNCATE decide.policies;
INSERT INTO decide.policies (name, effect, actor, action, resource, condition) VALUES
  ('ab-c-d',   'allow', 'user:ab', 'c',   'd',  NULL),
  ('a-bc-d',   'deny',  'user:a',  'bc',  'd',  NULL),
  ('a|b-c-d',  'allow', 'user:a|b', 'c',  'd',  NULL),
  ('a-b|c-d',  'deny',  'user:a',  'b|c', 'd',  NULL),
  ('x-y-z1',   'allow', 'x',       'y',   'z1', '$.context.k == "v"'),
  ('x-y-z',    'deny',  'x',       'y',   'z',  '$.context.k == "v"');
CREATE TEMP TABLE requests (n int, a text, b text, c text, ctx jsonb);
INSERT INTO requests VALUES
  (1, 'user:ab', 'c', 'd', '{}'),
  (2, 'user:a', 'bc', 'd', '{}'),
  (3, 'user:a|b', 'c', 'd', '{}'),
  (4, 'user:a', 'b|c', 'd', '{}'),
  (5, 'x', 'y', 'z1', '{"k":"v"}'),
  (6, 'x', 'y', 'z', '{"k":"v"}'),
  (7, 'x', 'y', 'z', '{"k":"w"}'),
  (8, 'x', 'y', 'z', '{"k":"v", "z":1}');
-- Twice: the second round comes from the cache and must agree.
SELECT n, d.allowed, d.policy, d.source
  FROM requests, LATERAL decide(a, b, c, ctx) d ORDER BY n;
SELECT n, d.allowed, d.policy, d.source
  FROM requests, LATERAL decide(a, b, c, ctx) d ORDER BY n;

-- Bounded memory: far more distinct requests than either layer holds.
-- (scripts/regress.conf sets decide.shared_cache_size = 2MB.)
SELECT decide_reset_stats();
SET decide.l1_cache_entries = 256;
SELECT count(*) FILTER (WHERE allowed) AS allowed, count(*) AS decisions
  FROM generate_series(1, 20000) g, LATERAL decide('user:' || g, 'read', 'doc:1') d;
SELECT l1_entries <= l1_capacity AS l1_within_bound, l1_capacity,
       l1_evictions > 0 AS l1_evicted,
       l2_entries <= l2_capacity AS l2_within_bound, l2_capacity,
       l2_evictions > 0 AS l2_evicted,
       l2_bytes <= 2 * 1024 * 1024 AS l2_bytes_within_setting
  FROM decide_stats;
-- Still correct after all that eviction.
SELECT n, d.allowed, d.policy FROM requests, LATERAL decide(a, b, c, ctx) d ORDER BY n;
RESET decide.l1_cache_entries;

-- The stats view: every column, typed; values that do not depend on timing.
SELECT shared_memory, shared_cache, decisions > 0 AS decided,
       latency_p50_us > 0 AS has_p50, latency_p99_us >= latency_p50_us AS p99_ge_p50,
       policy_reloads > 0 AS reloaded, last_reload_policies, epoch = decide_epoch() AS epoch_current
  FROM decide_stats;
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'decide_stats'::regclass AND attnum > 0 ORDER BY attnum;

-- Prometheus text format: HELP and TYPE for every family, a histogram whose
-- buckets are cumulative and end at +Inf = _count.
WITH lines AS (SELECT line FROM regexp_split_to_table(decide_metrics(), E'\n') AS line WHERE line <> '')
SELECT substring(line FROM '^# TYPE (\S+)') AS family, substring(line FROM '^# TYPE \S+ (\S+)') AS type
  FROM lines WHERE line LIKE '# TYPE %';
WITH lines AS (SELECT line, ordinality
                 FROM regexp_split_to_table(decide_metrics(), E'\n') WITH ORDINALITY AS line),
     buckets AS (
       SELECT substring(line FROM 'le="([^"]+)"') AS le,
              substring(line FROM ' (\d+)$')::bigint AS n, ordinality
         FROM lines WHERE line LIKE 'decide_decision_duration_seconds_bucket%')
SELECT count(*) AS buckets,
       bool_and(n >= coalesce(prev, 0)) AS cumulative,
       (SELECT le FROM buckets ORDER BY ordinality DESC LIMIT 1) AS last_le,
       (SELECT n FROM buckets ORDER BY ordinality DESC LIMIT 1) =
       (SELECT substring(line FROM ' (\d+)$')::bigint FROM lines
         WHERE line LIKE 'decide_decision_duration_seconds_count%') AS inf_equals_count
  FROM (SELECT n, lag(n) OVER (ORDER BY ordinality) AS prev FROM buckets) b;
SELECT count(*) FILTER (WHERE line !~ '^(# (HELP|TYPE) \S+ .+|[a-z_]+(\{[a-z]+="[^"]+"\})? [0-9.e+-]+)$') AS malformed_lines
  FROM regexp_split_to_table(rtrim(decide_metrics(), E'\n'), E'\n') AS line;

-- Reset zeroes the counters.
SELECT decide_reset_stats();
SELECT decisions, l1_hits, l2_hits FROM decide_stats;

-- A slot holds 256 bytes of key: 12 of lengths, the uids, the context's
-- jsonb (8 bytes for {}).  Uids of 1 + 1 + 234 bytes fit, one more does
-- not: evaluated every time and counted as uncached.
SELECT n, (SELECT source FROM decide('a', 'b', repeat('x', n))) AS first,
          (SELECT source FROM decide('a', 'b', repeat('x', n))) AS second
  FROM (VALUES (234), (235)) v(n);
SELECT uncached FROM decide_stats;
DROP TABLE requests;
TRUNCATE decide.policies, decide.entities;
