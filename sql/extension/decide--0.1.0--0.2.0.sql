-- decide 0.1.0 -> 0.2.0: decision caches (L1 per backend, L2 in shared
-- memory), statistics and Prometheus metrics.

\echo Use "ALTER EXTENSION decide UPDATE TO '0.2.0'" to load this file. \quit

CREATE FUNCTION decide_stats(
    OUT shared_memory boolean,       -- statistics cover the server (true) or this backend
    OUT shared_cache boolean,        -- L2 present (needs shared_preload_libraries)
    OUT decisions bigint,
    OUT allowed bigint,
    OUT denied bigint,
    OUT hit_ratio double precision,  -- decisions answered by L1 or L2
    OUT l1_hits bigint,
    OUT l1_misses bigint,
    OUT l1_evictions bigint,
    OUT l1_entries bigint,           -- summed over backends
    OUT l1_bytes bigint,
    OUT l1_capacity bigint,          -- per backend
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
    OUT stats_reset timestamptz)
    AS 'MODULE_PATHNAME', 'decide_stats'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW decide_stats AS SELECT * FROM decide_stats();

CREATE FUNCTION decide_metrics() RETURNS text
    AS 'MODULE_PATHNAME', 'decide_metrics'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION decide_reset_stats() RETURNS void
    AS 'MODULE_PATHNAME', 'decide_reset_stats'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- Empties L2 and this backend's L1. Correctness never needs it (entries
-- carry their epoch); it is for measurements and debugging.
CREATE FUNCTION decide_cache_reset() RETURNS void
    AS 'MODULE_PATHNAME', 'decide_cache_reset'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION decide_stats(), decide_metrics(), decide_reset_stats(),
                       decide_cache_reset() FROM PUBLIC;
REVOKE ALL ON decide_stats FROM PUBLIC;
-- Monitoring may read; only admins reset.
GRANT EXECUTE ON FUNCTION decide_stats(), decide_metrics() TO decide_admin, pg_monitor;
GRANT SELECT ON decide_stats TO decide_admin, pg_monitor;
GRANT EXECUTE ON FUNCTION decide_reset_stats(), decide_cache_reset() TO decide_admin;
