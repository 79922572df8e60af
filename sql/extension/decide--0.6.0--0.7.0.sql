-- decide 0.6.0 -> 0.7.0: decide_stats gains warm_timeouts, the requests
-- the background worker stopped warming at their time limit (and will not
-- warm again), and the shared_set_* columns: the compiled policy set that
-- the backends of the server now share in shared memory.  Authorized
-- listing: decide_resources() and decide_actors(), over decide.entity_links,
-- the hierarchy read downward, which replaces the GIN index on parents.
-- The decision log is stored as chunks of decisions, read as rows through
-- the view decide.decisions, and decide.decision_keys takes the place of
-- the partitions' indexes on actor, risk level and policy; existing rows
-- are loaded into chunks with their reasons and get their keys here.  decide.changes records every
-- change of the policies and entities from here on.

\echo Use "ALTER EXTENSION decide UPDATE TO '0.7.0'" to load this file. \quit

DROP VIEW decide_stats;
DROP FUNCTION decide_stats();
CREATE FUNCTION decide_stats(
    OUT shared_memory boolean,
    OUT shared_cache boolean,
    OUT decisions bigint,
    OUT allowed bigint,
    OUT denied bigint,
    OUT hit_ratio double precision,
    OUT l1_hits bigint,
    OUT l1_misses bigint,
    OUT l1_evictions bigint,
    OUT l1_entries bigint,
    OUT l1_bytes bigint,
    OUT l1_capacity bigint,
    OUT l2_hits bigint,
    OUT l2_misses bigint,
    OUT l2_hit_ratio double precision,
    OUT l2_evictions bigint,
    OUT l2_entries bigint,
    OUT l2_bytes bigint,
    OUT l2_capacity bigint,
    OUT uncached bigint,
    OUT condition_failures bigint,
    OUT epoch bigint,
    OUT policy_reloads bigint,
    OUT last_reload_ms double precision,
    OUT last_reload_policies bigint,
    OUT latency_p50_us double precision,
    OUT latency_p95_us double precision,
    OUT latency_p99_us double precision,
    OUT stats_reset timestamptz,
    OUT log_enqueued bigint,         -- appended to the ring
    OUT log_flushed bigint,          -- written to the decision log
    OUT log_dropped bigint,          -- ring full: lost, and warned about
    OUT log_not_logged bigint,       -- on a standby, or not in decide.database
    OUT log_flush_errors bigint,
    OUT log_pending_bytes bigint,
    OUT worker_pid integer,          -- NULL: the worker is not running
    OUT worker_on_standby boolean,
    OUT last_flush timestamptz,
    OUT warmed bigint,               -- decisions computed ahead after policy changes
    OUT last_warm_ms double precision,
    OUT redis_configured boolean,    -- decide.redis_url is set
    OUT l3_hits bigint,
    OUT l3_misses bigint,
    OUT redis_errors bigint,         -- connect failures, timeouts, error replies
    OUT redis_garbage bigint,        -- values that failed their checks (ignored)
    OUT redis_skipped bigint,        -- lookups skipped while the breaker was open
    OUT redis_breaker_opens bigint,
    OUT log_forwarded bigint,        -- standby: log records sent to Redis
    OUT log_received bigint,         -- primary: records from standbys written
    OUT entity_fetches bigint,       -- entity rows looked up in decide.entities
    OUT carried_forward bigint,      -- misses answered by an older epoch's entry no change touches
    OUT warm_timeouts bigint,        -- requests the worker stopped warming at their time limit
    OUT shared_set_epoch bigint,     -- the newest compiled policy set of this database in shared memory; NULL: none
    OUT shared_set_bytes bigint,     -- its size
    OUT shared_set_built_at timestamptz,
    OUT shared_set_build_ms double precision,
    OUT shared_set_builds bigint,    -- policy sets compiled and published in shared memory
    OUT shared_set_fallbacks bigint, -- private compiles: a set did not fit, or no slot was free
    OUT shared_sets_bytes bigint,    -- shared memory held by every shared set of the server
    OUT listings bigint,             -- decide_resources() and decide_actors() calls
    OUT listing_candidates bigint,   -- entities those calls decided
    OUT listing_cache_hits bigint,   -- calls answered from the listing cache
    OUT entity_image_builds bigint)  -- images of decide.entities built in shared memory
    AS 'MODULE_PATHNAME', 'decide_stats'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE VIEW decide_stats AS SELECT * FROM decide_stats();

REVOKE ALL ON FUNCTION decide_stats() FROM PUBLIC;
REVOKE ALL ON decide_stats FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_stats() TO decide_admin, pg_monitor;
GRANT SELECT ON decide_stats TO decide_admin, pg_monitor;

-- The hierarchy read downward: one row per link of decide.entities (a
-- parent, and an entity that names it), written by the entity triggers in
-- the statement that changes the entities.  Listing (decide_resources,
-- decide_actors) walks it from a policy's pattern to the entities under it,
-- the hierarchy check to the descendants of a changed entity.  Derived from
-- decide.entities: not dumped, rebuilt when the entities are restored.
CREATE TABLE decide.entity_links (
    parent text COLLATE "C" NOT NULL,
    child  text COLLATE "C" NOT NULL,
    PRIMARY KEY (parent, child)
);
COMMENT ON TABLE decide.entity_links IS
    'parent -> child links of decide.entities, kept by its triggers (read-only)';
INSERT INTO decide.entity_links (parent, child)
SELECT DISTINCT p, e.uid FROM decide.entities e CROSS JOIN LATERAL unnest(e.parents) AS p;
DROP INDEX decide.entities_parents_idx;

CREATE OR REPLACE FUNCTION decide.check_hierarchy(changed text[]) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_depth constant integer := 32;
    -- DECIDE_MAX_ANCESTORS - 1 (src/entity_store.h): decisions refuse more.
    max_ancestors constant integer := 1023;
    bad record;
BEGIN
    -- "up" walks ancestors (stopping where it meets the start again: a
    -- cycle); "down" walks descendants, whose chains now run through the
    -- changed entity. The longest chain through it is the sum of both.
    -- UNION (not UNION ALL) keeps diamonds linear; depth bounds both walks.
    WITH RECURSIVE up(start, uid, depth) AS (
        SELECT c, p, 1
          FROM unnest(changed) AS c
          JOIN decide.entities e ON e.uid = c
          CROSS JOIN LATERAL unnest(e.parents) AS p
        UNION
        SELECT up.start, p, up.depth + 1
          FROM up
          JOIN decide.entities e ON e.uid = up.uid
          CROSS JOIN LATERAL unnest(e.parents) AS p
         WHERE up.uid <> up.start AND up.depth <= max_depth
    ), down(start, uid, depth) AS (
        SELECT c, c COLLATE "C", 0 FROM unnest(changed) AS c
        UNION
        SELECT down.start, l.child, down.depth + 1
          FROM down
          JOIN decide.entity_links l ON l.parent = down.uid
         WHERE down.depth <= max_depth
    ), up_chains AS (
        SELECT start, max(depth) AS depth, bool_or(uid = start) AS cycle,
               count(DISTINCT uid) AS ancestors
          FROM up GROUP BY start
    ), down_chains AS (
        SELECT start, max(depth) AS depth FROM down GROUP BY start
    )
    SELECT d.start, coalesce(u.cycle, false) AS cycle,
           coalesce(u.depth, 0) + d.depth AS depth, coalesce(u.ancestors, 0) AS ancestors
      INTO bad
      FROM down_chains d LEFT JOIN up_chains u USING (start)
     WHERE coalesce(u.cycle, false) OR coalesce(u.depth, 0) + d.depth > max_depth
        OR u.ancestors > max_ancestors
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF bad.cycle THEN
        RAISE EXCEPTION 'entity hierarchy cycle: "%" would be its own ancestor', bad.start
            USING ERRCODE = 'check_violation',
                  HINT = 'Remove the parent that leads back to the entity.';
    END IF;
    IF bad.ancestors > max_ancestors THEN
        RAISE EXCEPTION 'entity "%" would have % ancestors', bad.start, bad.ancestors
            USING ERRCODE = 'check_violation',
                  DETAIL = format('An entity may have at most %s ancestors.', max_ancestors),
                  HINT = 'Flatten the hierarchy: fewer parents, or parents that share ancestors.';
    END IF;
    RAISE EXCEPTION 'entity hierarchy too deep through "%"', bad.start
        USING ERRCODE = 'check_violation',
              DETAIL = format('A chain of parents may have at most %s levels.', max_depth);
END
$$;

CREATE OR REPLACE FUNCTION decide.on_entities_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM decide.advance_entities_epoch();
    INSERT INTO decide.entity_links (parent, child)
    SELECT DISTINCT p, n.uid FROM new_rows n CROSS JOIN LATERAL unnest(n.parents) AS p;
    PERFORM decide.check_hierarchy(ARRAY(SELECT uid FROM new_rows WHERE parents <> '{}'));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION decide.on_entities_updated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM decide.advance_entities_epoch();
    -- Only rows whose parents changed (or that were renamed) change links
    -- or can break the hierarchy.
    DELETE FROM decide.entity_links l
     USING old_rows o CROSS JOIN LATERAL unnest(o.parents) AS p
     WHERE l.parent = p AND l.child = o.uid
       AND NOT EXISTS (SELECT FROM new_rows n WHERE n.uid = o.uid AND n.parents = o.parents);
    INSERT INTO decide.entity_links (parent, child)
    SELECT DISTINCT p, n.uid FROM new_rows n CROSS JOIN LATERAL unnest(n.parents) AS p
     WHERE NOT EXISTS (SELECT FROM old_rows o WHERE o.uid = n.uid AND o.parents = n.parents);
    PERFORM decide.check_hierarchy(ARRAY(
        SELECT n.uid FROM new_rows n
         WHERE n.parents <> '{}'
           AND NOT EXISTS (SELECT FROM old_rows o
                            WHERE o.uid = n.uid AND o.parents = n.parents)));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION decide.on_entities_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM decide.advance_entities_epoch();
    DELETE FROM decide.entity_links l
     USING old_rows o CROSS JOIN LATERAL unnest(o.parents) AS p
     WHERE l.parent = p AND l.child = o.uid;
    RETURN NULL;
END
$$;

DROP TRIGGER entities_deleted ON decide.entities;
CREATE TRIGGER entities_deleted
    AFTER DELETE ON decide.entities REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION decide.on_entities_deleted();

-- Authorized listing: the entities a request with one part left free
-- allows, exactly as decide_allowed() would decide each, in uid order, with
-- keyset pages.  Policies reach candidates through their patterns and
-- decide.entity_links; each candidate is then decided in full.
CREATE FUNCTION decide.on_entities_truncated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM decide.advance_entities_epoch();
    TRUNCATE decide.entity_links;
    RETURN NULL;
END
$$;
CREATE TRIGGER entities_truncated
    AFTER TRUNCATE ON decide.entities
    FOR EACH STATEMENT EXECUTE FUNCTION decide.on_entities_truncated();

CREATE FUNCTION decide_resources(actor text, action text, context jsonb DEFAULT '{}',
                                 prefix text DEFAULT '', after text DEFAULT NULL,
                                 page_size integer DEFAULT NULL)
    RETURNS TABLE (resource text, policy text)
    AS 'MODULE_PATHNAME', 'decide_resources'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1000;
COMMENT ON FUNCTION decide_resources(text, text, jsonb, text, text, integer) IS
    'the entities (starting with prefix, after a uid) on which the actor may do the action, with the deciding policy';
CREATE FUNCTION decide_actors(action text, resource text, context jsonb DEFAULT '{}',
                              prefix text DEFAULT '', after text DEFAULT NULL,
                              page_size integer DEFAULT NULL)
    RETURNS TABLE (actor text, policy text)
    AS 'MODULE_PATHNAME', 'decide_actors'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1000;
COMMENT ON FUNCTION decide_actors(text, text, jsonb, text, text, integer) IS
    'the entities (starting with prefix, after a uid) that may do the action on the resource, with the deciding policy';
REVOKE ALL ON FUNCTION decide_resources(text, text, jsonb, text, text, integer),
                       decide_actors(text, text, jsonb, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_resources(text, text, jsonb, text, text, integer),
                          decide_actors(text, text, jsonb, text, text, integer)
    TO decide_user, decide_admin;
GRANT SELECT ON decide.entity_links TO decide_admin;
-- One row of a table at a time, for row-level security and WHERE: what
-- decide_allowed(actor, action, resource_prefix || resource_key, context)
-- answers, by a listing's plan kept for the rest of the query.  Not logged.
CREATE FUNCTION decide_row_allowed(actor text, action text, resource_prefix text,
                                   resource_key bigint, context jsonb DEFAULT '{}')
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'decide_row_allowed'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION decide_row_allowed(actor text, action text, resource_prefix text,
                                   resource_key text, context jsonb DEFAULT '{}')
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'decide_row_allowed_text'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION decide_row_allowed(text, text, text, bigint, jsonb) IS
    'decide_allowed(actor, action, resource_prefix || resource_key, context) for a row, planned once per query, not logged';
COMMENT ON FUNCTION decide_row_allowed(text, text, text, text, jsonb) IS
    'decide_allowed(actor, action, resource_prefix || resource_key, context) for a row, planned once per query, not logged';
REVOKE ALL ON FUNCTION decide_row_allowed(text, text, text, bigint, jsonb),
                       decide_row_allowed(text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_row_allowed(text, text, text, bigint, jsonb),
                          decide_row_allowed(text, text, text, text, jsonb)
    TO decide_user, decide_admin;

-- The decision log as chunks of decisions, each a row of
-- decide.decision_chunks holding up to 64 decisions (see decide--0.7.0.sql),
-- read as rows through the view decide.decisions; decide.decision_keys
-- takes the place of the partitions' indexes on actor, risk level and
-- policy.  The rows of 0.6.0 are loaded into chunks, each with its reason,
-- and get their keys; then their table goes.  Renaming it keeps the worker
-- out until the commit: no batch is written between the two.
CREATE TYPE decide.decision_source AS ENUM ('miss', 'l1', 'l2', 'redis');
ALTER SEQUENCE decide.decisions_id_seq CACHE 1000;
DROP VIEW decide_recent_decisions;
ALTER SEQUENCE decide.decisions_id_seq OWNED BY NONE;
ALTER TABLE decide.decisions RENAME TO decisions_of_0_6;
ALTER TABLE decide.decisions_of_0_6
    ADD COLUMN priority integer,
    ADD COLUMN condition_unknown boolean;

CREATE TABLE decide.decision_chunks (
    first_at    timestamptz NOT NULL,       -- the oldest decision's time
    last_at     timestamptz NOT NULL,       -- the newest decision's time
    first_id    bigint NOT NULL,            -- the smallest decision id
    rows        integer NOT NULL CHECK (rows > 0),
    body        bytea NOT NULL,             -- the decisions (src/core/log_chunk.h)
    -- Readers look for a time's decisions among the chunks that end less
    -- than a second after it; a chunk lies in one day, its partition's.
    CHECK (first_at <= last_at AND last_at - first_at < interval '1 second'
           AND date_trunc('day', first_at AT TIME ZONE 'UTC')
               = date_trunc('day', last_at AT TIME ZONE 'UTC'))
) PARTITION BY RANGE (last_at);
ALTER TABLE decide.decision_chunks ALTER COLUMN body SET STATISTICS 0;
-- A body stays in its row, compressed, unless even compressed it would not
-- fit a page: reading a chunk then costs no TOAST lookup, and writing one
-- no TOAST row and index entry.  Partitions inherit it.
ALTER TABLE decide.decision_chunks ALTER COLUMN body SET STORAGE MAIN;
-- lz4 compresses and decompresses chunks several times faster than pglz;
-- a server built without it keeps its default.  Partitions inherit it.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_settings
                WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE decide.decision_chunks ALTER COLUMN body SET COMPRESSION lz4;
    END IF;
END
$$;
ALTER SEQUENCE decide.decisions_id_seq OWNED BY decide.decision_chunks.first_id;
COMMENT ON TABLE decide.decision_chunks IS
    'decision log, written by the decide background worker in chunks of decisions; one partition '
    'per UTC day, created with its index by decide.create_log_partition(); read it as decide.decisions';

-- A logged decision, as decide.decisions shows it.  Actor, action,
-- resource and policy compare bytes.
CREATE TYPE decide.logged_decision AS (
    id          bigint,
    decided_at  timestamptz,
    actor       text COLLATE "C",
    action      text COLLATE "C",
    resource    text COLLATE "C",
    allowed     boolean,
    effect      decide.effect,
    policy      text COLLATE "C",           -- NULL: no policy matched
    risk_level  decide.risk_level,
    reason      text,                       -- as decide() gave it
    epoch       bigint,
    source      decide.decision_source,     -- the cache layer that answered
    context     jsonb,                      -- only with decide.log_context = on
    priority    integer,                    -- of the policy (NULL: none, or logged before 0.7.0)
    condition_unknown boolean               -- the policy's condition could not be evaluated
);

-- The decisions of one chunk.  A damaged chunk is an error (data_corrupted).
CREATE FUNCTION decide.decision_chunk_rows(body bytea) RETURNS SETOF decide.logged_decision
    AS 'MODULE_PATHNAME', 'decide_decision_chunk_rows'
    LANGUAGE C STRICT STABLE PARALLEL SAFE ROWS 256;
-- Those of its decisions that pass the filters given (NULL: none): at or
-- after from_time, before (before_time, before_id) in the order
-- (decided_at, id) (a NULL before_id: before before_time), and of those
-- only the newest `newest`; the others never become rows.
CREATE FUNCTION decide.decision_chunk_rows(body bytea, from_time timestamptz,
                                           before_time timestamptz, before_id bigint,
                                           by_actor text, by_allowed boolean,
                                           by_risk_level decide.risk_level, by_policy text,
                                           newest integer)
    RETURNS SETOF decide.logged_decision
    AS 'MODULE_PATHNAME', 'decide_decision_chunk_rows'
    LANGUAGE C STABLE PARALLEL SAFE ROWS 100;

-- The keys a decision is found by, as the worker writes them: its actor,
-- its policy and risk level when a policy decided it, and denials ('').
-- Inlined where it is used.
CREATE FUNCTION decide.keys_of_decision(actor text, policy text, risk_level decide.risk_level,
                                        allowed boolean)
    RETURNS TABLE (kind "char", key text)
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT k.kind, k.key
      FROM (VALUES ('a'::"char", actor), ('p', policy), ('r', risk_level::text),
                   ('d', CASE WHEN NOT allowed THEN '' END)) AS k(kind, key)
     WHERE k.key IS NOT NULL
$$;

-- The times of a row of decide.decision_keys within [from_time, to_time].
CREATE FUNCTION decide.decision_key_times(first_at timestamptz, offsets integer[],
                                          from_time timestamptz, to_time timestamptz)
    RETURNS timestamptz[]
    AS 'MODULE_PATHNAME', 'decide_decision_key_times'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- The body of a chunk holding the given rows (any row type with the
-- columns of decide.logged_decision): for rows loaded by hand.  A row the
-- log could not have written is an error.
CREATE FUNCTION decide.decision_chunk(decisions anyarray) RETURNS bytea
    AS 'MODULE_PATHNAME', 'decide_decision_chunk'
    LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE VIEW decide.decisions AS
SELECT r.* FROM decide.decision_chunks c, LATERAL decide.decision_chunk_rows(c.body) r;
ALTER VIEW decide.decisions ALTER COLUMN id SET DEFAULT nextval('decide.decisions_id_seq');
COMMENT ON VIEW decide.decisions IS
    'decision log: every logged decision as a row, decoded from decide.decision_chunks; '
    'decide_decisions_page() and decide.decisions_between() decode only the chunks they need';

-- The decisions of [since, until), decoded from the chunks that can hold
-- them only.  Inlined into the query that calls it, so that partitions and
-- chunks outside the range are not read.
CREATE FUNCTION decide.decisions_between(since timestamptz, until timestamptz)
    RETURNS SETOF decide.logged_decision
    LANGUAGE sql STABLE
AS $$
    SELECT r.*
      FROM decide.decision_chunks c,
           LATERAL decide.decision_chunk_rows(c.body, since, until, NULL, NULL, NULL, NULL, NULL,
                                              NULL) r
     WHERE c.last_at >= since AND c.last_at < until + interval '1 second' AND c.first_at < until
$$;

-- Rows inserted into decide.decisions (by hand, or loaded from elsewhere)
-- go in as chunks of one.  To load many, decide.load_decisions() packs them.
CREATE FUNCTION decide.insert_decision() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    body bytea := decide.decision_chunk(ARRAY[NEW]);
BEGIN
    PERFORM decide.create_log_partition((NEW.decided_at AT TIME ZONE 'UTC')::date);
    INSERT INTO decide.decision_chunks (first_at, last_at, first_id, rows, body)
    VALUES (NEW.decided_at, NEW.decided_at, NEW.id, 1, body);
    RETURN NEW;
END
$$;
CREATE TRIGGER insert_decision INSTEAD OF INSERT ON decide.decisions
    FOR EACH ROW EXECUTE FUNCTION decide.insert_decision();

-- Where each actor, policy and risk level, and the denials, occur in the
-- log: for each flushed batch and each of them, the times of its
-- decisions, at most 200 to a row of this table and within one second, as
-- microseconds after the first, and the chunks that hold them.
-- decide_decisions_page() reads it newest first to know how far back a
-- filtered page reaches, then decodes only the chunks named there.
-- Partitioned by day as the log is, and dropped with it.
CREATE TABLE decide.decision_keys (
    kind        "char" NOT NULL,            -- 'a' actor, 'p' policy, 'r' risk level, 'd' denials
    key         text COLLATE "C" NOT NULL,
    first_at    timestamptz NOT NULL,       -- the oldest time
    last_at     timestamptz NOT NULL,       -- the newest time
    offsets     integer[] NOT NULL,         -- each time, in microseconds after first_at
    chunks      integer[] NOT NULL          -- the chunks holding them: each one's last_at,
                                            -- once, in microseconds after first_at
) PARTITION BY RANGE (last_at);
COMMENT ON TABLE decide.decision_keys IS
    'where each actor, policy, risk level and the denials occur in the decision log, by batch; '
    'one partition per UTC day, created and dropped with the log''s';

-- Creates the partitions of decide.decision_chunks and decide.decision_keys
-- for one UTC day, with their indexes: the chunks by time (the primary
-- key), the keys by kind, key and time.  Does nothing for partitions that
-- exist.  Called by the worker.
CREATE OR REPLACE FUNCTION decide.create_log_partition(day date) RETURNS regclass
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chunks text;
    keys text;
    existing regclass;
BEGIN
    -- Partition names carry the year in four digits (the worker reads them
    -- back to apply the retention): other years would be misread.
    IF day IS NULL OR NOT isfinite(day) OR day < '0001-01-01' OR day > '9999-12-31' THEN
        RAISE EXCEPTION 'a decision log partition needs a day between 0001-01-01 and 9999-12-31, not %',
                        coalesce(CASE WHEN isfinite(day) THEN to_char(day, 'YYYY-MM-DD AD')
                                      ELSE day::text END, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    chunks := 'decision_chunks_' || to_char(day, 'YYYYMMDD');
    keys := 'decision_keys_' || to_char(day, 'YYYYMMDD');
    IF to_regclass(format('decide.%I', keys)) IS NULL THEN
        EXECUTE format('CREATE TABLE decide.%I PARTITION OF decide.decision_keys'
                       ' FOR VALUES FROM (%L) TO (%L)', keys,
                       to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
                       to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
        EXECUTE format('CREATE INDEX %I ON decide.%I (kind, key, last_at)',
                       keys || '_kind_key_last_at_idx', keys);
    END IF;
    existing := to_regclass(format('decide.%I', chunks));
    IF existing IS NOT NULL THEN
        RETURN existing;
    END IF;
    EXECUTE format('CREATE TABLE decide.%I PARTITION OF decide.decision_chunks'
                   ' FOR VALUES FROM (%L) TO (%L)', chunks,
                   to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
                   to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    EXECUTE format('ALTER TABLE decide.%I ADD CONSTRAINT %I PRIMARY KEY (last_at, first_id)',
                   chunks, chunks || '_pkey');
    -- No query filters on the bodies: ANALYZE need not decompress them.
    EXECUTE format('ALTER TABLE decide.%I ALTER COLUMN body SET STATISTICS 0', chunks);
    RETURN format('decide.%I', chunks)::regclass;
END
$$;
REVOKE ALL ON FUNCTION decide.create_log_partition(date) FROM PUBLIC;
COMMENT ON FUNCTION decide.create_log_partition(date) IS
    'creates the decision log partitions of one UTC day, with their indexes';

-- Writes the keys of one day's logged decisions again, from the decisions:
-- for decisions that reached the log other than through the worker (an
-- upgrade from 0.6.0, rows loaded by hand).  Returns the keys written.
CREATE FUNCTION decide.build_decision_keys(day date) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys regclass;
    written bigint;
BEGIN
    PERFORM decide.create_log_partition(day);
    keys := format('decide.%I', 'decision_keys_' || to_char(day, 'YYYYMMDD'))::regclass;
    EXECUTE format('TRUNCATE %s', keys);
    EXECUTE format($q$
        INSERT INTO %s (kind, key, first_at, last_at, offsets, chunks)
        SELECT kind, key, times[1], times[cardinality(times)],
               ARRAY(SELECT ((extract(epoch FROM t - times[1]) * 1000000)::bigint)::integer
                       FROM unnest(times) AS t),
               ARRAY(SELECT DISTINCT ((extract(epoch FROM e - times[1]) * 1000000)::bigint)::integer
                       FROM unnest(ends) AS e ORDER BY 1)
          FROM (SELECT kind, key, array_agg(decided_at ORDER BY decided_at) AS times,
                       array_agg(chunk_end) AS ends
                  FROM (SELECT k.kind, k.key, d.decided_at, c.last_at AS chunk_end, s.slice,
                               (row_number() OVER (PARTITION BY k.kind, k.key, s.slice
                                                   ORDER BY d.decided_at) - 1) / 200 AS part
                          FROM decide.decision_chunks c,
                               LATERAL decide.decision_chunk_rows(c.body) d,
                               LATERAL decide.keys_of_decision(d.actor, d.policy, d.risk_level,
                                                               d.allowed) AS k,
                               -- a row's times lie within a second
                               LATERAL (SELECT floor(extract(epoch FROM d.decided_at)) AS slice) AS s
                         WHERE c.last_at >= $1 AND c.last_at < $2) AS positions
                 GROUP BY kind, key, slice, part) AS key_rows$q$, keys)
    USING day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC';
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;
REVOKE ALL ON FUNCTION decide.build_decision_keys(date) FROM PUBLIC;
COMMENT ON FUNCTION decide.build_decision_keys(date) IS
    'writes the keys (decide.decision_keys) of one UTC day''s logged decisions again, from the decisions';

-- Loads the rows of a table (with the columns of decide.decisions; a NULL
-- id takes the next from the log's sequence) into the log as chunks, as
-- the worker writes them, and their keys.  Returns the rows loaded.  For
-- the upgrade from 0.6.0 and for logs brought from elsewhere.
CREATE FUNCTION decide.load_decisions(source regclass) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    day date;
    days date[];
    loaded bigint;
BEGIN
    EXECUTE format('SELECT array_agg(DISTINCT (decided_at AT TIME ZONE ''UTC'')::date) FROM %s',
                   source) INTO days;
    FOREACH day IN ARRAY coalesce(days, '{}') LOOP
        PERFORM decide.create_log_partition(day);
    END LOOP;
    -- A chunk: at most 64 rows of one second, in time order, as the worker writes.
    EXECUTE format($q$
        WITH chunks AS (
            INSERT INTO decide.decision_chunks (first_at, last_at, first_id, rows, body)
            SELECT min(decided_at), max(decided_at), min(id), count(*),
                   decide.decision_chunk(array_agg(
                       ROW(id, decided_at, actor, action, resource, allowed, effect, policy,
                           risk_level, reason, epoch, source, context, priority,
                           condition_unknown)::decide.logged_decision
                       ORDER BY decided_at, id))
              FROM (SELECT n.*, (row_number() OVER (PARTITION BY n.second
                                                    ORDER BY n.decided_at, n.id) - 1) / 64 AS part
                      FROM (SELECT coalesce(s.id, nextval('decide.decisions_id_seq')) AS id,
                                   s.decided_at, s.actor, s.action, s.resource, s.allowed,
                                   s.effect, s.policy, s.risk_level, s.reason, s.epoch,
                                   s.source::text::decide.decision_source AS source, s.context,
                                   s.priority, s.condition_unknown,
                                   floor(extract(epoch FROM s.decided_at)) AS second
                              FROM %s s) AS n) AS numbered
             GROUP BY second, part
            RETURNING rows)
        SELECT coalesce(sum(rows), 0) FROM chunks$q$, source) INTO loaded;
    FOREACH day IN ARRAY coalesce(days, '{}') LOOP
        PERFORM decide.build_decision_keys(day);
    END LOOP;
    RETURN loaded;
END
$$;
REVOKE ALL ON FUNCTION decide.load_decisions(regclass) FROM PUBLIC;
COMMENT ON FUNCTION decide.load_decisions(regclass) IS
    'loads the rows of a table with the columns of decide.decisions into the decision log, as chunks, with their keys';

-- Keyset pagination, newest first.  The cursor is the position of a row
-- (its decided_at and id); a page is the rows strictly after it in that
-- order, whatever the page number: unlike OFFSET, whose cost grows with
-- the rows it skips and whose pages shift when rows arrive.  Pass the
-- cursor of the last row of a page to get the next.
--
-- A page is found in two steps.  First a bound, the time from which on the
-- page's rows are: without a filter on the actor, the policy, the risk
-- level or denials, from the chunks read newest first until they hold a
-- page of rows; with one, from that key's times in decide.decision_keys,
-- read newest first until there is a page of them.  Then the chunks from
-- the bound on (with a key, those its rows name) are decoded and filtered.  When other filters leave the
-- page short, the bound moves further back.
CREATE OR REPLACE FUNCTION decide_decisions_page(
    after         text DEFAULT NULL,
    page_size     integer DEFAULT 100,
    by_actor      text DEFAULT NULL,
    by_allowed    boolean DEFAULT NULL,
    by_risk_level decide.risk_level DEFAULT NULL,
    by_policy     text DEFAULT NULL,
    since         timestamptz DEFAULT NULL,
    until         timestamptz DEFAULT NULL)
RETURNS TABLE (id bigint, decided_at timestamptz, actor text, action text, resource text,
               allowed boolean, effect decide.effect, policy text, risk_level decide.risk_level,
               reason text, epoch bigint, source text, context jsonb, row_cursor text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- A page decodes a few chunks: starting parallel workers would cost more.
SET max_parallel_workers_per_gather = 0
-- The statements below are planned once per session, whatever their
-- arguments: their one good plan (index scans of the chunks and keys named)
-- does not depend on them.  The two reads that go newest first until they
-- have enough are planned for the key and times given instead: EXECUTEd
-- with them as constants.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    key_kind "char";
    key_value text;
    -- The page's rows are at or after low_at and before (top_at, top_id)
    -- in the order (decided_at, id); a NULL top_id: before top_at.
    top_at timestamptz := 'infinity';
    top_id bigint;
    low_at timestamptz := coalesce(since, '-infinity');
    bound_at timestamptz;
    times timestamptz[];
    wanted bigint := page_size;
    remaining bigint := page_size;
    counted bigint;
    more boolean;
    found_rows bigint;
    k record;
BEGIN
    IF page_size IS NULL OR page_size < 1 OR page_size > 10000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 10000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF after IS NOT NULL THEN
        BEGIN
            SELECT timestamptz 'epoch' + split_part(c, ':', 1)::bigint * interval '1 microsecond',
                   split_part(c, ':', 2)::bigint
              INTO STRICT top_at, top_id
              FROM convert_from(decode(after, 'base64'), 'UTF8') AS c
             WHERE c ~ '^-?[0-9]+:[0-9]+$';
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'invalid cursor'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass the row_cursor of a row returned by decide_decisions_page().';
        END;
    END IF;
    IF until IS NOT NULL AND until <= top_at THEN
        top_at := until;
        top_id := NULL;
    END IF;

    -- The most selective key given finds the bound; the other filters are conditions.
    IF by_actor IS NOT NULL THEN
        key_kind := 'a';
        key_value := by_actor;
    ELSIF by_policy IS NOT NULL THEN
        key_kind := 'p';
        key_value := by_policy;
    ELSIF by_risk_level IS NOT NULL THEN
        key_kind := 'r';
        key_value := by_risk_level::text;
    ELSIF NOT by_allowed THEN
        key_kind := 'd';
        key_value := '';
    END IF;

    LOOP
        more := false;
        bound_at := NULL;
        IF key_kind IS NULL THEN
            -- Chunks that end before top_at hold only rows the page may
            -- show: read newest first, those holding the rows wanted fix
            -- the bound at their oldest time.
            counted := 0;
            FOR k IN EXECUTE format(
                'SELECT c.first_at, c.rows FROM decide.decision_chunks c
                  WHERE c.last_at < %L AND c.last_at >= %L
                  ORDER BY c.last_at DESC
                  LIMIT %s',
                top_at, low_at,
                wanted)         -- a chunk holds a decision at least
            LOOP
                counted := counted + k.rows;
                bound_at := least(bound_at, k.first_at);
                IF counted >= wanted THEN
                    more := true;
                    EXIT;
                END IF;
            END LOOP;
        ELSE
            -- The key's times of decide.decision_keys in [low_at, top_at],
            -- read newest first until they hold the times wanted; the
            -- wanted-th newest is the bound.  A row of decide.decision_keys
            -- spans less than a second, so only those whose newest time is
            -- less than a second past top_at can hold a time up to it.
            -- (Times at top_at itself may not be on the page: one more.)
            times := '{}';
            counted := 0;
            -- (A generic plan could take a frequent key for a rare one and
            -- sort all its rows.)
            FOR k IN EXECUTE format(
                'SELECT kk.first_at, kk.offsets FROM decide.decision_keys kk
                  WHERE kk.kind = %L AND kk.key = %L AND kk.last_at >= %L
                    AND kk.last_at < %L::timestamptz + interval ''1 second''
                    AND kk.first_at <= %L
                  ORDER BY kk.last_at DESC
                  LIMIT %s',
                key_kind, key_value, low_at, top_at, top_at,
                wanted + 2)     -- a row holds a time at least
            LOOP
                IF cardinality(times) > wanted THEN
                    more := true;
                    EXIT;
                END IF;
                counted := counted + 1;
                times := times || decide.decision_key_times(k.first_at, k.offsets, low_at, top_at);
            END LOOP;
            IF more THEN
                bound_at := (SELECT t FROM unnest(times) AS t ORDER BY t DESC OFFSET wanted LIMIT 1);
            ELSIF counted >= wanted + 2 THEN
                -- The limit cut the rows short, most of their times out of
                -- range: the page starts at the oldest time read at least.
                more := true;
                bound_at := (SELECT min(t) FROM unnest(times) AS t);
            END IF;
        END IF;
        IF NOT more OR bound_at IS NULL OR bound_at <= low_at THEN
            bound_at := low_at;
            more := false;
        END IF;
        -- The rows from bound_at to (top_at, top_id): without a key, from
        -- every chunk that can hold them; with one, from the chunks its rows
        -- of decide.decision_keys name.  Each chunk yields at most the page's
        -- newest rows that pass the filters.  Static, so that their plans
        -- are kept for the session.
        IF key_kind IS NULL THEN
            RETURN QUERY
            SELECT d.id, d.decided_at, d.actor::text, d.action::text, d.resource::text, d.allowed,
                   d.effect, d.policy::text, d.risk_level, d.reason, d.epoch, d.source::text,
                   d.context,
                   encode(convert_to(((extract(epoch FROM d.decided_at) * 1000000)::bigint)::text
                                     || ':' || d.id, 'UTF8'), 'base64')
              FROM decide.decision_chunks c,
                   LATERAL decide.decision_chunk_rows(c.body, bound_at, top_at, top_id, by_actor,
                                                      by_allowed, by_risk_level, by_policy,
                                                      remaining::integer) d
             WHERE c.last_at >= bound_at AND c.last_at < top_at + interval '1 second'
               AND c.first_at <= top_at
             ORDER BY d.decided_at DESC, d.id DESC
             LIMIT remaining;
        ELSE
            RETURN QUERY
            SELECT d.id, d.decided_at, d.actor::text, d.action::text, d.resource::text, d.allowed,
                   d.effect, d.policy::text, d.risk_level, d.reason, d.epoch, d.source::text,
                   d.context,
                   encode(convert_to(((extract(epoch FROM d.decided_at) * 1000000)::bigint)::text
                                     || ':' || d.id, 'UTF8'), 'base64')
              FROM (SELECT DISTINCT kk.first_at + ch.offset_us * interval '1 microsecond' AS chunk_end
                      FROM decide.decision_keys kk, unnest(kk.chunks) AS ch(offset_us)
                     WHERE kk.kind = key_kind AND kk.key = key_value
                       AND kk.last_at >= bound_at AND kk.last_at < top_at + interval '1 second'
                       AND kk.first_at <= top_at) AS named
              JOIN decide.decision_chunks c ON c.last_at = named.chunk_end
             CROSS JOIN LATERAL decide.decision_chunk_rows(c.body, bound_at, top_at, top_id,
                                                           by_actor, by_allowed, by_risk_level,
                                                           by_policy, remaining::integer) d
             ORDER BY d.decided_at DESC, d.id DESC
             LIMIT remaining;
        END IF;
        GET DIAGNOSTICS found_rows = ROW_COUNT;
        remaining := remaining - found_rows;
        -- Short when filters left rows out: every row from the bound on
        -- has been seen, so the next are before it.
        EXIT WHEN remaining = 0 OR NOT more;
        top_at := bound_at;
        top_id := NULL;
        wanted := least(wanted * 4, 1000000);
    END LOOP;
END
$$;

-- The most recent decisions, for a quick look.
CREATE VIEW decide_recent_decisions AS
SELECT id, decided_at, actor, action, resource, allowed, effect, policy, risk_level, reason,
       epoch, source
  FROM decide_decisions_page(NULL, 100);

SELECT decide.load_decisions('decide.decisions_of_0_6');
DROP TABLE decide.decisions_of_0_6;
-- The partitions made above hold the log's rows, not the extension's
-- objects: made by this script, they would be members of the extension,
-- which pg_dump leaves out and retention could not drop.
DO $$
DECLARE
    partition regclass;
BEGIN
    FOR partition IN
        SELECT d.objid::regclass
          FROM pg_depend d JOIN pg_inherits i ON i.inhrelid = d.objid
         WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
           AND d.refclassid = 'pg_extension'::regclass
           AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'decide')
           AND i.inhparent IN ('decide.decision_chunks'::regclass, 'decide.decision_keys'::regclass)
    LOOP
        EXECUTE format('ALTER EXTENSION decide DROP TABLE %s', partition);
    END LOOP;
END
$$;

REVOKE ALL ON decide_recent_decisions FROM PUBLIC;
GRANT SELECT ON decide_recent_decisions TO decide_admin, decide_auditor;
GRANT SELECT ON decide.decisions, decide.decision_chunks, decide.decision_keys
    TO decide_admin, decide_auditor;
REVOKE ALL ON FUNCTION decide.decision_chunk_rows(bytea),
                       decide.decision_chunk_rows(bytea, timestamptz, timestamptz, bigint, text,
                                                  boolean, decide.risk_level, text, integer),
                       decide.decision_chunk(anyarray),
                       decide.decision_key_times(timestamptz, integer[], timestamptz, timestamptz),
                       decide.keys_of_decision(text, text, decide.risk_level, boolean),
                       decide.decisions_between(timestamptz, timestamptz),
                       decide.insert_decision() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide.decision_chunk_rows(bytea),
                          decide.decision_chunk_rows(bytea, timestamptz, timestamptz, bigint, text,
                                                     boolean, decide.risk_level, text, integer),
                          decide.decision_key_times(timestamptz, integer[], timestamptz, timestamptz),
                          decide.keys_of_decision(text, text, decide.risk_level, boolean),
                          decide.decisions_between(timestamptz, timestamptz)
    TO decide_admin, decide_auditor;

-- The history of decide.policies and decide.entities: one row per row a
-- statement inserts, updates, deletes or truncates, written by the
-- statement triggers below in the changing transaction (a rollback leaves
-- none).  User data: pg_dump saves it.  Nobody but the owner writes it;
-- the worker deletes rows older than decide.changes_retention (default:
-- keep).
CREATE TABLE decide.changes (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    epoch             bigint NOT NULL,      -- the epoch the change's transaction made
    changed_at        timestamptz NOT NULL, -- the statement's time
    session_user_name text NOT NULL,
    current_user_name text NOT NULL,
    operation         text NOT NULL
                      CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    table_name        text NOT NULL CHECK (table_name IN ('policies', 'entities')),
    key               text NOT NULL,        -- policies: the id; entities: the uid
    before            jsonb,                -- NULL for an insert
    after             jsonb                 -- NULL for a delete or a truncation
);
CREATE INDEX changes_epoch_idx ON decide.changes (epoch);
CREATE INDEX changes_table_name_key_idx ON decide.changes (table_name, key, id);
COMMENT ON TABLE decide.changes IS
    'who changed decide.policies and decide.entities, when, and the rows before and after';
SELECT pg_catalog.pg_extension_config_dump('decide.changes', '');
SELECT pg_catalog.pg_extension_config_dump('decide.changes_id_seq', '');

CREATE FUNCTION decide.record_changes() RETURNS trigger
    AS 'MODULE_PATHNAME', 'decide_record_changes'
    LANGUAGE C;
REVOKE ALL ON FUNCTION decide.record_changes() FROM PUBLIC;
-- Transition tables allow one event per trigger, hence one trigger each.
CREATE TRIGGER policies_inserted_history
    AFTER INSERT ON decide.policies REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes();
CREATE TRIGGER policies_updated_history
    AFTER UPDATE ON decide.policies REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes();
CREATE TRIGGER policies_deleted_history
    AFTER DELETE ON decide.policies REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes();
CREATE TRIGGER policies_truncated_history
    BEFORE TRUNCATE ON decide.policies
    FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes();
CREATE TRIGGER entities_inserted_history
    AFTER INSERT ON decide.entities REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes();
CREATE TRIGGER entities_updated_history
    AFTER UPDATE ON decide.entities REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes();
CREATE TRIGGER entities_deleted_history
    AFTER DELETE ON decide.entities REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes();
CREATE TRIGGER entities_truncated_history
    BEFORE TRUNCATE ON decide.entities
    FOR EACH STATEMENT EXECUTE FUNCTION decide.record_changes();
GRANT SELECT ON decide.changes TO decide_admin, decide_auditor;

CREATE OR REPLACE FUNCTION decide.advance_epoch() RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Once per transaction: the epoch is a version of committed state.
    -- Past every epoch of the change history too: after a restore, whose
    -- history carries the source's epochs, the epochs go on from there.
    UPDATE decide.epoch
       SET epoch = greatest(epoch, coalesce((SELECT max(c.epoch) FROM decide.changes c), 0)) + 1,
           version = gen_random_uuid(), changed_by = pg_current_xact_id()
     WHERE changed_by IS DISTINCT FROM pg_current_xact_id();
    PERFORM decide.invalidate_policy_set();
END
$$;

-- decide.policies and decide.entities as they were at an epoch, rebuilt
-- from decide.changes: the rows no later change touched, and for each key
-- a later change touched, the row before the first such change (none: the
-- row did not exist then).  The history gives back the epochs from the
-- one before its oldest to the current one.
CREATE FUNCTION decide.check_history_epoch(at_epoch bigint) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    current bigint := (SELECT e.epoch FROM decide.epoch e);
    oldest bigint := coalesce((SELECT min(c.epoch) - 1 FROM decide.changes c), current);
BEGIN
    IF at_epoch IS NULL THEN
        RAISE EXCEPTION 'the epoch must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF at_epoch > current THEN
        RAISE EXCEPTION 'epoch % is not in the change history', at_epoch
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The history gives back epochs %s to %s.', oldest, current);
    END IF;
    IF at_epoch < oldest THEN
        RAISE EXCEPTION 'epoch % is not in the change history', at_epoch
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The history gives back epochs %s to %s.', oldest, current),
                  HINT = 'decide.changes_retention sets how long the history is kept.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION decide.check_history_epoch(bigint) FROM PUBLIC;
-- One table of the two, whose rows are of row_type (a NULL of it) and keyed
-- in the history by key_column, as it was at an epoch.
CREATE FUNCTION decide.rows_at(row_type anyelement, table_name text, key_column text,
                               at_epoch bigint) RETURNS SETOF anyelement
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM decide.check_history_epoch(at_epoch);
    RETURN QUERY EXECUTE format(
        'SELECT (jsonb_populate_record($1, f.before)).*'
        '  FROM (SELECT DISTINCT ON (c.key) c.key, c.before'
        '          FROM decide.changes c'
        '         WHERE c.table_name = %1$L AND c.epoch > $2'
        '         ORDER BY c.key, c.id) AS f'
        ' WHERE f.before IS NOT NULL'
        ' UNION ALL'
        ' SELECT t.*'
        '  FROM decide.%1$I t'
        ' WHERE NOT EXISTS (SELECT FROM decide.changes c'
        '                    WHERE c.table_name = %1$L AND c.key = t.%2$I::text'
        '                      AND c.epoch > $2)',
        table_name, key_column)
    USING row_type, at_epoch;
END
$$;
REVOKE ALL ON FUNCTION decide.rows_at(anyelement, text, text, bigint) FROM PUBLIC;
CREATE FUNCTION decide_policies_at(at_epoch bigint) RETURNS SETOF decide.policies
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM decide.rows_at(NULL::decide.policies, 'policies', 'id', at_epoch)
$$;
CREATE FUNCTION decide_entities_at(at_epoch bigint) RETURNS SETOF decide.entities
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM decide.rows_at(NULL::decide.entities, 'entities', 'uid', at_epoch)
$$;
COMMENT ON FUNCTION decide_policies_at(bigint) IS
    'decide.policies as it was at an epoch, rebuilt from decide.changes';
COMMENT ON FUNCTION decide_entities_at(bigint) IS
    'decide.entities as it was at an epoch, rebuilt from decide.changes';
REVOKE ALL ON FUNCTION decide_policies_at(bigint), decide_entities_at(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_policies_at(bigint), decide_entities_at(bigint)
    TO decide_admin, decide_auditor;

-- Decisions and explanations as of an epoch: decide() and decide_explain()
-- with at_epoch evaluate under the policies and entities that
-- decide_policies_at() and decide_entities_at() rebuild, called as the
-- caller, so only roles that may read the history may ask.  Audit queries:
-- not logged, not counted, not cached.
CREATE FUNCTION decide(actor text, action text, resource text, context jsonb, at_epoch bigint)
    RETURNS decide.decision
    AS 'MODULE_PATHNAME', 'decide_decide_at_epoch'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION decide_explain(actor text, action text, resource text, context jsonb,
                               at_epoch bigint)
    RETURNS TABLE (rank integer, policy text, effect text, priority integer, risk_level text,
                   actor_matched boolean, action_matched boolean, resource_matched boolean,
                   condition text, decisive boolean, note text)
    AS 'MODULE_PATHNAME', 'decide_explain_at_epoch'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION decide(text, text, text, jsonb, bigint) IS
    'the decision as it was made at an epoch, under that epoch''s policies and entities';
COMMENT ON FUNCTION decide_explain(text, text, text, jsonb, bigint) IS
    'the explanation as of an epoch, under that epoch''s policies and entities';
REVOKE ALL ON FUNCTION decide(text, text, text, jsonb, bigint),
                       decide_explain(text, text, text, jsonb, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide(text, text, text, jsonb, bigint),
                          decide_explain(text, text, text, jsonb, bigint)
    TO decide_admin, decide_auditor;

-- What-if replay: the logged decisions of a time window (newest first, at
-- most max_rows) decided again under the policy set the caller sees now,
-- its own uncommitted changes included, and those whose answer (allowed or
-- deciding policy) differs.  Meant for BEGIN; change the policies; SELECT
-- ... FROM decide_replay(...); ROLLBACK: under the caller's own change a
-- decision reads and fills no cache, and replaying logs nothing.  A request
-- logged without its context is replayed with '{}' (context_logged false).
CREATE FUNCTION decide_replay(since timestamptz, until timestamptz DEFAULT now(),
                              max_rows integer DEFAULT 100000)
RETURNS TABLE (id bigint, decided_at timestamptz, actor text, action text, resource text,
               allowed_then boolean, policy_then text, allowed_now boolean, policy_now text,
               context_logged boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET decide.log = 'none'
AS $$
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RAISE EXCEPTION 'since and until must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_rows IS NULL OR max_rows < 1 OR max_rows > 10000000 THEN
        RAISE EXCEPTION 'max_rows must be between 1 and 10000000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT d.id, d.decided_at, d.actor::text, d.action::text, d.resource::text,
           d.allowed, d.policy, n.allowed, n.policy, d.context IS NOT NULL
      FROM (SELECT l.* FROM decide.decisions_between(since, until) l
             ORDER BY l.decided_at DESC, l.id DESC
             LIMIT max_rows) AS d
     CROSS JOIN LATERAL @extschema@.decide(d.actor, d.action, d.resource,
                                          coalesce(d.context, '{}')) AS n
     WHERE n.allowed IS DISTINCT FROM d.allowed OR n.policy IS DISTINCT FROM d.policy
     ORDER BY d.decided_at DESC, d.id DESC;
END
$$;
COMMENT ON FUNCTION decide_replay(timestamptz, timestamptz, integer) IS
    'logged decisions of a window decided again under the policies seen now; those that differ';
REVOKE ALL ON FUNCTION decide_replay(timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_replay(timestamptz, timestamptz, integer) TO decide_admin;

-- The decision log's hash chain: with each day's part of a flushed batch
-- the worker writes a link, the id range and count of the decisions it
-- wrote, the SHA-256 digest of their chunks as stored, and a hash over the
-- previous link's; decide_verify_log()
-- recomputes them, decide_log_head() gives the newest link to keep outside
-- the database.  Retention deletes the links of the days it drops.
CREATE TABLE decide.log_chain (
    link        bigint PRIMARY KEY,         -- 1, 2, ... in the order written
    first_id    bigint NOT NULL,            -- the ids of its decisions: first_id to last_id
    last_id     bigint NOT NULL,
    first_at    timestamptz NOT NULL,       -- their times
    last_at     timestamptz NOT NULL,
    rows        integer NOT NULL,           -- how many
    digest      bytea NOT NULL,             -- SHA-256 of their chunks, in id order
    previous    bytea NOT NULL,             -- the previous link's hash (zeros for the first)
    hash        bytea NOT NULL              -- SHA-256 of previous, link, ids, rows and digest
);
CREATE INDEX log_chain_last_at_idx ON decide.log_chain (last_at);
COMMENT ON TABLE decide.log_chain IS
    'the hash chain of the decision log: one link per UTC day of each batch the worker writes';
SELECT pg_catalog.pg_extension_config_dump('decide.log_chain', '');
CREATE FUNCTION decide_verify_log(from_time timestamptz DEFAULT NULL,
                                  to_time timestamptz DEFAULT NULL, head text DEFAULT NULL)
    RETURNS TABLE (problem text, link bigint, first_id bigint, last_id bigint, detail text)
    AS 'MODULE_PATHNAME', 'decide_verify_log'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION decide_log_head() RETURNS text
    AS 'MODULE_PATHNAME', 'decide_log_head'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION decide_verify_log(timestamptz, timestamptz, text) IS
    'checks the decision log against its hash chain: one row per break, none when intact';
COMMENT ON FUNCTION decide_log_head() IS
    'the newest link of the decision log''s hash chain, to keep outside the database';
REVOKE ALL ON FUNCTION decide_verify_log(timestamptz, timestamptz, text), decide_log_head()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_verify_log(timestamptz, timestamptz, text), decide_log_head()
    TO decide_admin, decide_auditor;
GRANT SELECT ON decide.log_chain TO decide_admin, decide_auditor;

-- The keys (decide.decision_keys) are an index of the log, outside its
-- chain: a superuser who edits them can hide decisions from filtered pages
-- without touching a chunk.  This checks them against the decisions of
-- [from_time, to_time) (all when NULL): one row per problem, kind and key:
-- decisions that filtered pages by that key do not find, and key times
-- that are no decision's.
CREATE FUNCTION decide_verify_log_keys(from_time timestamptz DEFAULT NULL,
                                       to_time timestamptz DEFAULT NULL)
    RETURNS TABLE (problem text, kind text, key text, first_at timestamptz,
                   last_at timestamptz, decisions bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    -- Hash joins of a few bytes a decision, in memory: sorting them for a
    -- merge join took several times longer.
    SET work_mem = '256MB'
    SET enable_mergejoin = off
AS $$
    -- (The window's ends are written out where used, so that the planner
    -- reads only the chunks and keys within.)
    WITH logged AS (
        SELECT k.kind, k.key, d.decided_at, c.last_at AS chunk_end
          FROM decide.decision_chunks c,
               LATERAL decide.decision_chunk_rows(c.body, coalesce(from_time, '-infinity'),
                                                  coalesce(to_time, 'infinity'), NULL, NULL, NULL,
                                                  NULL, NULL, NULL) d,
               LATERAL decide.keys_of_decision(d.actor, d.policy, d.risk_level, d.allowed) AS k
         WHERE c.last_at >= coalesce(from_time, '-infinity')
           AND c.last_at < coalesce(to_time, 'infinity') + interval '1 second'
           AND c.first_at < coalesce(to_time, 'infinity')
    ),
    keyed AS (
        SELECT kk.kind, kk.key, t.decided_at,
               decide.decision_key_times(kk.first_at, kk.chunks, '-infinity', 'infinity')
                   AS chunk_ends
          FROM decide.decision_keys kk,
               unnest(decide.decision_key_times(kk.first_at, kk.offsets,
                                                coalesce(from_time, '-infinity'),
                                                coalesce(to_time, 'infinity'))) AS t(decided_at)
         WHERE kk.last_at >= coalesce(from_time, '-infinity')
           AND kk.last_at < coalesce(to_time, 'infinity') + interval '1 second'
           AND kk.first_at <= coalesce(to_time, 'infinity')
           AND t.decided_at < coalesce(to_time, 'infinity')
    ),
    -- A decision is found by filtered pages when a key row of its kind and
    -- key holds its time and names its chunk.
    problems AS (
        SELECT 'not in the keys' AS problem, l.kind, l.key, l.decided_at
          FROM logged l
         WHERE NOT EXISTS (SELECT FROM keyed k
                            WHERE (k.kind, k.key, k.decided_at) = (l.kind, l.key, l.decided_at)
                              AND l.chunk_end = ANY (k.chunk_ends))
        UNION ALL
        SELECT 'keys without a decision', k.kind, k.key, k.decided_at
          FROM keyed k
         WHERE NOT EXISTS (SELECT FROM logged l
                            WHERE (l.kind, l.key, l.decided_at) = (k.kind, k.key, k.decided_at))
    )
    SELECT p.problem,
           CASE p.kind WHEN 'a' THEN 'actor' WHEN 'p' THEN 'policy' WHEN 'r' THEN 'risk level'
                       ELSE 'denials' END,
           nullif(p.key, ''), min(p.decided_at), max(p.decided_at), count(*)
      FROM problems p
     GROUP BY p.problem, p.kind, p.key
     ORDER BY 1, 2, 3
$$;
COMMENT ON FUNCTION decide_verify_log_keys(timestamptz, timestamptz) IS
    'checks the decision log''s keys against its decisions: one row per problem, kind and key, none when they agree';
REVOKE ALL ON FUNCTION decide_verify_log_keys(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_verify_log_keys(timestamptz, timestamptz)
    TO decide_admin, decide_auditor;

-- The change history's hash chain: the rows each statement records are
-- linked as the log's batches are (decide.log_chain), in the changing
-- transaction; decide_verify_log() checks both chains.
CREATE TABLE decide.changes_chain (
    link        bigint PRIMARY KEY,         -- 1, 2, ... in commit order
    first_id    bigint NOT NULL,            -- the ids of its rows of decide.changes
    last_id     bigint NOT NULL,
    rows        integer NOT NULL,
    digest      bytea NOT NULL,
    previous    bytea NOT NULL,
    hash        bytea NOT NULL
);
COMMENT ON TABLE decide.changes_chain IS
    'the hash chain of decide.changes: one link per statement that changed policies or entities';
SELECT pg_catalog.pg_extension_config_dump('decide.changes_chain', '');
GRANT SELECT ON decide.changes_chain TO decide_admin, decide_auditor;
