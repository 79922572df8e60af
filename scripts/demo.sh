#!/usr/bin/env bash
# A guided tour of decide on a throwaway PostgreSQL 15 cluster:
#
#   sudo bash scripts/demo.sh
#
# It installs the Debian packages it needs (`scripts/install-deps.sh build`:
# a compiler, PostgreSQL 15 and its server headers, hiredis), builds and
# installs the extension, starts a private cluster (scripts/cluster.sh:
# initdb into a temporary directory; Unix socket only, in that directory;
# port 54321 or $DECIDE_DEMO_PORT), loads scripts/sample_policies.sql and
# shows decisions: an allow, denies by override, by condition (failing
# closed) and by default, decide_explain(), a decide_many() batch, listings
# (decide_resources(), decide_actors()), freshness after a policy change,
# row-level security driven by decide_allowed() and decide_row_allowed(),
# and a short pgbench of decide() against SELECT 1. The cluster is stopped, by its postmaster's
# PID, and the directory removed on exit, also on failure or interruption.
#
# Environment:
#   DECIDE_DEMO_PORT      port number of the cluster's socket (default 54321)
#   DECIDE_DEMO_SECONDS   duration of each pgbench run (default 10)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PORT=${DECIDE_DEMO_PORT:-54321}
BENCH_SECONDS=${DECIDE_DEMO_SECONDS:-10}
START_TIME=$(date +%s)

case $PORT in ''|*[!0-9]*) echo "demo.sh: DECIDE_DEMO_PORT must be a number" >&2; exit 1 ;; esac
case $BENCH_SECONDS in ''|*[!0-9]*|0) echo "demo.sh: DECIDE_DEMO_SECONDS must be a positive number" >&2; exit 1 ;; esac
if [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 65535 ] || [ "$PORT" -eq 5432 ]; then
    echo "demo.sh: use a port in 1024-65535 other than 5432" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: must run as root (it installs packages and the extension); try: sudo bash $0" >&2
    exit 1
fi

section() { printf '\n\n######## %s\n\n' "$*"; }
note() { printf 'demo.sh: %s\n' "$*"; }

DC_NAME=demo.sh
DC_PG_CONFIG=$PG_CONFIG
# shellcheck source=scripts/cluster.sh
. "$REPO/scripts/cluster.sh"
dc_clean_env

# The work directory. On exit, also on failure or Ctrl-C, the traps of
# scripts/cluster.sh stop the cluster by its postmaster's PID, show the end
# of its log if something failed (show_server_log), and remove $TMP.
dc_workdir decide-demo
TMP=$DC_TMP
show_server_log() {
    if [ "$1" -ne 0 ] && [ -s "$DC_LOG" ]; then
        echo "----- last lines of the server log -----"
        tail -n 40 "$DC_LOG"
    fi
}
DC_AFTER_STOP=show_server_log

# ---------------------------------------------------------------------------
section "1. Dependencies"
# The build set only: a compiler, PostgreSQL 15 with its server headers, hiredis.
dc_install_deps build
BIN=$("$PG_CONFIG" --bindir)

# ---------------------------------------------------------------------------
section "2. Build and install the extension"
# Built in a copy of the working tree, so that the tree gets no artefacts;
# as a user builds it: warnings are shown, not fatal (the test command makes
# them fatal).
dc_copy_tree "$TMP/build"
if ! dc_build "$TMP/build" "$TMP/build.log"; then
    cat "$TMP/build.log"
    note "build failed"
    exit 1
fi
grep -E ': warning: ' "$TMP/build.log" || true
note "installed decide $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$TMP/build/decide.control") into $("$PG_CONFIG" --pkglibdir)"

# ---------------------------------------------------------------------------
section "3. A throwaway cluster"
dc_cluster_init "$TMP/cluster" "$PORT"
SOCK=$DC_SOCK
cat >>"$DC_DATA/postgresql.conf" <<EOF

# decide demo: private, disposable
shared_preload_libraries = 'decide'
max_connections = 20
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
log_min_messages = warning
EOF
dc_cluster_start
note "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') running as PID $DC_SERVER_PID, socket $SOCK/.s.PGSQL.$PORT (no TCP)"

psql_demo() {
    runuser -u postgres -- "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -d demo "$@"
}
runuser -u postgres -- "$BIN/createdb" -h "$SOCK" -p "$PORT" demo
psql_demo -c 'CREATE EXTENSION decide'
psql_demo <"$REPO/scripts/sample_policies.sql"
psql_demo <<'SQL'
\pset footer off
\echo 'CREATE EXTENSION decide; then scripts/sample_policies.sql loaded:'
SELECT (SELECT count(*) FROM decide.entities) AS entities,
       (SELECT count(*) FROM decide.policies) AS policies,
       (SELECT count(*) FROM decide.policies WHERE active) AS active_policies,
       decide_epoch() AS epoch;
\echo
\echo 'The policies, highest priority first:'
SELECT priority, effect, name, actor, action, resource, risk_level,
       CASE WHEN active THEN '' ELSE 'inactive' END AS state
  FROM decide.policies ORDER BY priority DESC, effect DESC, id;
SQL

# ---------------------------------------------------------------------------
section "4. Decisions"
psql_demo <<'SQL'
\pset footer off
\echo '-- Allow: legal counsel (alice -> team:legal -> role:legal-counsel) edits a contract'
\echo '-- (doc:3 -> folder:contracts -> folder:legal) from the office, with MFA.'
\echo 'SELECT * FROM decide(''user:alice'', ''write'', ''doc:3'', ''{"ip":"10.1.2.3","mfa":true}'');'
SELECT * FROM decide('user:alice', 'write', 'doc:3', '{"ip":"10.1.2.3","mfa":true}');

\echo '-- Deny by override: the same person reading her own secret term sheet is allowed'
\echo '-- at priority 10, but from a cafe the priority-50 network rule overrides it.'
\echo 'SELECT * FROM decide(''user:alice'', ''read'', ''doc:4'', ''{"ip":"203.0.113.7","mfa":true}'');'
SELECT * FROM decide('user:alice', 'read', 'doc:4', '{"ip":"203.0.113.7","mfa":true}');

\echo '-- Deny by override: an administrator (allowed everything at priority 20)'
\echo '-- cannot delete a document under legal hold (priority 100).'
\echo 'SELECT * FROM decide(''user:erin'', ''delete'', ''doc:7'', ''{"ip":"10.0.0.5","mfa":true}'');'
SELECT * FROM decide('user:erin', 'delete', 'doc:7', '{"ip":"10.0.0.5","mfa":true}');

\echo '-- Deny by condition, failing closed: finance data needs a numeric risk score'
\echo '-- below 70 (strict $.context.risk_score >= 70). With a score of 12 carol reads;'
\echo '-- with no score, or "low" instead of a number, the condition cannot be'
\echo '-- evaluated, and for a deny that counts as true.'
SELECT ctx AS context, d.allowed, d.policy, d.reason
  FROM unnest(ARRAY['{"ip":"10.0.0.9","mfa":true,"risk_score":12}',
                    '{"ip":"10.0.0.9","mfa":true}',
                    '{"ip":"10.0.0.9","mfa":true,"risk_score":"low"}']::jsonb[]) AS ctx,
       LATERAL decide('user:carol', 'read', 'doc:5', ctx) AS d;

\echo '-- Deny by condition, time-dependent ($now): frank''s contract ended in 2024.'
\echo 'SELECT * FROM decide(''user:frank'', ''read'', ''doc:1'');'
SELECT * FROM decide('user:frank', 'read', 'doc:1');

\echo '-- Default deny: nobody granted bob delete on the handbook, and user:zoe is unknown.'
\echo 'SELECT * FROM decide(''user:bob'', ''delete'', ''doc:1'');  SELECT * FROM decide(''user:zoe'', ''read'', ''doc:2'');'
SELECT * FROM decide('user:bob', 'delete', 'doc:1');
SELECT * FROM decide('user:zoe', 'read', 'doc:2');
SQL

# ---------------------------------------------------------------------------
section "5. Why? decide_explain()"
psql_demo <<'SQL'
\pset footer off
\echo '-- Alice, owner of doc:10 (board minutes, folder:records), tries to delete it.'
\echo '-- The policies that match the request (decide_explain() lists the others too,'
\echo '-- with the pattern that did not match):'
\echo 'SELECT rank, policy, effect, priority, condition, decisive, note'
\echo '  FROM decide_explain(''user:alice'', ''delete'', ''doc:10'', ''{"ip":"10.1.2.3","mfa":true}'')'
\echo ' WHERE actor_matched AND action_matched AND resource_matched;'
SELECT rank, policy, effect, priority, condition, decisive, note
  FROM decide_explain('user:alice', 'delete', 'doc:10', '{"ip":"10.1.2.3","mfa":true}')
 WHERE actor_matched AND action_matched AND resource_matched;
SQL

# ---------------------------------------------------------------------------
section "6. A batch, and listings: decide_many(), decide_resources(), decide_actors()"
psql_demo <<'SQL'
\pset footer off
\echo 'SELECT * FROM decide_many(actors, actions, resources, contexts);'
SELECT * FROM decide_many(
    ARRAY['user:bob', 'user:bob', 'user:bob', 'user:mallory', 'svc:backup-agent', 'user:bob'],
    ARRAY['read',     'read',     'approve',  'read',         'delete',           'read'],
    ARRAY['doc:2',    'doc:6',    'doc:3',    'doc:1',        'doc:2',            'doc:8'],
    ARRAY['{}',
          '{"ip":"10.0.0.9","mfa":true,"risk_score":5}',
          '{"ip":"10.0.0.9","mfa":true}',
          '{}', '{}', '{}']::jsonb[]);
\echo '-- Every document alice may read from the office network, and who may delete doc:10:'
\echo 'SELECT * FROM decide_resources(''user:alice'', ''read'', ''{"ip":"10.1.2.3","mfa":true}'', prefix => ''doc:'');'
SELECT * FROM decide_resources('user:alice', 'read', '{"ip":"10.1.2.3","mfa":true}', prefix => 'doc:');
\echo 'SELECT * FROM decide_actors(''delete'', ''doc:10'', ''{"ip":"10.1.2.3","mfa":true}'');'
SELECT * FROM decide_actors('delete', 'doc:10', '{"ip":"10.1.2.3","mfa":true}');
SQL

# ---------------------------------------------------------------------------
section "7. Freshness: a policy change applies to the next decision"
psql_demo <<'SQL'
\pset footer off
\echo '-- Before: alice reads the secret term sheet from a cafe.'
SELECT allowed, policy, epoch FROM decide('user:alice', 'read', 'doc:4', '{"ip":"203.0.113.7","mfa":true}');
\echo 'UPDATE decide.policies SET active = false WHERE name = ''secret-needs-corporate-network'';'
UPDATE decide.policies SET active = false WHERE name = 'secret-needs-corporate-network';
\echo '-- After (a new epoch):'
SELECT allowed, policy, epoch FROM decide('user:alice', 'read', 'doc:4', '{"ip":"203.0.113.7","mfa":true}');
\echo '-- And back:'
UPDATE decide.policies SET active = true WHERE name = 'secret-needs-corporate-network';
SELECT allowed, policy, epoch FROM decide('user:alice', 'read', 'doc:4', '{"ip":"203.0.113.7","mfa":true}');
SQL

# ---------------------------------------------------------------------------
section "8. Row-level security with decide_allowed() and decide_row_allowed()"
psql_demo <<'SQL'
\pset footer off
CREATE TABLE docs (id integer PRIMARY KEY, title text NOT NULL);
INSERT INTO docs
SELECT substr(uid, 5)::integer, attrs->>'title'
  FROM decide.entities WHERE uid ~ '^doc:[0-9]+$';
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY docs_read ON docs FOR SELECT
    USING (decide_allowed(current_setting('app.user'), 'read', 'doc:' || id));
-- The decision functions are granted to decide_user (and decide_admin) only.
CREATE ROLE demo_app NOLOGIN;
GRANT decide_user TO demo_app;
GRANT SELECT ON docs TO demo_app;
\echo 'CREATE TABLE docs (id integer PRIMARY KEY, title text NOT NULL);   -- doc:1 .. doc:11'
\echo 'ALTER TABLE docs ENABLE ROW LEVEL SECURITY;'
\echo 'CREATE POLICY docs_read ON docs FOR SELECT'
\echo '    USING (decide_allowed(current_setting(''app.user''), ''read'', ''doc:'' || id));'
\echo 'CREATE ROLE demo_app NOLOGIN; GRANT decide_user TO demo_app; GRANT SELECT ON docs TO demo_app;'
\echo
SET ROLE demo_app;
\echo '-- No MFA, no IP in this context: public, internal and own-department documents.'
\echo '-- SET ROLE demo_app; SET "app.user" = ''user:alice''; SELECT * FROM docs ORDER BY id;'
SET "app.user" = 'user:alice';
SELECT * FROM docs ORDER BY id;
\echo '-- SET "app.user" = ''user:carol'';   (finance, not legal: no restricted legal guide)'
SET "app.user" = 'user:carol';
SELECT * FROM docs ORDER BY id;
\echo '-- SET "app.user" = ''user:mallory'';   (suspended)'
SET "app.user" = 'user:mallory';
SELECT count(*) AS visible_rows FROM docs;
\echo '-- The same rows through decide_row_allowed(): a listing''s plan kept for the query, not logged.'
RESET ROLE;
DROP POLICY docs_read ON docs;
CREATE POLICY docs_read ON docs FOR SELECT
    USING (decide_row_allowed((SELECT current_setting('app.user')), 'read', 'doc:', id));
SET ROLE demo_app;
\echo 'CREATE POLICY docs_read ON docs FOR SELECT'
\echo '    USING (decide_row_allowed((SELECT current_setting(''app.user'')), ''read'', ''doc:'', id));'
\echo '-- SET "app.user" = ''user:alice'';'
SET "app.user" = 'user:alice';
SELECT * FROM docs ORDER BY id;
\echo '-- demo_app may ask for decisions, but not read the policies or explain them:'
SELECT has_function_privilege('decide(text,text,text,jsonb)', 'EXECUTE') AS may_call_decide,
       has_schema_privilege('decide', 'USAGE') AS may_read_policies,
       has_function_privilege('decide_explain(text,text,text,jsonb)', 'EXECUTE') AS may_explain;
RESET ROLE;
SQL

# ---------------------------------------------------------------------------
section "9. pgbench: decide() against SELECT 1 (${BENCH_SECONDS}s each, 2 clients, -M prepared)"
cat >"$TMP/select1.sql" <<'EOF'
SELECT 1;
EOF
# pgbench reads ":name" as a variable, even inside quotes: the actor comes
# from -D, and no colon in the script is followed by a letter.
cat >"$TMP/decide.sql" <<'EOF'
\set d random(1, 10)
SELECT * FROM decide(:actor, 'read', 'doc:' || :d, '{"ip": "10.1.2.3", "mfa": true}');
EOF
chown postgres: "$TMP"/*.sql
echo "baseline script:"
sed 's/^/    /' "$TMP/select1.sql"
echo "decide() script (pgbench -D actor=user:alice):"
sed 's/^/    /' "$TMP/decide.sql"
echo
bench() { # bench <script> -> "tps latency_ms"
    local out
    out=$(runuser -u postgres -- "$BIN/pgbench" -n -M prepared -c 2 -j 2 -T "$BENCH_SECONDS" \
        -D actor=user:alice -h "$SOCK" -p "$PORT" -f "$1" demo 2>&1) || { echo "$out" >&2; return 1; }
    local tps lat
    tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | tail -n 1)
    lat=$(sed -nE 's/^latency average = ([0-9.]+) ms.*/\1/p' <<<"$out")
    if [ -z "$tps" ]; then
        echo "$out" >&2
        return 1
    fi
    echo "$tps ${lat:-?}"
}
base=$(bench "$TMP/select1.sql")
dec=$(bench "$TMP/decide.sql")
read -r base_tps base_lat <<<"$base"
read -r dec_tps dec_lat <<<"$dec"
awk -v b="$base_tps" -v bl="$base_lat" -v d="$dec_tps" -v dl="$dec_lat" 'BEGIN {
    printf "%-10s %10.0f tps   %7s ms average latency\n", "SELECT 1", b, bl
    printf "%-10s %10.0f tps   %7s ms average latency\n", "decide()", d, dl
    if (b > 0)
        printf "ratio      decide() / SELECT 1 = %.2f  (decide() runs at %.0f%% of the SELECT 1 rate)\n", d / b, 100 * d / b
}'

# ---------------------------------------------------------------------------
section "10. Statistics, metrics and the decision log"
psql_demo <<'SQL'
\echo '-- decide_stats: every decision above, by cache layer, and latency'
SELECT decisions, allowed, denied, round(hit_ratio::numeric, 3) AS hit_ratio,
       l1_hits, l2_hits, l1_misses - l2_hits AS evaluated, epoch, policy_reloads,
       round(latency_p50_us::numeric, 1) AS p50_us, round(latency_p99_us::numeric, 1) AS p99_us,
       log_enqueued, log_flushed, log_dropped, worker_pid IS NOT NULL AS worker_running
  FROM decide_stats;
\echo '-- decide_metrics(), Prometheus text format (first lines)'
SELECT line FROM regexp_split_to_table(decide_metrics(), E'\n') WITH ORDINALITY AS t(line, n)
 WHERE n <= 12 ORDER BY n;
\echo '-- the decision log, newest first (decide_flush() waits for the worker)'
SELECT decide_flush();
SELECT decided_at::time(0) AS at, actor, action, resource, effect, policy, risk_level, source
  FROM decide_decisions_page(NULL, 8);
SELECT count(*) FILTER (WHERE NOT allowed) AS logged_denials, count(*) AS logged FROM decide.decisions;
SQL

# ---------------------------------------------------------------------------
section "Done"
note "finished in $(( $(date +%s) - START_TIME ))s; stopping the cluster and removing $TMP"
