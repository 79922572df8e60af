-- decide 0.2.0 -> 0.3.0: the decision log (decide.decisions, written by the
-- background worker from a shared-memory ring), keyset pagination over it,
-- decide_flush(), and log/worker columns in decide_stats.

\echo Use "ALTER EXTENSION decide UPDATE TO '0.3.0'" to load this file. \quit

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'decide_auditor') THEN
        CREATE ROLE decide_auditor NOLOGIN;
    END IF;
END
$roles$;

-- Partitioned by day (UTC); the worker creates partitions ahead of time
-- and drops those past decide.log_retention.  Partitions are ordinary
-- tables, so pg_dump saves them with their rows.
CREATE SEQUENCE decide.decisions_id_seq;
CREATE TABLE decide.decisions (
    id          bigint NOT NULL DEFAULT nextval('decide.decisions_id_seq'),
    decided_at  timestamptz NOT NULL,
    actor       text COLLATE "C" NOT NULL,
    action      text COLLATE "C" NOT NULL,
    resource    text COLLATE "C" NOT NULL,
    allowed     boolean NOT NULL,
    effect      decide.effect NOT NULL,
    policy      text,                       -- NULL: no policy matched
    risk_level  decide.risk_level,
    reason      text NOT NULL,
    epoch       bigint NOT NULL,
    source      text NOT NULL,              -- cache layer that answered, or 'miss'
    context     jsonb,                      -- only with decide.log_context = on
    PRIMARY KEY (decided_at, id)
) PARTITION BY RANGE (decided_at);
ALTER SEQUENCE decide.decisions_id_seq OWNED BY decide.decisions.id;
COMMENT ON TABLE decide.decisions IS 'decision log, written by the decide background worker';

-- The queries governance users run, each newest first: by time (the
-- primary key), by actor, denials, by risk level, by policy.
CREATE INDEX decisions_actor_idx ON decide.decisions (actor, decided_at, id);
CREATE INDEX decisions_denied_idx ON decide.decisions (decided_at, id) WHERE NOT allowed;
CREATE INDEX decisions_risk_idx ON decide.decisions (risk_level, decided_at, id);
CREATE INDEX decisions_policy_idx ON decide.decisions (policy, decided_at, id);

SELECT pg_catalog.pg_extension_config_dump('decide.decisions_id_seq', '');

-- Keyset pagination, newest first.  The cursor is the position of a row
-- (its decided_at and id); a page is the rows strictly after it in that
-- order, found through an index whatever the page number: unlike OFFSET,
-- whose cost grows with the rows it skips and whose pages shift when rows
-- arrive.  Pass the cursor of the last row of a page to get the next.
CREATE FUNCTION decide_decisions_page(
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
AS $$
DECLARE
    after_at timestamptz;
    after_id bigint;
    conditions text[] := '{}';
BEGIN
    IF page_size IS NULL OR page_size < 1 OR page_size > 10000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 10000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF after IS NOT NULL THEN
        BEGIN
            SELECT timestamptz 'epoch' + split_part(c, ':', 1)::bigint * interval '1 microsecond',
                   split_part(c, ':', 2)::bigint
              INTO STRICT after_at, after_id
              FROM convert_from(decode(after, 'base64'), 'UTF8') AS c
             WHERE c ~ '^-?[0-9]+:[0-9]+$';
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'invalid cursor'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass the row_cursor of a row returned by decide_decisions_page().';
        END;
        conditions := array_append(conditions, '(d.decided_at, d.id) < ($1, $2)');
    END IF;
    IF by_actor IS NOT NULL THEN
        conditions := array_append(conditions, 'd.actor = $3');
    END IF;
    IF by_allowed IS NOT NULL THEN
        conditions := array_append(conditions, CASE WHEN by_allowed THEN 'd.allowed' ELSE 'NOT d.allowed' END);
    END IF;
    IF by_risk_level IS NOT NULL THEN
        conditions := array_append(conditions, 'd.risk_level = $4');
    END IF;
    IF by_policy IS NOT NULL THEN
        conditions := array_append(conditions, 'd.policy = $5');
    END IF;
    IF since IS NOT NULL THEN
        conditions := array_append(conditions, 'd.decided_at >= $6');
    END IF;
    IF until IS NOT NULL THEN
        conditions := array_append(conditions, 'd.decided_at < $7');
    END IF;
    -- Only the filters given appear in the query, so each combination gets
    -- the plan of its own index.
    RETURN QUERY EXECUTE format(
        'SELECT d.id, d.decided_at, d.actor::text, d.action::text, d.resource::text, d.allowed,'
        '       d.effect, d.policy, d.risk_level, d.reason, d.epoch, d.source, d.context,'
        '       encode(convert_to(((extract(epoch FROM d.decided_at) * 1000000)::bigint)::text'
        '                         || '':'' || d.id, ''UTF8''), ''base64'')'
        '  FROM decide.decisions d %s'
        ' ORDER BY d.decided_at DESC, d.id DESC LIMIT $8',
        CASE WHEN cardinality(conditions) > 0
             THEN 'WHERE ' || array_to_string(conditions, ' AND ') ELSE '' END)
    USING after_at, after_id, by_actor, by_risk_level, by_policy, since, until, page_size;
END
$$;

-- The most recent decisions, for a quick look.
CREATE VIEW decide_recent_decisions AS
SELECT id, decided_at, actor, action, resource, allowed, effect, policy, risk_level, reason,
       epoch, source
  FROM decide.decisions
 ORDER BY decided_at DESC, id DESC
 LIMIT 100;

-- Waits until every decision logged so far is in decide.decisions.
CREATE FUNCTION decide_flush() RETURNS void
    AS 'MODULE_PATHNAME', 'decide_flush'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- decide_stats gains the log and worker columns (appended).
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
    OUT last_warm_ms double precision)
    AS 'MODULE_PATHNAME', 'decide_stats'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE VIEW decide_stats AS SELECT * FROM decide_stats();

REVOKE ALL ON FUNCTION decide_stats(), decide_flush(),
                       decide_decisions_page(text, integer, text, boolean, decide.risk_level, text,
                                             timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON decide_stats, decide_recent_decisions FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide_stats() TO decide_admin, pg_monitor;
GRANT SELECT ON decide_stats TO decide_admin, pg_monitor;
GRANT EXECUTE ON FUNCTION decide_flush() TO decide_admin;

-- The log is readable by admins and auditors only.
GRANT USAGE ON SCHEMA decide TO decide_auditor;
GRANT SELECT ON decide.decisions TO decide_admin, decide_auditor;
GRANT SELECT ON decide_recent_decisions TO decide_admin, decide_auditor;
GRANT EXECUTE ON FUNCTION decide_decisions_page(text, integer, text, boolean, decide.risk_level,
                                                text, timestamptz, timestamptz)
    TO decide_admin, decide_auditor;
