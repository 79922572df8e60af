-- decide 0.6.0 -> 0.7.0: decide_stats gains warm_timeouts, the requests
-- the background worker stopped warming at their time limit (and will not
-- warm again), and the shared_set_* columns: the compiled policy set that
-- the backends of the server now share in shared memory.

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
    OUT shared_sets_bytes bigint)    -- shared memory held by every shared set of the server
    AS 'MODULE_PATHNAME', 'decide_stats'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE VIEW decide_stats AS SELECT * FROM decide_stats();

REVOKE ALL ON FUNCTION decide_stats() FROM PUBLIC;
REVOKE ALL ON decide_stats FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_stats() TO decide_admin, pg_monitor;
GRANT SELECT ON decide_stats TO decide_admin, pg_monitor;
