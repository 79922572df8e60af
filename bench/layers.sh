#!/usr/bin/env bash
# bench/layers.sh — the speed targets of the cache, log and Redis layers,
# each measured beside its baseline in one invocation:
#
#   sudo bash bench/layers.sh [--quick] [--out FILE] [--only hot,zipf,...]
#
#   hot        cached decide_allowed() vs SELECT 1, pgbench -M prepared, 2 clients;
#              and the same statement with a built-in function that does
#              nothing in place of decide_allowed(): decide's own share of the gap;
#              each over whole slices and in the steady state (each slice's
#              first second, when new backends warm up, left out)
#   zipf       Zipf (s = 1.1) over 1,000,000 distinct requests with the default cache
#              sizes: hit ratios after a warm-up
#   p99        8 clients on the Zipf mix, decide_allowed() and decide(), beside SELECT 1:
#              p50 and p99 latency from pgbench's per-transaction log
#   logging    the hot workload with decide.log = 'all', 'deny' and 'none', with
#              2 clients (they and the worker share the 2 cores) and with 1
#              (the worker has a core of its own)
#   recovery   hit ratio every 100 ms around a policy change under load (8 clients)
#   redis      hot TPS with Redis healthy vs SELECT 1; Zipf TPS with Redis stopped
#              (breaker open) vs Redis not configured
#   logdrain   the worker's CPU per logged row, alone: the worker is stopped
#              (SIGSTOP) while 150,000 hot decisions fill its ring, then let go;
#              its CPU time until decide_flush() returns, over the rows it wrote
#   keyset     decide_decisions_page(): page 10,000 vs page 1 over a 10,000,000-row log
#   replay     decide_replay() of 100,000 logged decisions (Zipf mix) under an
#              uncommitted policy change, vs deciding the same requests with the
#              caches off
#   verify     decide_verify_log(), then decide_verify_log_keys(), over
#              1,000,000 logged decisions (hot mix, written by the worker) vs
#              reading the same rows in id order
#   uncached   decide() with the caches off on a realistic set (10,000 policies,
#              100,000 actors, 100,000 resources: every request fetches its
#              entities) vs SELECT 1, 2 clients
#   connect    a new connection per decide_allowed() (pgbench -C) vs per SELECT 1,
#              2 clients, at 10,000 and then 100,000 policies (the compiled set
#              is shared: a new backend attaches to it instead of compiling),
#              with the number of builds the run took
#   change     at 100,000 policies, 8 clients on the Zipf mix: a policy change
#              4 s in; builds of the new set, and p99 latency over the 10 s after
#              the change
#   listing    a row-level security policy through decide_row_allowed() reads
#              100,000 rows (10,000 policies, a new actor every read) vs the same
#              read without RLS, 1 client (and the listing form, for information);
#              listing 1,001 allowed entities among 1,000,000 vs among 100,000;
#              the first page of 100 vs a deep one (own databases)
#   (uncached, connect and change replace the data set: they run last.)
#
# It installs the packages it needs (`scripts/install-deps.sh layers`: the
# build set and redis-server), builds decide from the working tree into a
# private copy of PostgreSQL 15 (as bench/run.sh does: the system's
# installation is left alone), starts its own cluster (scripts/cluster.sh:
# port 54356, Unix socket in a temporary directory only) and its own
# redis-server (127.0.0.1, port 56356), and stops both by PID on exit, also
# on failure or Ctrl-C.  Ratios, not absolute times, are what to compare
# across machines.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PORT=54356
REDIS_PORT=56356
SECONDS_PER_RUN=10
ROUNDS=6          # a ratio is the median of this many alternating pairs of slices
SLICE=3           # seconds
LOG_SLICE=8       # seconds, for the logging section (see logging())
ROWS=10000000
WARM_REQUESTS=12000000
OUT=""
ONLY=""
while [ $# -gt 0 ]; do
    case $1 in
        --quick) SECONDS_PER_RUN=3; ROUNDS=3; SLICE=2; LOG_SLICE=3; ROWS=1000000; WARM_REQUESTS=1000000; shift ;;
        --out) OUT=$2; shift 2 ;;
        --only) ONLY=",$2,"; shift 2 ;;
        *) echo "usage: $0 [--quick] [--out FILE] [--only hot,zipf,p99,logging,logdrain,recovery,redis,keyset,replay,verify,uncached,connect,change,listing]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)" >&2; exit 1; }

DC_NAME=layers.sh
DC_PG_CONFIG=$PG_CONFIG
# shellcheck source=scripts/cluster.sh
. "$REPO/scripts/cluster.sh"
dc_clean_env
dc_install_deps layers >/dev/null
# The work directory. On exit, also on failure or Ctrl-C, the traps of
# scripts/cluster.sh stop Redis (stop_redis), then the cluster, each by its
# PID, and remove $WORK.
dc_workdir decide-layers
WORK=$DC_TMP
chown postgres "$WORK"    # pgbench and psql write their logs and output here
REDIS_PID=""
stop_redis() {
    if [ -n "$REDIS_PID" ]; then
        kill -CONT "$REDIS_PID" 2>/dev/null
        kill "$REDIS_PID" 2>/dev/null
    fi
    return 0
}
WORKER=""
# A worker left stopped by logdrain would hold up the server's shutdown.
before_stop() {
    [ -z "$WORKER" ] || kill -CONT "$WORKER" 2>/dev/null
    stop_redis
}
DC_BEFORE_STOP=before_stop

echo "== building decide into a private copy of PostgreSQL"
dc_copy_tree "$WORK/src"
dc_private_pg "$WORK/pg"
dc_build "$WORK/src" "$WORK/build.log" DESTDIR="$DC_PG_ROOT" || { cat "$WORK/build.log"; exit 1; }
PGBIN=$DC_BIN

echo "== starting a cluster and loading 10,000 policies, 10,000 actors, 50,000 resources"
dc_cluster_init "$WORK/cluster" "$PORT"
SOCK=$DC_SOCK
cat >> "$DC_DATA/postgresql.conf" <<EOF
max_connections = 100
shared_buffers = 512MB
synchronous_commit = off
shared_preload_libraries = 'decide'
decide.log = 'none'
EOF
dc_cluster_start
psql_() { runuser -u postgres -- "$PGBIN/psql" -h "$SOCK" -p $PORT -X -q -v ON_ERROR_STOP=1 -At "$@" postgres; }
pgb() { runuser -u postgres -- "$PGBIN/pgbench" -h "$SOCK" -p $PORT -n -M prepared "$@" postgres; }
setting() { psql_ -c "ALTER SYSTEM SET $1 = $2" -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.3; }
reset_setting() { psql_ -c "ALTER SYSTEM RESET $1" -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.3; }
psql_ -c "CREATE EXTENSION decide"
psql_ -v policies=10000 -v actors=10000 -v roles=50 -v resources=50000 -f "$REPO/bench/generate.sql" >/dev/null

cat > "$WORK/select1.sql" <<'EOF'
SELECT 1;
EOF
cat > "$WORK/hot.sql" <<'EOF'
\set a random(1, 50)
\set r random(1, 60)
SELECT decide_allowed('user:' || :a, 'read', 'doc:' || :r);
EOF
# The same statement, arguments and all, with a built-in function that
# only looks at them (num_nulls) in place of decide_allowed().
cat > "$WORK/hot_call.sql" <<'EOF'
\set a random(1, 50)
\set r random(1, 60)
SELECT num_nulls('user:' || :a, 'read'::text, 'doc:' || :r, '{}'::jsonb) = 0;
EOF
# 1,000,000 distinct requests (10,000 actors x 100 resources), Zipf s = 1.1.
cat > "$WORK/zipf.sql" <<'EOF'
\set k random_zipfian(1, 1000000, 1.1)
SELECT decide_allowed('user:' || (:k % 10000), 'read', 'doc:' || (:k / 10000));
EOF
# The same requests through decide() and its 7-column row.
cat > "$WORK/zipf_row.sql" <<'EOF'
\set k random_zipfian(1, 1000000, 1.1)
SELECT * FROM decide('user:' || (:k % 10000), 'read', 'doc:' || (:k / 10000));
EOF
# The same distribution, 100 requests a call through decide_many(): the
# warm-up of the hit-ratio measurement (the measured part uses zipf.sql).
{
    for i in $(seq 1 100); do echo "\\set k$i random_zipfian(1, 1000000, 1.1)"; done
    printf 'SELECT count(*) FROM decide_many(ARRAY['
    for i in $(seq 1 100); do printf "%s'user:' || (:k$i %% 10000)" "$([ "$i" = 1 ] || echo ,)"; done
    printf "], array_fill('read'::text, ARRAY[100]), ARRAY["
    for i in $(seq 1 100); do printf "%s'doc:' || (:k$i / 10000)" "$([ "$i" = 1 ] || echo ,)"; done
    printf ']);\n'
} > "$WORK/zipf_batch.sql"
chown postgres "$WORK"/*.sql

tps() { pgb "$@" | awk '/^tps/ { print $3 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
# The median of the numbers on standard input, one a line.
# Wall seconds of a psql script.
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    runuser -u postgres -- "$PGBIN/psql" -h "$SOCK" -p $PORT -X -q -At -v ON_ERROR_STOP=1 -f "$1" postgres >/dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mean() { awk '{ s += $1 } END { printf "%.0f", NR ? s / NR : 0 }'; }
# tps_split <pgbench args>: "whole steady": pgbench's TPS over the slice, and
# the mean of its per-second progress after the first second. A new
# backend's first second is not a cached decision's cost: it compiles the
# policy set (35 ms at 10k policies) and takes a page fault on every page of
# the shared cache it touches for the first time (a forked process maps
# shared memory page by page as it touches it): by hand, a new backend's
# first 3,000 distinct cached requests took 1,930 faults and 75 ms, the
# same 3,000 again 2 ms.
tps_split() {
    pgb -P 1 "$@" 2>&1 | awk '/^progress:/ && $2 + 0 > 1 { s += $4; n++ }
                              /^tps/ { whole = $3 }
                              END { printf "%s %.1f\n", whole, n ? s / n : 0 }'
}
# paired <script a> <script b> <clients>: ROUNDS rounds of a slice of a then
# one of b, SLICE seconds each; prints "mean TPS of a, of b, median of the
# rounds' ratios a/b", then the same three for the steady state (tps_split).
# The machine's speed drifts by more than 10% over a minute (other tenants
# of the VM host); a ratio within a round is what it leaves alone, and the
# median sets aside a round it disturbed.
paired() {
    local a=$1 b=$2 clients=$3 i wa sa wb sb
    : > "$WORK/pairs"
    for i in $(seq "$ROUNDS"); do
        read -r wa sa <<<"$(tps_split -c "$clients" -j 2 -T "$SLICE" -f "$a")"
        read -r wb sb <<<"$(tps_split -c "$clients" -j 2 -T "$SLICE" -f "$b")"
        echo "$wa $wb $(ratio "$wa" "$wb") $sa $sb $(ratio "$sa" "$sb")" >> "$WORK/pairs"
    done
    local c out=""
    for c in 1 2; do out+="$(cut -d' ' -f$c "$WORK/pairs" | mean) "; done
    out+="$(cut -d' ' -f3 "$WORK/pairs" | median) "
    for c in 4 5; do out+="$(cut -d' ' -f$c "$WORK/pairs" | mean) "; done
    echo "$out$(cut -d' ' -f6 "$WORK/pairs" | median)"
}
stat() { psql_ -c "SELECT $1 FROM decide_stats"; }
want() { [ -z "$ONLY" ] || [[ $ONLY == *",$1,"* ]]; }
RESULTS=""
add() { RESULTS+="$1"$'\n'; echo "$1"; }

if want hot; then
echo "== hot: cached decisions vs SELECT 1 (2 clients)"
tps -c 2 -j 2 -T 2 -f "$WORK/hot.sql" >/dev/null    # fill the caches
read -r HOT ONE HOT_RATIO HOT_S ONE_S HOT_S_RATIO <<<"$(paired "$WORK/hot.sql" "$WORK/select1.sql" 2)"
add "| hot, 2 clients | decide_allowed $HOT TPS | SELECT 1 $ONE TPS | ratio $HOT_RATIO | target >= 0.9 |"
add "| hot, 2 clients, steady state (each slice's first second left out) | decide_allowed $HOT_S TPS | SELECT 1 $ONE_S TPS | ratio $HOT_S_RATIO | target >= 0.9 |"
read -r CALL CALL_ONE CALL_RATIO CALL_S CALL_ONE_S CALL_S_RATIO <<<"$(paired "$WORK/hot_call.sql" "$WORK/select1.sql" 2)"
add "| the same statement with num_nulls() in place of decide_allowed(), 2 clients | $CALL TPS | SELECT 1 $CALL_ONE TPS | ratio $CALL_RATIO | decide's own share: $(awk -v a="$CALL_RATIO" -v b="$HOT_RATIO" 'BEGIN { printf "%.3f", a - b }') of SELECT 1's rate |"
add "| the same, steady state | $CALL_S TPS | SELECT 1 $CALL_ONE_S TPS | ratio $CALL_S_RATIO | decide's own share: $(awk -v a="$CALL_S_RATIO" -v b="$HOT_S_RATIO" 'BEGIN { printf "%.3f", a - b }') of SELECT 1's rate |"
fi

if want zipf; then
echo "== zipf: hit ratio with the default cache sizes"
# Steady state: with 1.1 skew over 1,000,000 keys, a key not seen yet is
# still a miss after millions of requests (an unbounded cache serving
# 1M requests hits 90% of them, 4M: 95%), so the warm-up replays the same
# distribution, 100 requests a call, until WARM_REQUESTS have been decided.
psql_ -c "SELECT decide_reset_stats()" >/dev/null
warm_calls=$((WARM_REQUESTS / 100 / 2))
pgb -c 2 -j 2 -t "$warm_calls" -f "$WORK/zipf_batch.sql" >/dev/null
WARMED=$(stat decisions)
psql_ -c "SELECT decide_reset_stats()" >/dev/null
ZIPF=$(tps -c 2 -j 2 -T $((SECONDS_PER_RUN * 2)) -f "$WORK/zipf.sql" | cut -d. -f1)
read -r HR L2HR L2N <<<"$(psql_ -F ' ' -c "SELECT round(hit_ratio::numeric, 4), round(l2_hit_ratio::numeric, 4), l2_entries FROM decide_stats")"
add "| zipf 1.1 over 1M requests, 2 clients, after $WARMED warm-up decisions | $ZIPF TPS | hit ratio (L1 or L2) $HR | L2 hit ratio (of L1 misses) $L2HR, L2 entries $L2N | target: shared-cache hit ratio >= 0.95 |"
fi

if want p99; then
echo "== p99 with 8 clients (zipf), beside SELECT 1's"
# latency <script>: p50 and p99 (ms) of 8 clients from pgbench's per-transaction log
latency() {
    rm -f "$WORK"/p99.*
    (cd "$WORK" && pgb -c 8 -j 2 -T "$SECONDS_PER_RUN" -l --log-prefix="$WORK/p99" -f "$1" >/dev/null)
    cat "$WORK"/p99.* | awk '{ print $3 }' | sort -n |
        awk '{ v[NR] = $1 } END { a = int(NR * 0.50); b = int(NR * 0.99); if (a < 1) a = 1; if (b < 1) b = 1
                                 printf "%.3f %.3f", v[a] / 1000, v[b] / 1000 }'
    rm -f "$WORK"/p99.*
}
read -r P50 P99 <<<"$(latency "$WORK/zipf.sql")"
read -r D50 D99 <<<"$(latency "$WORK/zipf_row.sql")"
# bench/run.sh's SELECT 1, whose \set keeps pgbench 15's latencies true
read -r S50 S99 <<<"$(latency "$WORK/src/bench/workloads/select1.sql")"
add "| zipf, 8 clients, decide_allowed() | p50 $P50 ms | p99 $P99 ms | SELECT 1 at 8 clients: p50 $S50 ms, p99 $S99 ms | target p99 < 1 ms |"
add "| zipf, 8 clients, decide() | p50 $D50 ms | p99 $D99 ms | | target p99 < 1 ms |"
fi

# logging <clients>: ROUNDS rounds of a slice with decide.log = 'all', one
# with 'deny', one with 'none'; sets LOG_ON,
# LOG_DENY, LOG_OFF (mean TPS) and ON_RATIO, DENY_RATIO (medians of the
# rounds' ratios to 'none').
# Slices of the log on, denials only and off.  Each slice starts with an
# empty ring (decide_flush() after the previous one), so that no slice pays
# for the rows of the one before; what the worker writes after a slice ends
# (at most decide.flush_interval of it) is not timed, which the slices'
# length (LOG_SLICE) keeps small.
logging() {
    local clients=$1 i on deny off
    : > "$WORK/logging"
    for i in $(seq "$ROUNDS"); do
        setting decide.log "'all'"; on=$(tps -c "$clients" -j "$clients" -T "$LOG_SLICE" -f "$WORK/hot.sql")
        psql_ -c "SELECT decide_flush()" >/dev/null
        setting decide.log "'deny'"; deny=$(tps -c "$clients" -j "$clients" -T "$LOG_SLICE" -f "$WORK/hot.sql")
        psql_ -c "SELECT decide_flush()" >/dev/null
        setting decide.log "'none'"; off=$(tps -c "$clients" -j "$clients" -T "$LOG_SLICE" -f "$WORK/hot.sql")
        echo "$on $deny $off $(ratio "$on" "$off") $(ratio "$deny" "$off")" >> "$WORK/logging"
    done
    LOG_ON=$(cut -d' ' -f1 "$WORK/logging" | mean)
    LOG_DENY=$(cut -d' ' -f2 "$WORK/logging" | mean)
    LOG_OFF=$(cut -d' ' -f3 "$WORK/logging" | mean)
    ON_RATIO=$(cut -d' ' -f4 "$WORK/logging" | median)
    DENY_RATIO=$(cut -d' ' -f5 "$WORK/logging" | median)
}
if want logging; then
echo "== logging every decision, denials only, none (hot, 2 clients, then 1)"
logging 2
FLUSHED=$(stat log_flushed); DROPPED=$(stat log_dropped)
DENY_SHARE=$(psql_ -c "SELECT round(denied::numeric / greatest(decisions, 1), 3) FROM decide_stats")
add "| logging, hot, 2 clients | log=all $LOG_ON TPS | log=none $LOG_OFF TPS | ratio $ON_RATIO | target >= 0.85 (flushed $FLUSHED, dropped $DROPPED) |"
add "| logging denials only, hot, 2 clients ($DENY_SHARE of decisions are denials) | log=deny $LOG_DENY TPS | log=none $LOG_OFF TPS | ratio $DENY_RATIO | |"
logging 1
add "| logging, hot, 1 client (a core left for the worker) | log=all $LOG_ON TPS | log=none $LOG_OFF TPS | ratio $ON_RATIO | target >= 0.9 (dropped since the start: $(stat log_dropped)) |"
add "| logging denials only, hot, 1 client | log=deny $LOG_DENY TPS | log=none $LOG_OFF TPS | ratio $DENY_RATIO | |"
fi

# Hit ratio every 100 ms around a policy change under load. One session
# samples decide_stats in the server (its clock, no client start-up in the
# loop); another commits the change 4 s in and notes the server's time.
recovery() {
    local clients=$1 name=$2
    local curve="$WORK/curve.$name" samples="$WORK/samples.$name" changed_file="$WORK/changed.$name"
    pgb -c "$clients" -j 2 -T 11 -f "$WORK/zipf.sql" >/dev/null &
    local bench_pid=$!
    sleep 0.5
    ( sleep 4; psql_ -c "UPDATE decide.policies SET priority = priority + 1 WHERE name = 'p7'" \
                    -c "SELECT extract(epoch FROM clock_timestamp())" > "$changed_file" ) &
    local change_pid=$!
    runuser -u postgres -- "$PGBIN/psql" -h "$SOCK" -p $PORT -X -q -At postgres 2>"$samples" <<'SQL'
DO $$
DECLARE
    h bigint;
    m bigint;
BEGIN
    FOR i IN 1 .. 95 LOOP
        SELECT l1_hits + l2_hits + carried_forward, decisions - (l1_hits + l2_hits + carried_forward) INTO h, m FROM decide_stats;
        RAISE NOTICE 'sample % % %', extract(epoch FROM clock_timestamp()), h, m;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SQL
    wait "$change_pid" "$bench_pid" || true
    local changed
    changed=$(tail -1 "$changed_file")
    # one line per interval: seconds since the change (end of the interval), hit ratio in it
    awk -v c="$changed" '/sample/ { t = $3; h = $4; m = $5
            if (n++ && h + m > ph + pm) printf "%.2f %.3f\n", t - c, (h - ph) / ((h - ph) + (m - pm))
            ph = h; pm = m }' "$samples" > "$curve"
    local before dip back
    before=$(awk '$1 > -2 && $1 <= 0 { s += $2; n++ } END { if (n) printf "%.3f", s / n }' "$curve")
    dip=$(awk '$1 > 0 { if (min == "" || $2 < min) min = $2 } END { print min }' "$curve")
    back=$(awk -v d="$dip" 'd >= 0.9 { print 0; exit } $1 > 0 && $2 == d { seen = 1 } seen && $2 >= 0.9 { print $1; exit }' "$curve")
    local verdict="never within 6 s"
    [ -n "$back" ] && verdict="after $back s"
    add "| recovery after a policy change, zipf, $clients clients | hit ratio before $before, lowest after $dip | back >= 0.90 $verdict | | target < 1 s |"
}
if want logdrain; then
echo "== the worker's CPU per logged row, alone"
# Five rounds: stop the worker, decide 150,000 times (the ring of 16 MB holds
# them: the callers move its hot area into staging themselves), let it go
# and wait for decide_flush(); its CPU time (utime + stime
# of /proc/<pid>/stat, in clock ticks) over the rows it wrote.  The median.
setting decide.log "'all'"
WORKER=$(psql_ -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'decide worker' AND datname = 'postgres'")
TICK=$(getconf CLK_TCK)
: > "$WORK/drain"
for i in $(seq 5); do
    psql_ -c "SELECT decide_flush()" >/dev/null
    kill -STOP "$WORKER"
    before=$(stat log_flushed)
    pgb -c 2 -j 2 -t 75000 -f "$WORK/hot.sql" >/dev/null
    cpu0=$(awk '{ print $14 + $15 }' "/proc/$WORKER/stat")
    kill -CONT "$WORKER"
    psql_ -c "SELECT decide_flush()" >/dev/null
    cpu1=$(awk '{ print $14 + $15 }' "/proc/$WORKER/stat")
    awk -v c=$((cpu1 - cpu0)) -v r=$(($(stat log_flushed) - before)) -v t="$TICK" \
        'BEGIN { printf "%.2f\n", c * 1e6 / t / r }' >> "$WORK/drain"
done
reset_setting decide.log
add "| the worker alone, a logged row (hot mix, batches of up to 8 MB) | $(median < "$WORK/drain") us of CPU | rounds: $(tr '\n' ' ' < "$WORK/drain")| | |"
fi

if want recovery; then
echo "== recovery: hit ratio around a policy change (zipf, 2 and 8 clients)"
recovery 2 c2
recovery 8 c8
fi

if want redis; then
echo "== redis"
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$WORK" --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" >/dev/null
sleep 0.5; REDIS_PID=$(cat "$WORK/redis.pid")
setting decide.redis_url "'redis://127.0.0.1:$REDIS_PORT'"
tps -c 2 -j 2 -T 2 -f "$WORK/hot.sql" >/dev/null
read -r RHOT RONE RHOT_RATIO RHOT_S RONE_S RHOT_S_RATIO <<<"$(paired "$WORK/hot.sql" "$WORK/select1.sql" 2)"
add "| Redis healthy, hot, 2 clients | decide_allowed $RHOT TPS | SELECT 1 $RONE TPS | ratio $RHOT_RATIO | target >= 0.85 |"
add "| Redis healthy, hot, 2 clients, steady state | decide_allowed $RHOT_S TPS | SELECT 1 $RONE_S TPS | ratio $RHOT_S_RATIO | target >= 0.85 |"
kill "$REDIS_PID"; REDIS_PID=""; sleep 0.5
Z_DOWN=0; Z_OFF=0
for i in 1 2; do
    Z_DOWN=$((Z_DOWN + $(tps -c 2 -j 2 -T $((SECONDS_PER_RUN / 2 + 1)) -f "$WORK/zipf.sql" | cut -d. -f1)))
    reset_setting decide.redis_url
    Z_OFF=$((Z_OFF + $(tps -c 2 -j 2 -T $((SECONDS_PER_RUN / 2 + 1)) -f "$WORK/zipf.sql" | cut -d. -f1)))
    setting decide.redis_url "'redis://127.0.0.1:$REDIS_PORT'"
done
reset_setting decide.redis_url
add "| Redis stopped (breaker open) vs not configured, zipf, 2 clients | $((Z_DOWN / 2)) TPS | $((Z_OFF / 2)) TPS | ratio $(ratio $Z_DOWN $Z_OFF) | target >= 0.9 |"
fi

if want keyset; then
echo "== keyset pagination over $ROWS log rows, every filter"
# Rows 5 ms apart, newest now. One actor and one policy take a fifth of
# the rows each, so that their page 10,000 exists; a quarter are denials,
# a quarter of each risk level.
psql_ <<EOF >/dev/null
SELECT decide_flush();
-- The rows go back ROWS x 5 ms (14 hours for 10M): the worker creates
-- partitions ahead of time only, so the bench creates the past days'.
SELECT decide.create_log_partition(d::date)
  FROM generate_series(((now() - $ROWS * interval '5 ms') AT TIME ZONE 'UTC')::date,
                       (now() AT TIME ZONE 'UTC')::date, interval '1 day') d;
-- Loaded into chunks as the worker writes them, with their keys.
CREATE UNLOGGED TABLE public.keyset_rows (LIKE decide.decisions);
INSERT INTO public.keyset_rows (id, decided_at, actor, action, resource, allowed, effect, policy,
                                risk_level, epoch, source, priority, condition_unknown)
SELECT nextval('decide.decisions_id_seq'), now() - g * interval '5 ms',
       CASE WHEN g % 5 = 0 THEN 'user:heavy' ELSE 'user:' || (g % 10000) END, 'read', 'doc:' || (g % 50000),
       g % 4 <> 0, CASE WHEN g % 4 <> 0 THEN 'allow' ELSE 'deny' END::decide.effect,
       CASE WHEN g % 5 = 1 THEN 'p-heavy' ELSE 'p' || (g % 1000) END,
       (ARRAY['low','medium','high','critical'])[1 + (g / 7) % 4]::decide.risk_level, 1, 'miss',
       g % 10, false
  FROM generate_series(1, $ROWS) g;
SELECT decide.load_decisions('public.keyset_rows');
DROP TABLE public.keyset_rows;
ANALYZE decide.decision_chunks;
ANALYZE decide.decision_keys;
EOF
# Each query: a label, and decide_decisions_page()'s arguments after the
# cursor and the page size.
cat > "$WORK/keyset_queries" <<'EOF'
all|
by actor|, by_actor => 'user:heavy'
denials|, by_allowed => false
critical risk|, by_risk_level => 'critical'
high risk|, by_risk_level => 'high'
by policy|, by_policy => 'p-heavy'
time range|, since => now() - interval '10 hours', until => now() - interval '1 hour'
by a rare actor (one row in 12,500: it has no page 10,000, so the first ratio is not one)|, by_actor => 'user:77'
EOF
: > "$WORK/keyset_times"
while IFS='|' read -r label args; do
    # The cursor of page 10,000: a hundred pages of 10,000 rows on; then
    # the mean time of page 1 and of page 10,000 over 200 reads each.
    runuser -u postgres -- "$PGBIN/psql" -h "$SOCK" -p $PORT -X -q -At postgres 2>&1 <<EOF |
DO \$\$
DECLARE
    deep text;
    t0 timestamptz;
    n int;
    report text := 'times';
    cursors text[];
BEGIN
    FOR n IN 1 .. 100 LOOP
        deep := (SELECT row_cursor FROM decide_decisions_page(deep, 10000 $args)
                  ORDER BY decided_at, id LIMIT 1);
    END LOOP;
    cursors := ARRAY[NULL, deep];
    FOR c IN 1 .. 2 LOOP
        PERFORM count(*) FROM decide_decisions_page(cursors[c], 100 $args);
        t0 := clock_timestamp();
        FOR n IN 1 .. 200 LOOP
            PERFORM count(*) FROM decide_decisions_page(cursors[c], 100 $args);
        END LOOP;
        report := report || ' ' || round((extract(epoch FROM clock_timestamp() - t0) * 1000 / 200)::numeric, 3);
    END LOOP;
    RAISE NOTICE '%', report;
END
\$\$;
EOF
        grep -o 'times [0-9.]* [0-9.]*' | sed "s/^times /$label|/" >> "$WORK/keyset_times"
done < "$WORK/keyset_queries"
ALL_P1=$(awk -F'|' '$1 == "all" { split($2, t, " "); print t[1] }' "$WORK/keyset_times")
while IFS='|' read -r label times; do
    read -r p1 p10k <<<"$times"
    add "| keyset over $ROWS rows, 100 rows a page: $label | page 1 $p1 ms | page 10,000 $p10k ms | ratio $(ratio "$p10k" "$p1"); first page / unfiltered first page $(ratio "$p1" "$ALL_P1") | target <= 1.5; <= 3 |"
done < "$WORK/keyset_times"
fi


# pgbench -C: a connection per transaction; ROUNDS alternating slices of a
# decision and of SELECT 1; prints "mean TPS of each, median ratio".
per_connection() {
    local i d o
    : > "$WORK/connect"
    for i in $(seq "$ROUNDS"); do
        d=$(runuser -u postgres -- "$PGBIN/pgbench" -h "$SOCK" -p $PORT -n -C -c 2 -j 2 -T "$SLICE" \
                -f "$WORK/hot.sql" postgres | awk '/^tps/ { print $3 }')
        o=$(runuser -u postgres -- "$PGBIN/pgbench" -h "$SOCK" -p $PORT -n -C -c 2 -j 2 -T "$SLICE" \
                -f "$WORK/select1.sql" postgres | awk '/^tps/ { print $3 }')
        echo "$d $o $(ratio "$d" "$o")" >> "$WORK/connect"
    done
    echo "$(cut -d' ' -f1 "$WORK/connect" | mean) $(cut -d' ' -f2 "$WORK/connect" | mean) $(cut -d' ' -f3 "$WORK/connect" | median)"
}

# Logs 2 x $1 decisions of the workload $2 and sets SINCE to when they began.
log_window() {
    setting decide.log "'all'"
    psql_ -c "SELECT decide_flush()" >/dev/null
    SINCE=$(psql_ -c "SELECT clock_timestamp()")
    pgb -c 2 -j 2 -t "$1" -f "$2" >/dev/null
    reset_setting decide.log
    psql_ -c "SELECT decide_flush()" >/dev/null
}
# Three alternating timings of two psql scripts: "a b a/b" a line, in file $3.
timed_pairs() {
    local i a b
    : > "$3"
    for i in 1 2 3; do
        a=$(seconds "$1")
        b=$(seconds "$2")
        echo "$a $b $(ratio "$a" "$b")" >> "$3"
    done
}

if want replay; then
echo "== replay of 100,000 logged decisions vs deciding them with the caches off"
log_window 50000 "$WORK/zipf.sql"
# The replay runs under an uncommitted change (no cache is read or filled);
# the baseline decides the same requests with decide.cache = off.
printf '%s\n' "BEGIN;" \
    "UPDATE decide.policies SET description = description || ' ' WHERE id = (SELECT min(id) FROM decide.policies);" \
    "SELECT count(*) FROM decide_replay('$SINCE', now(), 100000);" \
    "ROLLBACK;" > "$WORK/replay.sql"
printf '%s\n' "SET decide.cache = off;" \
    "SELECT count(*) FILTER (WHERE n) FROM (SELECT decide_allowed(d.actor, d.action, d.resource) AS n FROM decide.decisions_between('$SINCE', 'infinity') d ORDER BY d.decided_at DESC, d.id DESC LIMIT 100000) s;" \
    > "$WORK/redecide.sql"
chown postgres "$WORK/replay.sql" "$WORK/redecide.sql"
REPLAYED=$(psql_ -c "SELECT count(*) FROM decide.decisions_between('$SINCE', 'infinity')")
timed_pairs "$WORK/replay.sql" "$WORK/redecide.sql" "$WORK/replay_times"
add "| replay of $REPLAYED logged decisions under an uncommitted change | $(cut -d' ' -f1 "$WORK/replay_times" | median) s | deciding them with the caches off $(cut -d' ' -f2 "$WORK/replay_times" | median) s | ratio $(cut -d' ' -f3 "$WORK/replay_times" | median) | target < 10 |"
fi

if want verify; then
echo "== verifying 1,000,000 logged decisions against the hash chain"
log_window 500000 "$WORK/hot.sql"
VERIFIED=$(psql_ -c "SELECT count(*) FROM decide.decisions_between('$SINCE', 'infinity')")
# The baseline reads the window's decisions, decoded from their chunks, in
# id order; the verification hashes the chunks as stored.
echo "SELECT count(*) FROM decide_verify_log('$SINCE');" > "$WORK/verify.sql"
echo "SELECT count(*), sum(length(actor) + length(resource)) FROM (SELECT * FROM decide.decisions_between('$SINCE', 'infinity') ORDER BY id) s;" > "$WORK/read.sql"
chown postgres "$WORK/verify.sql" "$WORK/read.sql"
PROBLEMS=$(runuser -u postgres -- "$PGBIN/psql" -h "$SOCK" -p $PORT -X -q -At -f "$WORK/verify.sql" postgres)
timed_pairs "$WORK/verify.sql" "$WORK/read.sql" "$WORK/verify_times"
add "| decide_verify_log() over $VERIFIED logged decisions ($PROBLEMS problems) | $(cut -d' ' -f1 "$WORK/verify_times" | median) s | reading the same rows in id order $(cut -d' ' -f2 "$WORK/verify_times" | median) s | ratio $(cut -d' ' -f3 "$WORK/verify_times" | median) | timed |"
# The keys' check decodes every decision and compares four keys of each.
echo "SELECT count(*) FROM decide_verify_log_keys('$SINCE');" > "$WORK/verify_keys.sql"
chown postgres "$WORK/verify_keys.sql"
KEY_PROBLEMS=$(runuser -u postgres -- "$PGBIN/psql" -h "$SOCK" -p $PORT -X -q -At -f "$WORK/verify_keys.sql" postgres)
timed_pairs "$WORK/verify_keys.sql" "$WORK/read.sql" "$WORK/verify_keys_times"
add "| decide_verify_log_keys() over $VERIFIED logged decisions ($KEY_PROBLEMS problems) | $(cut -d' ' -f1 "$WORK/verify_keys_times" | median) s | reading the same rows in id order $(cut -d' ' -f2 "$WORK/verify_keys_times" | median) s | ratio $(cut -d' ' -f3 "$WORK/verify_keys_times" | median) | timed |"
fi

if want uncached; then
echo "== uncached: decide() with the caches off, every request new, vs SELECT 1 (2 clients)"
psql_ -v policies=10000 -v actors=100000 -v roles=50 -v resources=100000 -f "$REPO/bench/generate.sql" >/dev/null
setting decide.cache off
{ echo '\set actors 100000'; echo '\set resources 100000'; cat "$REPO/bench/workloads/decide_cold.sql"; } > "$WORK/cold.sql"
chown postgres "$WORK/cold.sql"
read -r COLD COLD_ONE COLD_RATIO COLD_S COLD_ONE_S COLD_S_RATIO <<<"$(paired "$WORK/cold.sql" "$WORK/select1.sql" 2)"
add "| uncached decide(), 10k policies, 100k actors, 100k resources, caches off, 2 clients | $COLD TPS | SELECT 1 $COLD_ONE TPS | ratio $COLD_RATIO | target >= 0.6 |"
add "| the same, steady state (each slice's first second left out) | $COLD_S TPS | SELECT 1 $COLD_ONE_S TPS | ratio $COLD_S_RATIO | target >= 0.6 |"
reset_setting decide.cache
fi

if want connect; then
echo "== connect: a connection per decision vs per SELECT 1 (2 clients), 10k then 100k policies"
psql_ -v policies=10000 -v actors=10000 -v roles=50 -v resources=50000 -f "$REPO/bench/generate.sql" >/dev/null
BUILDS=$(stat shared_set_builds)
read -r C10 C10_ONE C10_RATIO <<<"$(per_connection)"
add "| a connection per decide_allowed(), 10k policies, 2 clients | $C10 TPS | SELECT 1 $C10_ONE TPS | ratio $C10_RATIO | target >= 0.6 (builds: $(( $(stat shared_set_builds) - BUILDS )), fallbacks: $(stat shared_set_fallbacks)) |"
fi
if want connect || want change; then
psql_ -v policies=100000 -v actors=10000 -v roles=50 -v resources=50000 -f "$REPO/bench/generate.sql" >/dev/null
fi
if want connect; then
BUILDS=$(stat shared_set_builds)
read -r C100 C100_ONE C100_RATIO <<<"$(per_connection)"
add "| a connection per decide_allowed(), 100k policies, 2 clients | $C100 TPS | SELECT 1 $C100_ONE TPS | ratio $C100_RATIO | target >= 0.5 (builds: $(( $(stat shared_set_builds) - BUILDS )), set of $(stat shared_set_bytes) bytes) |"
fi
if want change; then
echo "== change: a policy change at 100k policies under 8 clients; p99 over the 10 s after it"
rm -f "$WORK"/change.*
BUILDS=$(stat shared_set_builds)
(cd "$WORK" && pgb -c 8 -j 2 -T 14 -l --log-prefix="$WORK/change" -f "$WORK/zipf.sql" >/dev/null) &
BENCH=$!
sleep 4
CHANGED=$(psql_ -c "UPDATE decide.policies SET priority = priority + 1 WHERE name = 'p7'" \
                -c "SELECT extract(epoch FROM clock_timestamp())" | tail -1)
wait "$BENCH" || true
# pgbench's log: client, transaction, latency (us), script, epoch s, us
read -r CP50 CP99 CN <<<"$(cat "$WORK"/change.* |
    awk -v c="$CHANGED" '{ t = $5 + $6 / 1e6 } t >= c && t < c + 10 { print $3 }' | sort -n |
    awk '{ v[NR] = $1 } END { a = int(NR * 0.50); b = int(NR * 0.99); if (a < 1) a = 1; if (b < 1) b = 1
                             printf "%.3f %.3f %d", v[a] / 1000, v[b] / 1000, NR }')"
add "| a policy change at 100k policies, 8 clients, zipf: the 10 s after it | p50 $CP50 ms, p99 $CP99 ms ($CN decisions) | builds of the new set: $(( $(stat shared_set_builds) - BUILDS )) | | target: built once, p99 < 5 ms |"
rm -f "$WORK"/change.*
fi

if want listing; then
echo "== listing: decide_row_allowed() in an RLS policy, as decide.entities grows, page by page"
psql_in() { local db=$1; shift; runuser -u postgres -- "$PGBIN/psql" -h "$SOCK" -p $PORT -X -q -v ON_ERROR_STOP=1 -At "$@" "$db"; }
pgb_in() { local db=$1; shift; runuser -u postgres -- "$PGBIN/pgbench" -h "$SOCK" -p $PORT -n -M prepared "$@" "$db"; }
# paired_in <db a> "<pgbench args a>" <db b> "<pgbench args b>": ROUNDS
# alternating slices; prints the mean TPS of a, of b, and the median of
# the rounds' ratios a/b.
paired_in() {
    local i a b
    : > "$WORK/pairs_in"
    for i in $(seq "$ROUNDS"); do
        # shellcheck disable=SC2086
        a=$(pgb_in "$1" $2 -T "$SLICE" | awk '/^tps/ { print $3 }')
        # shellcheck disable=SC2086
        b=$(pgb_in "$3" $4 -T "$SLICE" | awk '/^tps/ { print $3 }')
        echo "$a $b $(ratio "$a" "$b")" >> "$WORK/pairs_in"
    done
    echo "$(cut -d' ' -f1 "$WORK/pairs_in" | mean) $(cut -d' ' -f2 "$WORK/pairs_in" | mean) $(cut -d' ' -f3 "$WORK/pairs_in" | median)"
}
cost() { awk -v r="$1" 'BEGIN { printf "%.2f", (r > 0 ? 1 / r : 0) }'; }
for db in listing_rls listing_100k listing_1m; do
    psql_ -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    psql_in "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION decide" >/dev/null
done
# The realistic set with 100,000 documents; bench.docs read under its policy
# that decides each row by the plan of a listing (decide_row_allowed), and
# bench.docs_listed under one that lists what the reader may read once per
# statement.
psql_in listing_rls -v policies=10000 -v actors=10000 -v roles=50 -v resources=100000 \
    -f "$REPO/bench/generate.sql" >/dev/null
psql_in listing_rls -f "$REPO/bench/setup.sql" >/dev/null
psql_in listing_rls -c "CREATE TABLE bench.docs_listed AS SELECT * FROM bench.docs" \
    -c "ALTER TABLE bench.docs_listed ENABLE ROW LEVEL SECURITY" -c "
    CREATE POLICY docs_read ON bench.docs_listed FOR SELECT
        USING (('doc:' || id) IN (SELECT resource FROM decide_resources(current_setting('app.user'),
                                                                       'read', prefix => 'doc:')))" \
    -c "VACUUM ANALYZE bench.docs_listed" \
    -c "GRANT SELECT ON bench.docs_listed TO bench_reader, bench_plain" >/dev/null
{ echo '\set actors 10000'; cat "$REPO/bench/workloads/rls_read.sql"; } > "$WORK/rls.sql"
# 100,000 and 1,000,000 documents, 1,000 in each folder; user:1001 may
# read one folder (1,001 entities), user:1002 every folder (uids with no
# letter after a colon: pgbench reads :name as a variable).
for n in 100k 1m; do
    folders=$([ $n = 100k ] && echo 100 || echo 1000)
    psql_in "listing_$n" -c "SET client_min_messages = warning" \
        -c "INSERT INTO decide.entities (uid) SELECT 'folder:' || f FROM generate_series(0, $folders - 1) f" \
        -c "INSERT INTO decide.entities (uid, parents)
            SELECT 'doc:' || d, ARRAY['folder:' || (d % $folders)] FROM generate_series(0, $folders * 1000 - 1) d" \
        -c "INSERT INTO decide.policies (name, effect, actor, action, resource) VALUES
            ('one-folder', 'allow', 'user:1001', 'read', 'folder:7'),
            ('every-folder', 'allow', 'user:1002', 'read', 'folder:*')" \
        -c "ANALYZE decide.entities" >/dev/null
done
# Listings computed every time, as for a new actor: the listing cache off.
for db in listing_rls listing_100k listing_1m; do
    psql_ -c "ALTER DATABASE $db SET decide.listing_cache_size = 0" >/dev/null
done
cat > "$WORK/list1000.sql" <<'EOF'
SELECT count(*) FROM decide_resources('user:1001', 'read');
EOF
cat > "$WORK/page_first.sql" <<'EOF'
SELECT count(*) FROM decide_resources('user:1002', 'read', prefix => 'doc:', page_size => 100);
EOF
cat > "$WORK/page_deep.sql" <<'EOF'
SELECT count(*) FROM decide_resources('user:1002', 'read', prefix => 'doc:', after => 'doc:90000', page_size => 100);
EOF
chown postgres "$WORK"/*.sql
read -r RLS RLS_PLAIN RLS_RATIO <<<"$(paired_in listing_rls "-U bench_reader -c 1 -f $WORK/rls.sql" \
                                               listing_rls "-U bench_plain -c 1 -f $WORK/rls.sql")"
add "| RLS read of 100,000 rows through decide_row_allowed(), a random actor of 10,000 each time, 10k policies, listing cache off, 1 client | $RLS TPS | the same read without RLS $RLS_PLAIN TPS | ratio $RLS_RATIO: cost $(cost "$RLS_RATIO")x | target: cost <= 5x |"
# The listing form: one listing per statement, probed by a hashed subplan.
sed 's/bench\.docs;/bench.docs_listed;/' "$WORK/rls.sql" > "$WORK/rls_listed.sql"
chown postgres "$WORK/rls_listed.sql"
read -r RLSL RLSL_PLAIN RLSL_RATIO <<<"$(paired_in listing_rls "-U bench_reader -c 1 -f $WORK/rls_listed.sql" \
                                                  listing_rls "-U bench_plain -c 1 -f $WORK/rls_listed.sql")"
add "| the same read through decide_resources() (('doc:' \|\| id) IN (SELECT ...)) | $RLSL TPS | without RLS $RLSL_PLAIN TPS | ratio $RLSL_RATIO: cost $(cost "$RLSL_RATIO")x | (information) |"
read -r L1M L100K L_RATIO <<<"$(paired_in listing_1m "-c 1 -f $WORK/list1000.sql" \
                                          listing_100k "-c 1 -f $WORK/list1000.sql")"
add "| listing 1,001 allowed entities among 1,000,000 | $L1M TPS | among 100,000: $L100K TPS | ratio $L_RATIO: cost $(cost "$L_RATIO")x | target: cost <= 2x |"
read -r PFIRST PDEEP P_RATIO <<<"$(paired_in listing_100k "-c 1 -f $WORK/page_first.sql" \
                                             listing_100k "-c 1 -f $WORK/page_deep.sql")"
add "| the first page (100 rows) of a listing of 100,000 allowed entities | $PFIRST TPS | a page after doc:90000: $PDEEP TPS | ratio $P_RATIO: cost $(cost "$P_RATIO")x | target: cost <= 2x |"
fi

report() {
    echo "# bench/layers.sh — $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores"
    echo
    echo "| workload | measured | baseline | ratio | target |"
    echo "|---|---|---|---|---|"
    printf '%s' "$RESULTS"
    echo
    for c in c2 c8; do
        [ -f "$WORK/curve.$c" ] || continue
        echo "Hit ratio per 100 ms around the policy change, ${c#c} clients (seconds since the commit, hit ratio in the 100 ms ending then):"
        echo
        awk '$1 > -1 && $1 < 4' "$WORK/curve.$c" | sed 's/^/    /'
        echo
    done
}
# (Not "> /dev/stdout": when standard output is a file, reopening it
# truncates what this script wrote there before.)
if [ -n "$OUT" ]; then
    report > "$OUT"
    echo "== written to $OUT"
else
    report
fi
exit 0
