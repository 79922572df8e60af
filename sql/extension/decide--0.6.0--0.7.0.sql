-- decide 0.6.0 -> 0.7.0: decide_stats gains warm_timeouts, the requests
-- the background worker stopped warming at their time limit (and will not
-- warm again), and the shared_set_* columns: the compiled policy set that
-- the backends of the server now share in shared memory.  Authorized
-- listing: decide_resources() and decide_actors(), over decide.entity_links,
-- the hierarchy read downward, which replaces the GIN index on parents.

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
    OUT log_flushed bigint,          -- written to decide.decisions
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
