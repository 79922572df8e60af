-- decide 0.4.0 -> 0.5.0: decide() returns the named composite type
-- decide.decision instead of a record described by OUT parameters.
--
-- Why: a function called in FROM gets its result descriptor at every
-- execution.  For OUT parameters the server rebuilds it from pg_proc each
-- time; for a named type it copies it from the type cache.  On a cached
-- decision that rebuild was about a fifth of the whole statement.  The
-- columns, their names and their order are unchanged, so SELECT * FROM
-- decide(...) and (decide(...)).allowed read the same as before.
--
-- The function is dropped and created again (a return type cannot be
-- changed in place): a view or function of yours that uses decide() makes
-- this update fail, with nothing changed; drop it, update, create it again.

\echo Use "ALTER EXTENSION decide UPDATE TO '0.5.0'" to load this file. \quit

CREATE TYPE decide.decision AS (
    allowed     boolean,
    effect      text,
    policy      text,
    risk_level  text,
    reason      text,
    epoch       bigint,
    source      text
);
COMMENT ON TYPE decide.decision IS 'the answer of decide(): one decision';

DROP FUNCTION decide(text, text, text, jsonb);
CREATE FUNCTION decide(actor text, action text, resource text, context jsonb DEFAULT '{}')
    RETURNS decide.decision
    AS 'MODULE_PATHNAME', 'decide_decide'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION decide(text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide(text, text, text, jsonb) TO decide_user, decide_admin;

-- A version of the entities alone, drawn anew by every statement that
-- changes entities (policy changes leave it).  Backends keep the entities
-- they have read across a policy change when it is unchanged, instead of
-- fetching each again through the index.
ALTER TABLE decide.epoch ADD COLUMN entities_version uuid NOT NULL DEFAULT gen_random_uuid();

CREATE FUNCTION decide.advance_entities_epoch() RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM decide.advance_epoch();
    UPDATE decide.epoch SET entities_version = gen_random_uuid();
END
$$;
REVOKE ALL ON FUNCTION decide.advance_entities_epoch() FROM PUBLIC;

CREATE OR REPLACE FUNCTION decide.on_entities_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM decide.advance_entities_epoch();
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
    -- Only rows whose parents changed (or that were renamed) can break the hierarchy.
    PERFORM decide.check_hierarchy(ARRAY(
        SELECT n.uid FROM new_rows n
         WHERE n.parents <> '{}'
           AND NOT EXISTS (SELECT FROM old_rows o
                            WHERE o.uid = n.uid AND o.parents = n.parents)));
    RETURN NULL;
END
$$;

CREATE FUNCTION decide.on_entities_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM decide.advance_entities_epoch();
    RETURN NULL;
END
$$;

DROP TRIGGER entities_deleted ON decide.entities;
CREATE TRIGGER entities_deleted
    AFTER DELETE OR TRUNCATE ON decide.entities
    FOR EACH STATEMENT EXECUTE FUNCTION decide.on_entities_deleted();

-- decide_stats gains entity_fetches (the entity cache misses, which the
-- entities version above is there to avoid) and carried_forward (cached
-- decisions reused across a policy change that does not touch them).
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
    OUT carried_forward bigint)      -- misses answered by an older epoch's entry no change touches
    AS 'MODULE_PATHNAME', 'decide_stats'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE VIEW decide_stats AS SELECT * FROM decide_stats();

REVOKE ALL ON FUNCTION decide_stats() FROM PUBLIC;
REVOKE ALL ON decide_stats FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_stats() TO decide_admin, pg_monitor;
GRANT SELECT ON decide_stats TO decide_admin, pg_monitor;

-- The log's policy column compares bytes, as actor, action and resource
-- already do: its index was the most expensive of the worker's inserts
-- under a linguistic default collation.  Changing a collation rewrites no
-- rows but rebuilds decisions_policy_idx on every partition, in time
-- proportional to the log; the view that reads the column is dropped and
-- created again around it.
DROP VIEW decide_recent_decisions;
ALTER TABLE decide.decisions ALTER COLUMN policy TYPE text COLLATE "C";
CREATE VIEW decide_recent_decisions AS
SELECT id, decided_at, actor, action, resource, allowed, effect, policy, risk_level, reason,
       epoch, source
  FROM decide.decisions
 ORDER BY decided_at DESC, id DESC
 LIMIT 100;
REVOKE ALL ON decide_recent_decisions FROM PUBLIC;
GRANT SELECT ON decide_recent_decisions TO decide_admin, decide_auditor;
