#!/usr/bin/env bash
# bench/profile.sh — where the time of one decision goes, by callgrind.
#
#   sudo bash bench/profile.sh [--policies N] [--calls N] [--rev REV] [--out DIR]
#                              [--only uncached,cached,rls,stmt_select1,stmt_hot,stmt_hot_allowed]
#
# perf needs hardware counters that virtual machines often lack; callgrind
# (valgrind) runs anywhere and counts instructions exactly, the same on
# every run. It profiles a single-user backend (postgres --single): one
# process, no client, so the whole statement is in the profile, and
# --toggle-collect limits the counts to the calls of one C function and
# what it calls.
#
# Like bench/run.sh it installs what it needs (`scripts/install-deps.sh
# profile`: the build set and valgrind), builds decide (working tree, or
# --rev) into a private copy of PostgreSQL 15, creates a throwaway cluster
# (scripts/cluster.sh: port 54359, Unix socket in a temporary directory; it
# is stopped by its PID, also on failure or Ctrl-C) and generates the data
# set of the scale sweep:
# N policies (default 10000), 10000 actors in 50 roles, 50000 resources.
# Then, with the server stopped, it runs these profiles in single-user mode:
#
#   uncached  decide() with decide.cache = off and a warm entity cache: the
#             evaluator's own cost (the "µs per decision" of bench/micro.sql);
#   cached    decide() on 100 repeated requests with the caches on: what a
#             cache hit still costs (the hot workload);
#   rls       decide_row_allowed() called by an RLS policy for each of the
#             100,000 rows of bench.docs, as bench/run.sh's rls workload;
#   stmt_select1, stmt_hot, stmt_hot_allowed
#             whole statements (EXECUTE of a prepared SELECT 1, of a prepared
#             cached decide() and of the same through decide_allowed()),
#             counted from standard_ProcessUtility on: what a decision costs
#             next to the rest of a statement.
#
# For each, DIR gets callgrind.<name>.out (open with kcachegrind or
# callgrind_annotate) and callgrind.<name>.txt: instructions per call and
# the functions by inclusive and by self cost. Takes 2-4 minutes.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PORT=54359
POLICIES=10000
CALLS=20000
REV=
OUT=
ONLY=uncached,cached,rls,stmt_select1,stmt_hot,stmt_hot_allowed

die() { printf 'profile.sh: %s\n' "$*" >&2; exit 1; }
note() { printf 'profile.sh: %s\n' "$*"; }
while [ $# -gt 0 ]; do
    case $1 in
        --policies) POLICIES=$2; shift ;;
        --calls) CALLS=$2; shift ;;
        --rev) REV=$2; shift ;;
        --out) OUT=$2; shift ;;
        --only) ONLY=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option: $1" ;;
    esac
    shift
done
case $POLICIES$CALLS in *[!0-9]*) die "--policies and --calls take numbers" ;; esac
[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages); try: sudo bash $0"

DC_NAME=profile.sh
DC_PG_CONFIG=$PG_CONFIG
# shellcheck source=scripts/cluster.sh
. "$REPO/scripts/cluster.sh"
dc_clean_env
[ -n "$OUT" ] || OUT=$BENCH/results/profile-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The work directory. On exit, also on failure or Ctrl-C, the traps of
# scripts/cluster.sh stop the cluster by its postmaster's PID, if it runs,
# and remove $TMP.
dc_workdir decide-profile
TMP=$DC_TMP

dc_install_deps profile
command -v valgrind >/dev/null || die "valgrind is missing (scripts/install-deps.sh profile installs it)"

# Build into a private copy of PostgreSQL (see bench/run.sh for why).
dc_copy_tree "$TMP/build" "$REV" || die "cannot export ${REV:+git revision }${REV:-the working tree}"
built_from=$DC_BUILT_FROM
dc_private_pg "$TMP/pg"
dc_build "$TMP/build" "$TMP/build.log" DESTDIR="$DC_PG_ROOT" ||
    { cat "$TMP/build.log"; die "build failed"; }
BIN=$DC_BIN
note "built decide from the $built_from"

# valgrind, as postgres, writes its profiles here.
chown postgres: "$TMP"
dc_cluster_init "$TMP/cluster" "$PORT"
DATA=$DC_DATA
SOCK=$DC_SOCK
cat >>"$DATA/postgresql.conf" <<EOF
shared_preload_libraries = 'decide'
shared_buffers = 256MB
synchronous_commit = off
jit = off
max_parallel_workers_per_gather = 0
EOF
dc_cluster_start
psql_db() { runuser -u postgres -- "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" "$@"; }
runuser -u postgres -- "$BIN/createdb" -h "$SOCK" -p "$PORT" bench
psql_db -d bench -c 'CREATE EXTENSION decide'
psql_db -d bench -v policies="$POLICIES" -v actors=10000 -v roles=50 -v resources=50000 \
    <"$BENCH/generate.sql" >/dev/null
psql_db -d bench <"$BENCH/setup.sql" >/dev/null
psql_db -d bench -c 'VACUUM ANALYZE' >/dev/null
has_cache_guc=$(psql_db -d bench -At -c "SELECT current_setting('decide.cache', true) IS NOT NULL")
# The profiles run single-user backends on the data directory: the server
# must be down.
dc_cluster_stop
note "data set: $POLICIES policies, 10000 actors in 50 roles, 50000 resources; decide.cache GUC: $has_cache_guc"

# The request of key g, as in bench/micro.sql.
REQ="'user:' || mod(g * 7919, 10000),
     (ARRAY['read','list','export','comment','audit','write','delete','share','approve','archive'])[1 + mod(g, 10)],
     'doc:' || mod(g * 104729, 50000),
     (ARRAY['{\"ip\":\"10.1.2.3\"}', '{\"ip\":\"203.0.113.9\"}']::jsonb[])[1 + mod(g / 10, 2)]"
cache_off=
[ "$has_cache_guc" = t ] && cache_off="SET decide.cache = off;"

# The function lines of callgrind_annotate, with paths shortened.
annotate() { # annotate <inclusive: yes|no> <callgrind.out>
    callgrind_annotate --inclusive="$1" --threshold=99 "$2" 2>/dev/null |
        sed -n '/file:function/,$p' | sed '1,2d' |
        sed -E "s#$TMP/build/##; s# \[[^]]*/([^/]+)\]\$# [\1]#; s#\./[^:]*/##" || true
}

# profile <name> <function to count> <SQL, statements ending with ";" + blank line>
profile() {
    local name=$1 fn=$2 sql=$3
    case ",$ONLY," in *",$name,"*) ;; *) return 0 ;; esac
    note "profiling $name (instructions inside $fn)"
    printf '%s\n' "$sql" >"$TMP/$name.sql"
    chown postgres: "$TMP/$name.sql"
    (cd "$TMP" && runuser -u postgres -- valgrind --tool=callgrind --quiet \
        --callgrind-out-file="$TMP/callgrind.$name.out" --toggle-collect="$fn" \
        --separate-threads=no "$BIN/postgres" --single -j -D "$DATA" \
        -c shared_preload_libraries=decide -c jit=off -c max_parallel_workers_per_gather=0 \
        bench <"$TMP/$name.sql") >"$TMP/$name.log" 2>&1 ||
        { cat "$TMP/$name.log"; die "callgrind run $name failed"; }
    if grep -q 'ERROR' "$TMP/$name.log"; then
        cat "$TMP/$name.log"
        die "an SQL error in profile $name"
    fi
    cp "$TMP/callgrind.$name.out" "$OUT/"
    local calls=$4 total
    total=$(callgrind_annotate "$TMP/callgrind.$name.out" 2>/dev/null |
        sed -nE 's/^ *([0-9,]+) +\(100\.0%\) +PROGRAM TOTALS.*/\1/p' | tr -d ,)
    {
        echo "profile: $name — instructions counted inside $fn, $calls calls"
        echo "decide built from the $built_from; $POLICIES policies"
        [ -n "$total" ] && awk -v t="$total" -v c="$calls" \
            'BEGIN { printf "instructions per call: %.0f (total %.0f)\n", t / c, t }'
        echo
        echo "(??? 0x...: static functions of the stripped postgres binary)"
        echo
        echo "=== inclusive: a function and everything it calls (callers of $fn left out) ==="
        annotate yes "$TMP/callgrind.$name.out" | grep -vE '\((100\.0|99\.9[0-9])%\)' | sed -n '1,40p'
        echo
        echo "=== self: the function's own instructions ==="
        annotate no "$TMP/callgrind.$name.out" | sed -n '1,30p'
    } >"$OUT/callgrind.$name.txt"
    sed -n '1,3p' "$OUT/callgrind.$name.txt"
}

# 1. Uncached: a first pass through decide_allowed() compiles the policy set
# and fills the entity cache; only the second pass, through decide(), counts.
profile uncached decide_decide "$cache_off

SELECT count(*) FILTER (WHERE decide_allowed($REQ)) FROM generate_series(1::bigint, $CALLS) AS g;

SELECT count(*) FILTER (WHERE d.allowed) FROM generate_series(1::bigint, $CALLS) AS g
 CROSS JOIN LATERAL decide($REQ) AS d;
" "$CALLS"

# 2. Cached: 100 distinct requests; the first pass (decide_allowed) fills
# the caches, the second (decide(), counted) hits them.
profile cached decide_decide "SELECT count(*) FILTER (WHERE decide_allowed($(sed 's/\bg\b/(1 + mod(g, 100))/g' <<<"$REQ"))) FROM generate_series(1::bigint, $CALLS) AS g;

SELECT count(*) FILTER (WHERE d.allowed) FROM generate_series(1::bigint, $CALLS) AS g
 CROSS JOIN LATERAL decide($(sed 's/\bg\b/(1 + mod(g, 100))/g' <<<"$REQ")) AS d;
" "$CALLS"

# 3. RLS: the policy on bench.docs calls decide_row_allowed() for each of
# its 100,000 rows; read it twice as a decide_user member (the second read
# counted as well: both are what the rls workload measures).
profile rls decide_row_allowed "SET ROLE bench_reader;

SELECT set_config('app.user', 'user:42', false);

SELECT count(*) FROM bench.docs;

SELECT count(*) FROM bench.docs;
" 200000

# 4-6. Whole statements, as a client sends them: EXECUTE of a prepared
# SELECT 1, of a prepared hot decide() (caches on, 100 requests) and of the
# same through decide_allowed(), each EXECUTE counted from
# standard_ProcessUtility on (plan cache, executor start, run and end, the
# result row; exec_simple_query itself is static in the stripped binary),
# to set what a cached decision costs beside the rest of a statement. The
# PREPARE is counted too (once); the plain SELECT that compiles the policy
# set and fills the caches is not.
STATEMENTS=5000
{
    echo "PREPARE s(int) AS SELECT 1;"
    echo
    for i in $(seq "$STATEMENTS"); do printf 'EXECUTE s(%d);\n\n' "$i"; done
} >"$TMP/stmt_select1.body"
profile stmt_select1 standard_ProcessUtility "$(cat "$TMP/stmt_select1.body")" "$STATEMENTS"
{
    echo "PREPARE d(bigint) AS SELECT * FROM decide('user:' || mod(\$1 * 7919, 10000),"
    echo "    (ARRAY['read','list','export','comment','audit','write','delete','share','approve','archive'])[1 + mod(\$1, 10)],"
    echo "    'doc:' || mod(\$1 * 104729, 50000),"
    echo "    (ARRAY['{\"ip\":\"10.1.2.3\"}', '{\"ip\":\"203.0.113.9\"}']::jsonb[])[1 + mod(\$1 / 10, 2)]);"
    echo
    echo "SELECT count(*) FROM generate_series(1::bigint, 100) AS g CROSS JOIN LATERAL decide($REQ) AS x;"
    echo
    for i in $(seq "$STATEMENTS"); do printf 'EXECUTE d(%d);\n\n' $((1 + i % 100)); done
} >"$TMP/stmt_hot.body"
profile stmt_hot standard_ProcessUtility "$(cat "$TMP/stmt_hot.body")" "$STATEMENTS"
sed 's/^PREPARE d(bigint) AS SELECT \* FROM decide(/PREPARE d(bigint) AS SELECT decide_allowed(/' \
    "$TMP/stmt_hot.body" >"$TMP/stmt_hot_allowed.body"
profile stmt_hot_allowed standard_ProcessUtility "$(cat "$TMP/stmt_hot_allowed.body")" "$STATEMENTS"

note "profiles in $OUT"
