-- The decision log: what is logged under each setting, what a row holds,
-- keyset pagination with filters while decisions keep arriving, cursor
-- errors, and who may read it.  (scripts/regress.conf points the worker
-- at this database.)
SET client_min_messages = warning;
TRUNCATE decide.policies, decide.entities;
SELECT decide_flush();
TRUNCATE decide.decision_chunks, decide.decision_keys, decide.log_chain;
SELECT decide_reset_stats();

INSERT INTO decide.entities (uid, parents) VALUES ('user:alice', '{role:editor}');
INSERT INTO decide.policies (name, effect, priority, actor, action, resource, risk_level, condition) VALUES
  ('editors-write', 'allow', 0, 'role:editor', 'write', 'doc:*', 'medium', NULL),
  ('no-secret', 'deny', 1, '*', '*', 'doc:secret*', 'high', NULL),
  ('broken-deny', 'deny', 2, '*', 'purge', '*', 'critical', 'strict $.context.missing == 1');

-- One of each kind of outcome, then a flush.
SELECT allowed, policy, source FROM decide('user:alice', 'write', 'doc:1');
SELECT allowed, policy, source FROM decide('user:alice', 'write', 'doc:1');
SELECT allowed, policy, source FROM decide('user:alice', 'write', 'doc:secret-1', '{"ip":"10.0.0.1"}');
SELECT allowed, policy, source FROM decide('user:bob', 'write', 'doc:1');
SELECT allowed, policy, source FROM decide('user:alice', 'purge', 'doc:1');
SELECT decide_flush();
SELECT actor, action, resource, allowed, effect, policy, risk_level, priority, condition_unknown,
       reason, source, epoch = decide_epoch() AS current_epoch, context, decided_at <= now() AS past
  FROM decide.decisions ORDER BY id;
-- The reason is not stored: the log derives it when read, the words
-- decide() gave.  The chunks hold the five decisions, numbered from
-- first_id (how flushes cut them into chunks depends on timing).
SELECT reason FROM decide_recent_decisions ORDER BY id;
SELECT reason FROM decide_decisions_page() ORDER BY id;
SELECT sum(rows) AS decisions, min(first_id) = min(d.id) AS first_id_is_the_smallest
  FROM decide.decision_chunks, (SELECT min(id) AS id FROM decide.decisions) d;

-- decide.log = deny: allows are not logged.  none: nothing.  A sample rate
-- of 0 logs no allow under 'all'.  log_context stores the context.
SET decide.log = deny;
SELECT count(*) FROM decide_many(ARRAY['user:alice', 'user:bob'], ARRAY['write', 'write'], ARRAY['doc:1', 'doc:1']);
SET decide.log = none;
SELECT count(*) FROM decide_many(ARRAY['user:alice', 'user:bob'], ARRAY['write', 'write'], ARRAY['doc:1', 'doc:1']);
SET decide.log = 'all';  -- quoted: ALL is a keyword
SET decide.log_allow_sample_rate = 0;
SELECT count(*) FROM decide_many(ARRAY['user:alice', 'user:bob'], ARRAY['write', 'write'], ARRAY['doc:1', 'doc:2']);
RESET decide.log_allow_sample_rate;
SET decide.log_context = on;
SELECT allowed FROM decide('user:carol', 'read', 'doc:9', '{"ip":"10.9.9.9","mfa":true}');
RESET decide.log_context;
SELECT decide_flush();
SELECT actor, resource, allowed, context FROM decide.decisions ORDER BY id OFFSET 5;
SELECT log_enqueued, log_flushed, log_dropped, log_pending_bytes, worker_pid IS NOT NULL AS worker_running,
       worker_on_standby, last_flush IS NOT NULL AS flushed_once
  FROM decide_stats;

-- A larger log: 3,000 decisions over 30 actors.
SELECT count(*) FROM generate_series(1, 3000) g,
       LATERAL decide('user:' || (g % 30), CASE WHEN g % 3 = 0 THEN 'write' ELSE 'read' END,
                      CASE WHEN g % 10 = 0 THEN 'doc:secret-' || g ELSE 'doc:' || g END) d;
SELECT decide_flush();
SELECT count(*) AS logged FROM decide.decisions;

-- Page through the whole log, 37 rows at a time, while new decisions keep
-- arriving between pages: the pages hold exactly the rows that existed
-- when paging started, each once, in order.
CREATE TEMP TABLE snapshot AS SELECT id FROM decide.decisions;
CREATE TEMP TABLE paged (n serial, id bigint, decided_at timestamptz);
DO $$
DECLARE
    position text := NULL;
    got int;
BEGIN
    LOOP
        INSERT INTO paged (id, decided_at)
        SELECT p.id, p.decided_at FROM decide_decisions_page(position, 37) p;
        GET DIAGNOSTICS got = ROW_COUNT;
        EXIT WHEN got < 37;
        SELECT p.row_cursor INTO position
          FROM decide_decisions_page(position, 37) p ORDER BY p.decided_at, p.id LIMIT 1;
        -- new decisions arrive and are flushed before the next page
        PERFORM decide('user:late', 'read', 'doc:' || g) FROM generate_series(1, 5) g;
        PERFORM decide_flush();
    END LOOP;
END
$$;
SELECT (SELECT count(*) FROM paged) AS paged_rows,
       (SELECT count(DISTINCT id) FROM paged) AS distinct_rows,
       (SELECT count(*) FROM snapshot) AS rows_at_start,
       (SELECT count(*) FROM snapshot s WHERE NOT EXISTS (SELECT FROM paged p WHERE p.id = s.id)) AS gaps,
       (SELECT count(*) FROM paged p WHERE NOT EXISTS (SELECT FROM snapshot s WHERE s.id = p.id)) AS intruders,
       (SELECT bool_and(ordered) FROM (SELECT (decided_at, id) <= lag((decided_at, id)) OVER (ORDER BY n) AS ordered
                                         FROM paged) o WHERE ordered IS NOT NULL) AS newest_first,
       (SELECT count(*) FROM decide.decisions WHERE actor = 'user:late') AS arrived_meanwhile;

-- Filters, each with pagination: an actor's decisions, denials, a risk
-- level, a policy, a time window.
CREATE FUNCTION pg_temp.page_all(by_actor text, by_allowed boolean, by_risk decide.risk_level,
                                 by_policy text, since timestamptz, until timestamptz)
RETURNS TABLE (rows bigint, distinct_ids bigint, matches_query boolean) LANGUAGE plpgsql AS $$
DECLARE
    position text := NULL;
    got int;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS filtered (id bigint);
    TRUNCATE filtered;
    LOOP
        INSERT INTO filtered
        SELECT p.id FROM decide_decisions_page(position, 10, by_actor, by_allowed, by_risk,
                                               by_policy, since, until) p;
        GET DIAGNOSTICS got = ROW_COUNT;
        EXIT WHEN got < 10;
        SELECT p.row_cursor INTO position
          FROM decide_decisions_page(position, 10, by_actor, by_allowed, by_risk, by_policy, since, until) p
         ORDER BY p.decided_at, p.id LIMIT 1;
    END LOOP;
    RETURN QUERY
    SELECT count(*), count(DISTINCT f.id),
           (SELECT array_agg(f2.id ORDER BY f2.id) FROM filtered f2) IS NOT DISTINCT FROM
           (SELECT array_agg(d.id ORDER BY d.id) FROM decide.decisions d
             WHERE (by_actor IS NULL OR d.actor = by_actor)
               AND (by_allowed IS NULL OR d.allowed = by_allowed)
               AND (by_risk IS NULL OR d.risk_level = by_risk)
               AND (by_policy IS NULL OR d.policy = by_policy)
               AND (since IS NULL OR d.decided_at >= since)
               AND (until IS NULL OR d.decided_at < until))
      FROM filtered f;
END
$$;
SELECT 'actor' AS filter, * FROM pg_temp.page_all('user:7', NULL, NULL, NULL, NULL, NULL)
UNION ALL SELECT 'denials', * FROM pg_temp.page_all(NULL, false, NULL, NULL, NULL, NULL)
UNION ALL SELECT 'high risk', * FROM pg_temp.page_all(NULL, NULL, 'high', NULL, NULL, NULL)
UNION ALL SELECT 'policy', * FROM pg_temp.page_all(NULL, NULL, NULL, 'editors-write', NULL, NULL)
UNION ALL SELECT 'actor and denials', * FROM pg_temp.page_all('user:3', false, NULL, NULL, NULL, NULL)
UNION ALL SELECT 'window', * FROM pg_temp.page_all(NULL, NULL, NULL, NULL,
    (SELECT decided_at FROM decide.decisions ORDER BY id OFFSET 100 LIMIT 1),
    (SELECT decided_at FROM decide.decisions ORDER BY id OFFSET 1200 LIMIT 1));

-- Rows logged in an order other than their times: each key's rows of
-- decide.decision_keys overlap in time (written here by hand, 7 times a
-- row in the order of the ids, whose times run backwards and forwards
-- within 400 ms: a row of the keys spans less than a second).
-- Every filter still pages exactly as the plain query; so does every
-- filter over the keys that decide.build_decision_keys() writes again
-- from the rows.
SELECT (now() AT TIME ZONE 'UTC')::date + 11 AS shuffled_day \gset
SELECT decide.create_log_partition(:'shuffled_day') IS NOT NULL AS created;
INSERT INTO decide.decisions (id, decided_at, actor, action, resource, allowed, effect, policy,
                              risk_level, priority, condition_unknown, epoch, source)
SELECT 1000000 + g, :'shuffled_day'::timestamp AT TIME ZONE 'UTC' + (g * 7919 % 400) * interval '1 millisecond'
                    + (g % 3) * interval '1 microsecond',
       'user:shuffled-' || (g % 4), 'read', 'doc:' || g, g % 5 <> 0,
       CASE WHEN g % 5 <> 0 THEN 'allow' ELSE 'deny' END::decide.effect,
       'policy-' || (g % 3), (ARRAY['low', 'medium', 'high', 'critical'])[1 + g % 4]::decide.risk_level,
       g % 7, false, 1, 'miss'
  FROM generate_series(1, 400) g;
-- Two rows at the same microsecond, of two actors: a time finds both.
INSERT INTO decide.decisions (id, decided_at, actor, action, resource, allowed, effect, epoch, source)
SELECT 1000401 + g, :'shuffled_day'::timestamp AT TIME ZONE 'UTC' + interval '12 milliseconds',
       'user:shuffled-' || g, 'read', 'doc:same', false, 'deny', 1, 'miss'
  FROM generate_series(0, 1) g;
-- Each row inserted is a chunk of its own, which ends at the row's time.
INSERT INTO decide.decision_keys (kind, key, first_at, last_at, offsets, chunks)
SELECT kind, key, first, last,
       ARRAY(SELECT ((extract(epoch FROM t - first) * 1000000)::bigint)::integer FROM unnest(times) AS t),
       ARRAY(SELECT DISTINCT ((extract(epoch FROM t - first) * 1000000)::bigint)::integer
               FROM unnest(times) AS t ORDER BY 1)
  FROM (SELECT kind, key, array_agg(decided_at ORDER BY id) AS times,
               min(decided_at) AS first, max(decided_at) AS last
          FROM (SELECT k.kind, k.key, d.decided_at, d.id,
                       (row_number() OVER (PARTITION BY k.kind, k.key ORDER BY d.id) - 1) / 7 AS chunk
                  FROM decide.decisions d,
                       LATERAL (VALUES ('a'::"char", d.actor), ('p', d.policy),
                                       ('r', d.risk_level::text),
                                       ('d', CASE WHEN NOT d.allowed THEN '' END)) AS k(kind, key)
                 WHERE d.id > 1000000 AND k.key IS NOT NULL) AS positions
         GROUP BY kind, key, chunk) AS chunks;
SELECT count(*) FILTER (WHERE overlapping) > 0 AS keys_overlap
  FROM (SELECT first_at < lag(last_at) OVER (PARTITION BY kind, key ORDER BY last_at) AS overlapping
          FROM decide.decision_keys WHERE last_at >= :'shuffled_day'::timestamp AT TIME ZONE 'UTC') o;
CREATE TEMP VIEW shuffled_checks AS
SELECT 'actor' AS filter, * FROM pg_temp.page_all('user:shuffled-1', NULL, NULL, NULL, NULL, NULL)
UNION ALL SELECT 'actor, same microsecond', * FROM pg_temp.page_all('user:shuffled-0', NULL, NULL, NULL, NULL, NULL)
UNION ALL SELECT 'denials', * FROM pg_temp.page_all(NULL, false, NULL, NULL, NULL, NULL)
UNION ALL SELECT 'critical risk', * FROM pg_temp.page_all(NULL, NULL, 'critical', NULL, NULL, NULL)
UNION ALL SELECT 'policy', * FROM pg_temp.page_all(NULL, NULL, NULL, 'policy-2', NULL, NULL)
UNION ALL SELECT 'actor and denials', * FROM pg_temp.page_all('user:shuffled-0', false, NULL, NULL, NULL, NULL)
UNION ALL SELECT 'actor and risk', * FROM pg_temp.page_all('user:shuffled-2', NULL, 'high', NULL, NULL, NULL)
UNION ALL SELECT 'policy in a window', * FROM pg_temp.page_all(NULL, NULL, NULL, 'policy-1',
    :'shuffled_day'::timestamp AT TIME ZONE 'UTC' + interval '100 milliseconds',
    :'shuffled_day'::timestamp AT TIME ZONE 'UTC' + interval '300 milliseconds');
SELECT * FROM shuffled_checks;
SELECT decide.build_decision_keys(:'shuffled_day') > 0 AS rebuilt;
SELECT count(*) FILTER (WHERE overlapping) AS rebuilt_keys_overlap
  FROM (SELECT first_at < lag(last_at) OVER (PARTITION BY kind, key ORDER BY last_at) AS overlapping
          FROM decide.decision_keys WHERE last_at >= :'shuffled_day'::timestamp AT TIME ZONE 'UTC') o;
SELECT * FROM shuffled_checks;
DROP VIEW shuffled_checks;
DO $$
BEGIN
    EXECUTE format('DROP TABLE decide.%I, decide.%I',
                   'decision_chunks_' || to_char((now() AT TIME ZONE 'UTC')::date + 11, 'YYYYMMDD'),
                   'decision_keys_' || to_char((now() AT TIME ZONE 'UTC')::date + 11, 'YYYYMMDD'));
END
$$;

-- A filtered page reads a key's rows of decide.decision_keys newest first
-- through their index; an unfiltered page reads the chunks' primary key
-- backwards.
-- (Partition names carry dates: the plan shape is shown without them.)
CREATE FUNCTION pg_temp.plan_shape(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    seen text[] := '{}';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        line := regexp_replace(btrim(line), '(decision_chunks|decision_keys)_[0-9]+', '\1_N', 'g');
        IF NOT line = ANY (seen) THEN
            seen := seen || line;
            RETURN NEXT line;
        END IF;
    END LOOP;
END
$$;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_sort = off;
SELECT pg_temp.plan_shape($$SELECT * FROM decide.decision_keys WHERE kind = 'a' AND key = 'user:7'
                            ORDER BY last_at DESC$$);
SELECT pg_temp.plan_shape($$SELECT first_at, rows FROM decide.decision_chunks
                            WHERE last_at < now() ORDER BY last_at DESC$$);
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_sort;

-- Bad cursors and page sizes.
\i sql/include/try.sql
-- A page's reads newest first are planned with its times as literals:
-- the pages are the same under any DateStyle and time zone.
SELECT row_cursor AS fifth FROM decide_decisions_page(NULL, 5) ORDER BY decided_at, id LIMIT 1 \gset
SELECT array_agg(id ORDER BY decided_at DESC, id DESC)::text AS iso_denials
  FROM decide_decisions_page(:'fifth', 20, by_allowed => false) \gset
SELECT array_agg(id ORDER BY decided_at DESC, id DESC)::text AS iso_all
  FROM decide_decisions_page(:'fifth', 20) \gset
SET datestyle = 'German';
SET timezone = 'Asia/Kathmandu';
SELECT array_agg(id ORDER BY decided_at DESC, id DESC)::text = :'iso_denials' AS same_denials
  FROM decide_decisions_page(:'fifth', 20, by_allowed => false);
SELECT array_agg(id ORDER BY decided_at DESC, id DESC)::text = :'iso_all' AS same_page
  FROM decide_decisions_page(:'fifth', 20);
RESET datestyle;
RESET timezone;
-- A key row's times within a range, as a page reads them: offsets in
-- microseconds after the row's first time.
SELECT decide.decision_key_times('2026-01-01 00:00:00+00', '{0,1000000,-5,250}',
                                 '2026-01-01 00:00:00+00', '2026-01-01 00:00:00.5+00') AS in_range;
SELECT pg_temp.try($$SELECT decide.decision_key_times(now(), '{{1},{2}}', now(), now())$$);
SELECT pg_temp.try($$SELECT decide.decision_key_times(now(), '{1,NULL}', now(), now())$$);
SELECT pg_temp.try($$SELECT * FROM decide_decisions_page('not a cursor')$$);
SELECT pg_temp.try($$SELECT * FROM decide_decisions_page(encode('12:x', 'base64'))$$);
SELECT pg_temp.try($$SELECT * FROM decide_decisions_page(NULL, 0)$$);
SELECT pg_temp.try($$SELECT * FROM decide_decisions_page(NULL, 10001)$$);
SELECT count(*) FROM decide_recent_decisions;

-- Each day's partition is made with its own indexes (0.6.0: the parent has
-- none, so that pg_restore does not build them twice); asking again for an
-- existing day changes nothing.  The day is ten days ahead: within
-- decide.log_retention, and not one the worker makes.
SELECT (now() AT TIME ZONE 'UTC')::date + 10 AS log_day,
       to_char((now() AT TIME ZONE 'UTC')::date + 10, 'YYYYMMDD') AS log_day_label \gset
SELECT decide.create_log_partition(:'log_day')::text = 'decide.decision_chunks_' || :'log_day_label' AS created;
SELECT decide.create_log_partition(:'log_day')::text = 'decide.decision_chunks_' || :'log_day_label' AS unchanged;
SELECT replace(pg_get_indexdef(indexrelid), :'log_day_label', 'YYYYMMDD') AS index FROM pg_index
 WHERE indrelid = ('decide.decision_chunks_' || :'log_day_label')::regclass ORDER BY 1;
-- Its bounds are the UTC day: the first and the last microsecond go in.
-- A row inserted into decide.decisions is a chunk of its own.
BEGIN;
INSERT INTO decide.decisions (id, decided_at, actor, action, resource, allowed, effect, reason, epoch, source)
VALUES (3000001, :'log_day'::timestamp AT TIME ZONE 'UTC', 'user:first', 'read', 'doc:1', false, 'deny', 'x', 1, 'miss'),
       (3000002, (:'log_day'::date + 1)::timestamp AT TIME ZONE 'UTC' - interval '1 microsecond',
        'user:last', 'read', 'doc:1', false, 'deny', 'x', 1, 'miss');
SELECT first_id, rows, tableoid::regclass::text = 'decide.decision_chunks_' || :'log_day_label' AS in_its_partition
  FROM decide.decision_chunks WHERE first_id > 3000000 ORDER BY first_id;
ROLLBACK;
SELECT count(*) AS parent_indexes FROM pg_index WHERE indrelid = 'decide.decision_chunks'::regclass;
SELECT count(*) AS partitions_without_their_index
  FROM pg_inherits h
 WHERE h.inhparent IN ('decide.decision_chunks'::regclass, 'decide.decision_keys'::regclass)
   AND (SELECT count(*) FROM pg_index x WHERE x.indrelid = h.inhrelid) <> 1;
SELECT replace(pg_get_indexdef(indexrelid), :'log_day_label', 'YYYYMMDD') AS keys_index FROM pg_index
 WHERE indrelid = ('decide.decision_keys_' || :'log_day_label')::regclass;
SELECT pg_temp.try($$SELECT decide.create_log_partition(NULL)$$);
SELECT pg_temp.try($$SELECT decide.create_log_partition('infinity')$$);
SELECT pg_temp.try($$SELECT decide.create_log_partition('10000-01-01')$$);
SELECT pg_temp.try($$SELECT decide.create_log_partition('0044-03-15 BC')$$);

-- Rows brought from elsewhere: decide.load_decisions() packs a table's rows
-- into chunks of at most 64 within a second, with their keys.  A reason
-- other than the derived one is kept (here a row logged before 0.7.0,
-- without a priority); every other column reads back as loaded.
BEGIN;
CREATE TEMP TABLE imported (LIKE decide.decisions);
INSERT INTO imported (id, decided_at, actor, action, resource, allowed, effect, policy, risk_level,
                      reason, epoch, source, context, priority, condition_unknown)
SELECT 2000000 + g, :'log_day'::timestamp AT TIME ZONE 'UTC' + g * interval '3 milliseconds',
       'user:imported-' || (g % 3), 'read', 'doc:' || g, g % 2 = 0,
       CASE WHEN g % 2 = 0 THEN 'allow' ELSE 'deny' END::decide.effect, 'p' || (g % 2), 'low',
       CASE WHEN g = 1 THEN 'kept as written' END, 7, 'l2',
       CASE WHEN g % 5 = 0 THEN jsonb_build_object('n', g, 'ip', '10.0.0.' || (g % 9)) END,
       CASE WHEN g > 1 THEN g % 4 END, CASE WHEN g > 1 THEN false END
  FROM generate_series(1, 600) g;
SELECT decide.load_decisions('imported') AS loaded;
SELECT count(*) AS chunks, sum(rows) AS decisions, max(rows) AS largest,
       bool_and(last_at - first_at < interval '1 second') AS each_within_a_second
  FROM decide.decision_chunks WHERE first_id > 2000000;
-- Stored as chunks, decisions take a few bytes each, lz4 included (loaded
-- here, so that how the worker's flushes cut chunks does not matter).
SELECT sum(pg_column_size(body)) / sum(rows) < 16 AS under_16_bytes_a_decision
  FROM decide.decision_chunks WHERE first_id > 2000000;
SELECT count(*) AS differing FROM (
    SELECT id, decided_at, actor, action, resource, allowed, effect, policy, risk_level, epoch,
           source, context, priority, condition_unknown FROM imported
    EXCEPT
    SELECT id, decided_at, actor, action, resource, allowed, effect, policy, risk_level, epoch,
           source, context, priority, condition_unknown FROM decide.decisions WHERE id > 2000000) d;
SELECT id, reason FROM decide.decisions WHERE id IN (2000001, 2000002) ORDER BY id;
SELECT count(*) AS imported_by_actor FROM decide_decisions_page(NULL, 1000, by_actor => 'user:imported-1');
ROLLBACK;
-- Rows the log could not have written are refused, naming the row (ids vary:
-- N); a damaged chunk is an error.
SELECT regexp_replace(pg_temp.try($$INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect, epoch, source)
                     VALUES (now(), '', 'read', 'doc:1', false, 'deny', 1, 'miss')$$), 'Decision [0-9]+', 'Decision N') AS refused;
SELECT regexp_replace(pg_temp.try($$INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect, epoch, source)
                     VALUES (now(), 'user:x', 'read', 'doc:1', true, 'deny', 1, 'miss')$$), 'Decision [0-9]+', 'Decision N') AS refused;
SELECT regexp_replace(pg_temp.try($$INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect, policy, epoch, source)
                     VALUES (now(), 'user:x', 'read', 'doc:1', false, 'deny', 'p', 1, 'miss')$$), 'Decision [0-9]+', 'Decision N') AS refused;
SELECT regexp_replace(pg_temp.try($$INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect, epoch, source, context)
                     VALUES (now(), 'user:x', 'read', 'doc:1', false, 'deny', 1, 'miss', '[1]')$$), 'Decision [0-9]+', 'Decision N') AS refused;
SELECT pg_temp.try($$SELECT decide.decision_chunk(array_agg(t))
                       FROM (SELECT id, decided_at, 42 AS actor, action, resource, allowed, effect,
                                    policy, risk_level, reason, epoch, source, context, priority,
                                    condition_unknown FROM decide.decisions LIMIT 1) t$$);
SELECT pg_temp.try($$SELECT * FROM decide.decision_chunk_rows('\x6463683100')$$);
SELECT regexp_replace(pg_temp.try($$SELECT * FROM decide.decision_chunk_rows(
                         (SELECT substr(body, 1, 40) FROM decide.decision_chunks WHERE rows > 10 LIMIT 1))$$),
                      'of its [0-9]+', 'of its N') AS cut_short;
-- A decision whose actor was damaged in place (a glob character) is
-- refused where it would become a row; a read filtered past it does not
-- check it, and shows the others.
SELECT overlay(body PLACING '*'::bytea FROM position('user:damaged'::bytea IN body) + 5) AS damaged
  FROM (SELECT decide.decision_chunk(array_agg(ROW(id, now(), actor, 'read', 'doc:1', false, 'deny', NULL,
                                                   NULL, NULL, 1, 'miss', NULL, NULL, NULL)::decide.logged_decision
                                               ORDER BY id)) AS body
          FROM (VALUES (1, 'user:damaged'), (2, 'user:kept')) AS r(id, actor)) c \gset
SELECT pg_temp.try(format('SELECT count(*) FROM decide.decision_chunk_rows(%L)', :'damaged'));
SELECT id, actor FROM decide.decision_chunk_rows(:'damaged', NULL, NULL, NULL, 'user:kept',
                                                 NULL, NULL, NULL, NULL);
DO $$
BEGIN
    EXECUTE format('DROP TABLE decide.%I, decide.%I',
                   'decision_chunks_' || to_char((now() AT TIME ZONE 'UTC')::date + 10, 'YYYYMMDD'),
                   'decision_keys_' || to_char((now() AT TIME ZONE 'UTC')::date + 10, 'YYYYMMDD'));
END
$$;

-- A context of a few bytes as jsonb but over 64 kB as text is logged as
-- none, as a context over 8 kB is: every chunk stays readable.  Loaded by
-- hand, such a context is dropped with a warning.
SET decide.log_context = on;
SELECT allowed FROM decide('user:long', 'read', 'doc:1', ('{"n": 1' || repeat('0', 70000) || '}')::jsonb);
RESET decide.log_context;
SELECT decide_flush();
SELECT count(*) AS logged, bool_and(context IS NULL) AS without_context
  FROM decide.decisions WHERE actor = 'user:long';
BEGIN;
INSERT INTO decide.decisions (id, decided_at, actor, action, resource, allowed, effect, epoch, source, context)
VALUES (3000003, now(), 'user:long', 'read', 'doc:1', false, 'deny', 1, 'miss',
        ('{"n": 1' || repeat('0', 70000) || '}')::jsonb);
SELECT context IS NULL AS stored_without_context FROM decide.decisions WHERE id = 3000003;
ROLLBACK;

-- Who may read the log: admins and auditors; not decide_user.
CREATE ROLE regress_log_app;
CREATE ROLE regress_log_auditor;
GRANT decide_user TO regress_log_app;
GRANT decide_auditor TO regress_log_auditor;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;
SET ROLE regress_log_app;
SELECT pg_temp.try($$SELECT count(*) FROM decide.decisions$$);
SELECT pg_temp.try($$SELECT count(*) FROM decide.decision_keys$$);
SELECT pg_temp.try($$SELECT count(*) FROM decide.decision_chunks$$);
SELECT pg_temp.try($$SELECT decide.build_decision_keys('2001-02-04')$$);
SELECT pg_temp.try($$SELECT decide.load_decisions('pg_class')$$);
SELECT pg_temp.try($$SELECT * FROM decide_decisions_page()$$);
SELECT pg_temp.try($$SELECT * FROM decide_recent_decisions$$);
SELECT pg_temp.try($$SELECT decide.decision_key_times(now(), '{1}', now(), now())$$);
SELECT pg_temp.try($$SELECT decide_flush()$$);
SELECT pg_temp.try($$SELECT decide.create_log_partition('2001-02-04')$$);
RESET ROLE;
SET ROLE regress_log_auditor;
SELECT count(*) > 0 AS auditor_reads FROM decide_decisions_page();
SELECT count(*) > 0 AS auditor_reads_denials FROM decide_decisions_page(by_allowed => false);
SELECT count(*) > 0 AS auditor_reads_table FROM decide.decisions;
SELECT count(*) > 0 AS auditor_reads_keys FROM decide.decision_keys;
SELECT pg_temp.try($$SELECT * FROM decide.policies$$);
SELECT pg_temp.try($$DELETE FROM decide.decision_chunks$$);
SELECT pg_temp.try($$INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, epoch, source)
                     VALUES (now(), 'user:x', 'read', 'doc:1', false, 1, 'miss')$$);
SELECT pg_temp.try($$SELECT decide('user:alice', 'read', 'doc:1')$$);
SELECT pg_temp.try($$SELECT decide.create_log_partition('2001-02-04')$$);
RESET ROLE;
DROP ROLE regress_log_app, regress_log_auditor;

DROP TABLE snapshot, paged;
TRUNCATE decide.policies, decide.entities;
