#!/usr/bin/env bash
# bench/run.sh — the benchmark suite of decide, in one command:
#
#   sudo bash bench/run.sh                  # full run, 10k policies: ~12 min on 2 cores
#   sudo bash bench/run.sh --quick          # smoke run for CI: under 3 min
#   sudo bash bench/run.sh --scale 100k     # 100k policies, 1M actors (adds ~1 min of set-up)
#
# What it does, in order:
#   1. installs the Debian packages it needs (`scripts/install-deps.sh
#      bench`: the build set, perl, gnuplot; quick when present);
#   2. builds decide from the working tree (or --rev) in a temporary copy with
#      /usr/lib/postgresql/15/bin/pg_config and installs it into a private
#      copy of the PostgreSQL 15 installation (the system's is left alone);
#   3. starts its own throwaway cluster as the postgres user
#      (scripts/cluster.sh: initdb in a temporary directory, Unix socket in
#      that directory only, no TCP), shared_preload_libraries = 'decide' and
#      the settings written below (fsync stays on; synchronous_commit = off,
#      which only affects the commits of the data load and the policy-churn
#      writer);
#   4. generates the synthetic governance data set (bench/generate.sql) at the
#      chosen scale, loads the SQL baseline (sql/include/reference.sql, also
#      the regression tests' oracle) and the RLS table (bench/setup.sql);
#   5. scale sweep: the cost of one uncached decision inside the backend
#      (bench/micro.sql) at 1k, 10k and 100k policies;
#   6. the pgbench workloads (bench/workloads/*.sql), each beside its
#      baselines (SELECT 1 and the plain-SQL reference) in this same run,
#      in slices that alternate with theirs; the CPU that other processes
#      take meanwhile is measured, and a disturbed slice is run again;
#   7. writes the results to the output directory and prints the table:
#        results.md    the Markdown table and the speed targets,
#        results.json  every raw figure, settings, machine and commit,
#        *.png         charts (gnuplot),
#        raw/          pgbench summaries (and per-transaction logs with --keep-logs);
#   8. compares the ratios with bench/baseline.json (exit status 3 if any fell
#      by more than 10%); the cluster is stopped, by its postmaster's PID, and
#      removed on exit, also on failure or interruption.
#
# Options:
#   --scale 1k|10k|100k   policies in the main data set (default 10k); actors
#                         10k/100k/1M, resources 100k/100k/1M, roles 50/100/500
#   --quick               short runs (2 s each; 20,000 calls per sweep pass): the
#                         whole run in under 3 minutes, for CI and smoke tests
#   --duration SECS       seconds per measured run (default 16, in 4 slices
#                         interleaved with its baselines; --quick: 2, one slice);
#                         runs with 64 clients: one slice of at least 8 s (--quick: 5)
#   --soak                add the soak run (8 clients, zipf; off by default)
#   --soak-duration SECS  its length (default 1800)
#   --workloads LIST      comma-separated subset of: sweep,hot,zipf,cold,batch,
#                         rls,churn,logging,shapes,spike,soak (default: all but soak)
#   --out DIR             output directory (default bench/results/<UTC timestamp>)
#   --rev REV             build the extension from git revision REV instead of
#                         the working tree (the bench scripts always come from
#                         the working tree)
#   --port N              port number of the cluster's socket (default 54350)
#   --no-check            skip the comparison with bench/baseline.json
#   --update-baseline     write this run's ratios into bench/baseline.json (for
#                         its scale and mode) instead of comparing
#   --keep-logs           keep pgbench's per-transaction logs in DIR/raw
#
# Exit status: 0 ok, 1 error, 2 bad usage, 3 a ratio fell >10% below the baseline.
#
# Reading the numbers: docs/performance.md. Adding a workload: write
# bench/workloads/<name>.sql, add a workload_<name> function below (it
# declares its runs with define_run, naming the baselines each is compared
# with, and measures them together with measure) and add <name> to
# ALL_WORKLOADS and DEFAULT_WORKLOADS. Where the time goes: bench/profile.sh.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
START_TIME=$(date +%s)

ALL_WORKLOADS=(sweep hot zipf cold batch rls churn logging shapes spike soak)
DEFAULT_WORKLOADS=sweep,hot,zipf,cold,batch,rls,churn,logging,shapes,spike

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }
bad_usage() { printf 'run.sh: %s (see --help)\n' "$*" >&2; exit 2; }
note() { printf 'run.sh: %s\n' "$*"; }
section() { printf '\n==== %s (at %ss) ====\n' "$*" "$(( $(date +%s) - START_TIME ))"; }
is_count() { case $1 in ''|*[!0-9]*) return 1 ;; *) [ "$1" -gt 0 ] ;; esac; }

SCALE=10k
QUICK=0
DURATION=
SOAK=0
SOAK_DURATION=1800
WORKLOAD_LIST=
OUT=
REV=
PORT=54350
CHECK=1
UPDATE_BASELINE=0
KEEP_LOGS=0
while [ $# -gt 0 ]; do
    case $1 in
        --scale) [ $# -ge 2 ] || bad_usage "--scale needs a value"; SCALE=$2; shift ;;
        --scale=*) SCALE=${1#*=} ;;
        --quick) QUICK=1 ;;
        --duration) [ $# -ge 2 ] || bad_usage "--duration needs a value"; DURATION=$2; shift ;;
        --duration=*) DURATION=${1#*=} ;;
        --soak) SOAK=1 ;;
        --soak-duration) [ $# -ge 2 ] || bad_usage "--soak-duration needs a value"; SOAK_DURATION=$2; shift ;;
        --soak-duration=*) SOAK_DURATION=${1#*=} ;;
        --workloads) [ $# -ge 2 ] || bad_usage "--workloads needs a value"; WORKLOAD_LIST=$2; shift ;;
        --workloads=*) WORKLOAD_LIST=${1#*=} ;;
        --out) [ $# -ge 2 ] || bad_usage "--out needs a value"; OUT=$2; shift ;;
        --out=*) OUT=${1#*=} ;;
        --rev) [ $# -ge 2 ] || bad_usage "--rev needs a value"; REV=$2; shift ;;
        --rev=*) REV=${1#*=} ;;
        --port) [ $# -ge 2 ] || bad_usage "--port needs a value"; PORT=$2; shift ;;
        --port=*) PORT=${1#*=} ;;
        --no-check) CHECK=0 ;;
        --update-baseline) UPDATE_BASELINE=1 ;;
        --keep-logs) KEEP_LOGS=1 ;;
        -h|--help) usage; exit 0 ;;
        *) bad_usage "unknown option: $1" ;;
    esac
    shift
done

# Scale: policies, actors, roles, resources of the main data set.
case $SCALE in
    1k)   POLICIES=1000;   ACTORS=10000;   ROLES=50;  RESOURCES=100000 ;;
    10k)  POLICIES=10000;  ACTORS=100000;  ROLES=100; RESOURCES=100000 ;;
    100k) POLICIES=100000; ACTORS=1000000; ROLES=500; RESOURCES=1000000 ;;
    *) bad_usage "--scale must be 1k, 10k or 100k" ;;
esac
if [ -z "$DURATION" ]; then
    if [ "$QUICK" = 1 ]; then DURATION=2; else DURATION=16; fi
fi
is_count "$DURATION" || bad_usage "--duration must be a positive number of seconds"
is_count "$SOAK_DURATION" || bad_usage "--soak-duration must be a positive number of seconds"
is_count "$PORT" && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 65535 ] || bad_usage "--port must be in 1024-65535"
MODE=full
[ "$QUICK" = 1 ] && MODE=quick
# Each run is measured in ROUNDS slices, interleaved with its baselines
# (see measure); runs with 32+ clients in one slice of at least
# MANY_CLIENTS_MIN_DURATION seconds (connections and per-backend policy-set
# compilation take seconds at 64 clients).
ROUNDS=4
MANY_CLIENTS_MIN_DURATION=8
# A slice during which other processes took more than OTHER_CPU_LIMIT % of
# the machine's CPU is run again after a quiet moment (waits of at most 5 s),
# up to MAX_ATTEMPTS times, while the retries fit in RETRY_BUDGET seconds
# and the waits in QUIET_WAIT_MAX seconds for the whole invocation.
OTHER_CPU_LIMIT=${DECIDE_BENCH_OTHER_CPU_LIMIT:-10}
MAX_ATTEMPTS=2
RETRY_BUDGET=120
RETRY_USED=0
QUIET_WAIT_MAX=90
QUIET_WAITED=0
# decide() calls per pass of the scale sweep (bench/micro.sql), and
# sessions per scale (the median is reported)
SWEEP_CALLS=100000
SWEEP_SESSIONS=3
if [ "$QUICK" = 1 ]; then
    ROUNDS=1
    MANY_CLIENTS_MIN_DURATION=5
    RETRY_BUDGET=6
    QUIET_WAIT_MAX=0
    SWEEP_CALLS=20000
    SWEEP_SESSIONS=1
fi
CLK_TCK=$(getconf CLK_TCK)
[ "$UPDATE_BASELINE" = 1 ] && CHECK=0

[ -n "$WORKLOAD_LIST" ] || WORKLOAD_LIST=$DEFAULT_WORKLOADS
[ "$SOAK" = 1 ] && WORKLOAD_LIST="$WORKLOAD_LIST,soak"
WORKLOADS=()
IFS=, read -r -a requested <<<"$WORKLOAD_LIST"
for w in "${requested[@]}"; do
    [ -n "$w" ] || continue
    known=0
    for k in "${ALL_WORKLOADS[@]}"; do [ "$k" = "$w" ] && known=1; done
    [ "$known" = 1 ] || bad_usage "unknown workload '$w' (known: ${ALL_WORKLOADS[*]})"
    dup=0
    for k in "${WORKLOADS[@]}"; do [ "$k" = "$w" ] && dup=1; done
    [ "$dup" = 1 ] || WORKLOADS+=("$w")
done
[ ${#WORKLOADS[@]} -gt 0 ] || bad_usage "no workloads selected"

if [ "$(id -u)" -ne 0 ]; then
    die "must run as root (it installs packages and the extension); try: sudo bash $0 $*"
fi

DC_NAME=run.sh
DC_PG_CONFIG=$PG_CONFIG
# shellcheck source=scripts/cluster.sh
. "$REPO/scripts/cluster.sh"
dc_clean_env

[ -n "$OUT" ] || OUT=$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -z "$(ls -A "$OUT")" ] || die "output directory $OUT is not empty"
mkdir -p "$OUT/raw"

# The work directory. On exit, also on failure or Ctrl-C, the traps of
# scripts/cluster.sh stop the background jobs (stop_jobs), then the cluster
# by its postmaster's PID; keep_server_log shows and keeps its log; $TMP is
# removed.
dc_workdir decide-bench
TMP=$DC_TMP
RAW=$TMP/raw          # written by pgbench, as postgres
RUNS=$OUT/raw/runs.tsv
SLICES=$OUT/raw/slices.tsv
SERVER_PID=
BG_PIDS=()
stop_jobs() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    return 0
}
keep_server_log() {
    if [ "$1" -ne 0 ] && [ "$1" -ne 3 ] && [ -s "$DC_LOG" ]; then
        echo "----- last lines of the server log -----"
        tail -n 30 "$DC_LOG"
    fi
    [ -s "$DC_LOG" ] && cp "$DC_LOG" "$OUT/raw/server.log" 2>/dev/null
    return 0
}
DC_BEFORE_STOP=stop_jobs
DC_AFTER_STOP=keep_server_log

note "scale $SCALE ($POLICIES policies, $ACTORS actors in $ROLES roles, $RESOURCES resources), mode $MODE, ${DURATION}s per run"
note "workloads: ${WORKLOADS[*]}"
note "output: $OUT"

# ---------------------------------------------------------------------------
section "dependencies"
dc_install_deps bench
command -v gnuplot >/dev/null || die "gnuplot is missing (scripts/install-deps.sh bench installs gnuplot-nox)"

# ---------------------------------------------------------------------------
section "build and install"
dc_copy_tree "$TMP/build" "$REV" || die "cannot export ${REV:+git revision }${REV:-the working tree}"
BUILT_FROM=$DC_BUILT_FROM
# Installed into a private copy of the PostgreSQL installation, not into
# the system's: other work on this machine (the tests, a colleague's
# `make install`) may replace the system's decide.so or decide.control at
# any moment, and this run must neither disturb it nor be disturbed by it.
dc_private_pg "$TMP/pg"
PG_ROOT=$DC_PG_ROOT
if ! dc_build "$TMP/build" "$TMP/build.log" DESTDIR="$PG_ROOT"; then
    cat "$TMP/build.log"
    die "build failed"
fi
BIN=$DC_BIN
EXT_VERSION=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$TMP/build/decide.control")
note "built decide $EXT_VERSION from the $BUILT_FROM; installed into a private copy of PostgreSQL in $PG_ROOT"

# ---------------------------------------------------------------------------
section "throwaway cluster"
dc_cluster_init "$TMP/cluster" "$PORT"
SOCK=$DC_SOCK
mkdir "$RAW"
chown postgres: "$RAW"
# The settings of every figure this script reports. Durability is as
# shipped (fsync, full_page_writes on); synchronous_commit = off only
# shortens the commits of the data load and of the churn writer: decisions
# write nothing.
cat >>"$DC_DATA/postgresql.conf" <<EOF

# decide benchmark cluster (bench/run.sh): private and disposable
shared_preload_libraries = 'decide'
max_connections = 100              # 64 stress clients + the spike's + spare
shared_buffers = 1GB               # the whole data set stays in memory
work_mem = 16MB
maintenance_work_mem = 256MB
max_wal_size = 8GB                 # no checkpoint during a run
checkpoint_timeout = 30min
synchronous_commit = off           # data load and churn writes only; fsync stays on
jit = off                          # no compile pauses inside timed statements
max_parallel_workers_per_gather = 0  # 2 cores: the pgbench clients need them
timezone = 'UTC'
log_min_messages = warning
log_checkpoints = off
decide.log = none                  # the decision log is off but in the logging workload's run
                                   # with it on (decide.log = all, the default): its cost is measured there
EOF
dc_cluster_start
SERVER_PID=$DC_SERVER_PID
note "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') running as PID $SERVER_PID, socket $SOCK/.s.PGSQL.$PORT (no TCP)"

psql_db() { # psql_db <db> [psql args...]
    local db=$1
    shift
    runuser -u postgres -- "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -d "$db" "$@"
}
sql_value() { psql_db "$1" -At -c "$2"; }

# Data set: <db> <policies> <actors> <roles> <resources>
generate() {
    local db=$1 t0
    t0=$(date +%s.%N)
    runuser -u postgres -- "$BIN/createdb" -h "$SOCK" -p "$PORT" "$db"
    psql_db "$db" -c 'CREATE EXTENSION decide' >/dev/null
    psql_db "$db" -v policies="$2" -v actors="$3" -v roles="$4" -v resources="$5" \
        <"$BENCH/generate.sql" >"$TMP/generate-$db.log" 2>&1 ||
        { cat "$TMP/generate-$db.log"; die "generating $db failed"; }
    psql_db "$db" -c 'VACUUM ANALYZE decide.entities, decide.policies' >/dev/null
    note "$db: $2 policies, $(sql_value "$db" 'SELECT count(*) FROM decide.entities') entities in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
}

# ---------------------------------------------------------------------------
# Book-keeping shared with bench/report.pl.
{
    printf 'scale\t%s\nmode\t%s\nduration\t%s\npolicies\t%s\nactors\t%s\nroles\t%s\nresources\t%s\n' \
        "$SCALE" "$MODE" "$DURATION" "$POLICIES" "$ACTORS" "$ROLES" "$RESOURCES"
    printf 'built_from\t%s\nextension_version\t%s\n' "$BUILT_FROM" "$EXT_VERSION"
    printf 'commit\t%s\n' "$(git -c safe.directory='*' -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
    printf 'postgres\t%s\n' "$("$BIN/postgres" --version)"
    printf 'cpus\t%s\n' "$(nproc)"
    printf 'cpu_model\t%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    printf 'memory_kb\t%s\n' "$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'started\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'soak_duration\t%s\n' "$SOAK_DURATION"
    printf 'workloads\t%s\n' "${WORKLOADS[*]}"
    printf 'settings\t%s\n' "$(sed -n '/^# throwaway cluster/,$p' "$DC_DATA/postgresql.conf" |
        grep -vE '^#|^$|unix_socket_directories' | sed 's/ *#.*//' | paste -sd ';')"
} >"$OUT/raw/meta.tsv"
printf 'clock_ticks\t%s\nother_cpu_limit\t%s\nrounds\t%s\n' "$CLK_TCK" "$OTHER_CPU_LIMIT" "$ROUNDS" >>"$OUT/raw/meta.tsv"
printf 'id\tslice\tprefixes\tstart\tend\tstatus\tcpu_before\tcpu_after\thits_before\thits_after\tattempts\tgroup\n' >"$SLICES"
GROUP_NO=0    # which measure call a slice belongs to: ratios pair slices of one group

# Hit ratio hook. decide_stats (decide 0.2 on) counts decisions and cache hits
# (carried-forward decisions count as hits: answered without evaluation)
# server-wide; its difference over a run is the run's hit ratio. Without the
# view (decide 0.1) the column reads n/a. Prints "decisions hits enqueued
# dropped" (the last two: decision log; "-" when not counted) or "-".
STATS_VIEW=
stats_snapshot() {
    [ -n "$STATS_VIEW" ] || { echo -; return; }
    sql_value bench "SELECT (j->>'decisions')::numeric || ' ' ||
                            (coalesce((j->>'l1_hits')::numeric, 0) + coalesce((j->>'l2_hits')::numeric, 0)
                            + coalesce((j->>'carried_forward')::numeric, 0))
                            || ' ' || coalesce(j->>'log_enqueued', '-') || ' ' || coalesce(j->>'log_dropped', '-')
                       FROM (SELECT to_jsonb(s) AS j FROM $STATS_VIEW s LIMIT 1) x" 2>/dev/null || echo -
}

# Interference: the machine may be shared. A snapshot is "all busy CPU
# ticks of the machine/ticks of this run's own processes": this shell and
# everything it waited for (pgbench, psql), the server and its live children
# (exited backends are in the postmaster's children's time). Over a slice,
# the difference is the CPU that something else on the machine took.
proc_ticks() { # sum of utime+stime+cutime+cstime of the given PIDs
    local p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && sed 's/.*) //' "/proc/$p/stat"
    done | awk '{ s += $12 + $13 + $14 + $15 } END { print s + 0 }'
}
cpu_snapshot() {
    local machine ours
    machine=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat)
    # shellcheck disable=SC2046
    ours=$(proc_ticks $$ "$SERVER_PID" $(ps -o pid= --ppid "$SERVER_PID"))
    echo "$machine/$ours"
}
other_cpu_pct() { # <snapshot before> <snapshot after> <start time>: % of the machine
    awk -v b="$1" -v a="$2" -v s="$3" -v now="$(date +%s.%N)" -v n="$(nproc)" -v hz="$CLK_TCK" 'BEGIN {
        split(b, x, "/"); split(a, y, "/")
        cap = n * hz * (now - s)
        o = cap > 0 ? 100 * ((y[1] - x[1]) - (y[2] - x[2])) / cap : 0
        printf "%d", (o < 0 ? 0 : o + 0.5)
    }'
}
# Waits (within QUIET_WAIT_MAX seconds for the whole invocation) until the
# machine is quiet: less than OTHER_CPU_LIMIT % busy over <seconds> (our
# cluster is idle between slices).
wait_quiet() { # wait_quiet <seconds per sample>: at most 5 s a call
    local a b pct waited=0
    while awk -v w="$waited" 'BEGIN { exit !(w < 5) }'; do
        a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
        sleep "$1"
        b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
        pct=$(echo "$a $b" | awk '{ t = ($3 - $1) + ($4 - $2); printf "%d", (t > 0 ? 100 * ($3 - $1) / t : 0) }')
        [ "$pct" -gt "$OTHER_CPU_LIMIT" ] || return 0
        awk -v w="$QUIET_WAITED" -v m="$QUIET_WAIT_MAX" 'BEGIN { exit !(w < m) }' || return 0
        QUIET_WAITED=$(awk -v w="$QUIET_WAITED" -v s="$1" 'BEGIN { print w + s }')
        waited=$(awk -v w="$waited" -v s="$1" 'BEGIN { print w + s }')
    done
}
add_note() { # add_note <extra> <key=value>
    if [ "$1" = - ]; then echo "$2"; else echo "$1;$2"; fi
}

# Runs are declared once (define_run) and measured in slices: a group of
# runs is measured round by round, each run for its share of the duration
# in each round, so that a workload and its baselines alternate and meet
# the same conditions. A run named in several groups accumulates slices
# (SELECT 1 at 2 clients is measured next to every 2-client workload).
# Each slice is a pgbench invocation with its own per-transaction log.
declare -A R_WORKLOAD R_KIND R_CLIENTS R_SCRIPT R_ROLE R_PERCALL R_VS1 R_VSQL R_VLABEL \
    R_EXTRA R_OPTIONS R_RETRY R_PREFIXES R_START R_END R_DUR R_STATUS R_SLICES R_MODE R_MINSLICE
RUN_ORDER=()
FAILURES=0

# define_run <id> <workload> <kind> <clients> <script> [options]
#   --role R           connect as R (default postgres)
#   --per-call N       decisions per transaction (default 1; 0: not decisions)
#   --vs-select1 ID    the SELECT 1 run to compare with
#   --vs-sql ID        the SQL baseline run to compare with
#   --vs-sql-label L   what that baseline is, when it is not the SQL reference
#   --extra TEXT       key=value;... notes kept in results.json
#   --options OPTS     server settings for its sessions (PGOPTIONS, e.g. "-c decide.log=all")
#   --no-retry         never run a disturbed slice again
#   --min-slice S      slices of at least S seconds (slow transactions)
defined() { [ -n "${R_KIND[$1]+x}" ]; }
define_run() {
    local id=$1
    defined "$id" && return 0
    R_WORKLOAD[$id]=$2 R_KIND[$id]=$3 R_CLIENTS[$id]=$4 R_SCRIPT[$id]=$5
    R_ROLE[$id]=postgres R_PERCALL[$id]=1 R_VS1[$id]=- R_VSQL[$id]=- R_VLABEL[$id]=-
    R_EXTRA[$id]=- R_OPTIONS[$id]= R_RETRY[$id]=1 R_PREFIXES[$id]= R_DUR[$id]=0
    R_STATUS[$id]=ok R_SLICES[$id]=0 R_MODE[$id]=slices R_MINSLICE[$id]=1
    shift 5
    while [ $# -gt 0 ]; do
        case $1 in
            --role) R_ROLE[$id]=$2; shift ;;
            --per-call) R_PERCALL[$id]=$2; shift ;;
            --vs-select1) R_VS1[$id]=$2; shift ;;
            --vs-sql) R_VSQL[$id]=$2; shift ;;
            --vs-sql-label) R_VLABEL[$id]=$2; shift ;;
            --extra) R_EXTRA[$id]=$2; shift ;;
            --options) R_OPTIONS[$id]=$2; shift ;;
            --no-retry) R_RETRY[$id]=0 ;;
            --min-slice) R_MINSLICE[$id]=$2; shift ;;
            *) die "define_run: unknown option $1" ;;
        esac
        shift
    done
    cp "$BENCH/workloads/${R_SCRIPT[$id]}" "$RAW/${R_SCRIPT[$id]}"
    chown postgres: "$RAW/${R_SCRIPT[$id]}"
    RUN_ORDER+=("$id")
}

# pgbench_cmd <id> <clients> <seconds> <log prefix>: the command line, in PGBENCH
pgbench_cmd() {
    local id=$1 clients=$2 threads=$2
    [ "$threads" -le "$(nproc)" ] || threads=$(nproc)
    PGBENCH=(env PGOPTIONS="${R_OPTIONS[$id]}"
             "$BIN/pgbench" -n -M prepared -c "$clients" -j "$threads" -T "$3"
             -D actors="$ACTORS" -D resources="$RESOURCES"
             -l --log-prefix="$4" -h "$SOCK" -p "$PORT" -U "${R_ROLE[$id]}"
             -f "$RAW/${R_SCRIPT[$id]}" bench)
}

# run_slice <id> <seconds>: one slice. If other processes took more than
# OTHER_CPU_LIMIT % of the machine meanwhile, it waits for a quiet moment
# and runs the slice again (at most MAX_ATTEMPTS in all, while the retries
# fit in RETRY_BUDGET seconds for the invocation); the last attempt counts.
run_slice() {
    local id=$1 dur=$2
    local n=$(( ${R_SLICES[$id]} + 1 ))
    local prefix="$id.s$n"
    local attempt=1 status other cpu_before hits_before start
    [ "$QUICK" = 1 ] || wait_quiet 0.3
    while true; do
        hits_before=$(stats_snapshot)
        cpu_before=$(cpu_snapshot)
        start=$(date +%s.%N)
        pgbench_cmd "$id" "${R_CLIENTS[$id]}" "$dur" "$RAW/$prefix"
        status=ok
        runuser -u postgres -- "${PGBENCH[@]}" >"$OUT/raw/$prefix.out" 2>&1 || status=failed
        other=$(other_cpu_pct "$cpu_before" "$(cpu_snapshot)" "$start")
        if [ "$status" = ok ] && [ "${R_RETRY[$id]}" = 1 ] && [ "$other" -gt "$OTHER_CPU_LIMIT" ] &&
           [ "$attempt" -lt "$MAX_ATTEMPTS" ] && [ $((RETRY_USED + dur)) -le "$RETRY_BUDGET" ]; then
            printf '(disturbed: %s%% other CPU; again) ' "$other"
            RETRY_USED=$((RETRY_USED + dur))
            attempt=$((attempt + 1))
            rm -f "$RAW/$prefix".[0-9]*
            wait_quiet 1
            continue
        fi
        break
    done
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$n" "$prefix" "$start" \
        "$(date +%s.%N)" "$status" "$cpu_before" "$(cpu_snapshot)" "$hits_before" \
        "$(stats_snapshot)" "$attempt" "$GROUP_NO" >>"$SLICES"
    R_SLICES[$id]=$n
    R_PREFIXES[$id]=${R_PREFIXES[$id]:+${R_PREFIXES[$id]},}$prefix
    R_DUR[$id]=$(( ${R_DUR[$id]} + dur ))
    [ -n "${R_START[$id]:-}" ] || R_START[$id]=$start
    R_END[$id]=$(date +%s.%N)
    if [ "$status" != ok ]; then
        R_STATUS[$id]=failed
        FAILURES=$((FAILURES + 1))
        printf '%s FAILED ' "$id"
        tail -n 3 "$OUT/raw/$prefix.out" | sed 's/^/    /' >&2
    fi
    # pgbench's own figure, for the eye (run.sh's come from the logs)
    printf '%s %s tps%s; ' "$id" "$(sed -nE 's/^tps = ([0-9]+)\..*/\1/p' "$OUT/raw/$prefix.out")" \
        "$([ "$other" -gt "$OTHER_CPU_LIMIT" ] && echo " (disturbed: $other% other CPU)")"
}

# measure [--rounds N] [--duration S] <id>...: the runs, interleaved
measure() {
    local rounds=$ROUNDS total=$DURATION
    while [ $# -gt 0 ]; do
        case $1 in
            --rounds) rounds=$2; shift 2 ;;
            --duration) total=$2; shift 2 ;;
            *) break ;;
        esac
    done
    local id many=0
    for id in "$@"; do
        defined "$id" || die "measure: run $id is not defined"
        [ "${R_CLIENTS[$id]}" -lt 32 ] || many=1
    done
    # Many clients need seconds to connect and compile the policy set in
    # each backend before their window opens: one long slice each.
    if [ "$many" = 1 ]; then
        rounds=1
        [ "$total" -ge "$MANY_CLIENTS_MIN_DURATION" ] || total=$MANY_CLIENTS_MIN_DURATION
    fi
    local slice=$(( total / rounds ))
    [ "$slice" -ge 1 ] || slice=1
    GROUP_NO=$((GROUP_NO + 1))
    local r
    for r in $(seq "$rounds"); do
        printf '  round %s/%s, %ss each: ' "$r" "$rounds" "$slice"
        for id in "$@"; do
            if [ "$slice" -ge "${R_MINSLICE[$id]}" ]; then
                run_slice "$id" "$slice"
            else
                run_slice "$id" "${R_MINSLICE[$id]}"
            fi
        done
        echo
    done
}

# The baselines and decision mixes.
define_select1() { # define_select1 <clients>
    define_run "select1@$1" "SELECT 1" baseline "$1" select1.sql --per-call 0
}
define_mix() { # define_mix <mix> <clients> [define_run options for decide's run]
    local mix=$1 clients=$2
    shift 2
    define_select1 "$clients"
    define_run "ref-$mix@$clients" "SQL baseline: $mix" baseline "$clients" "ref_$mix.sql" \
        --vs-select1 "select1@$clients"
    define_run "$mix@$clients" "$mix" decide "$clients" "decide_$mix.sql" \
        --vs-select1 "select1@$clients" --vs-sql "ref-$mix@$clients" "$@"
}
measured() { [ "${R_SLICES[$1]:-0}" -gt 0 ]; }

# runs.tsv, one line per run, for bench/report.pl
write_runs() {
    local id
    printf 'id\tworkload\tkind\tclients\tper_call\tvs_select1\tvs_sql\tvs_sql_label\tprefixes\tstart\tend\tduration\tstatus\textra\tmode\n' >"$RUNS"
    for id in "${RUN_ORDER[@]}"; do
        measured "$id" || continue
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" \
            "${R_WORKLOAD[$id]}" "${R_KIND[$id]}" \
            "$([ "${R_MODE[$id]}" = spike ] && echo '2→64→2' || echo "${R_CLIENTS[$id]}")" "${R_PERCALL[$id]}" \
            "${R_VS1[$id]}" "${R_VSQL[$id]}" "${R_VLABEL[$id]}" "${R_PREFIXES[$id]}" \
            "${R_START[$id]}" "${R_END[$id]}" "${R_DUR[$id]}" "${R_STATUS[$id]}" \
            "${R_EXTRA[$id]}" "${R_MODE[$id]}" >>"$RUNS"
    done
}

# ---------------------------------------------------------------------------
# The workloads. Each workload_<name> defines the runs it needs and measures
# them with their baselines.

workload_sweep() {
    section "scale sweep: one uncached decision in the backend (bench/micro.sql)"
    note "data sets of 10000 actors in 50 roles, 50000 resources; $SWEEP_CALLS calls per pass, $SWEEP_SESSIONS session(s) per scale"
    local p db session
    : >"$OUT/raw/sweep.jsonl"
    for p in 1000 10000 100000; do
        generate "sweep_$p" "$p" 10000 50 50000
    done
    # Each session is a fresh connection (its first pass starts with an
    # empty entity cache); the scales take turns, and the report keeps the
    # median of the sessions, since a whole session now and then runs
    # slower for reasons no process on the machine accounts for.
    for session in $(seq "$SWEEP_SESSIONS"); do
        for p in 1000 10000 100000; do
            db=sweep_$p
            local attempt=1 cpu0 t0 line other
            while true; do
                [ "$QUICK" = 1 ] || wait_quiet 0.3
                cpu0=$(cpu_snapshot)
                t0=$(date +%s.%N)
                line=$(psql_db "$db" -At -v calls="$SWEEP_CALLS" -v actors=10000 -v resources=50000 \
                           <"$BENCH/micro.sql" | tail -n 1)
                other=$(other_cpu_pct "$cpu0" "$(cpu_snapshot)" "$t0")
                if [ "$other" -gt "$OTHER_CPU_LIMIT" ] && [ "$attempt" -lt "$MAX_ATTEMPTS" ] &&
                   [ $((RETRY_USED + 5)) -le "$RETRY_BUDGET" ]; then
                    note "disturbed (other CPU $other%), again"
                    RETRY_USED=$((RETRY_USED + 5))
                    attempt=$((attempt + 1))
                    wait_quiet 1
                    continue
                fi
                break
            done
            printf '%s\n' "${line%\}}, \"other_cpu_pct\" : $other, \"attempts\" : $attempt, \"session\" : $session}" >>"$OUT/raw/sweep.jsonl"
            tail -n 1 "$OUT/raw/sweep.jsonl" | sed -E 's/.*"policies" : ([0-9]+).*"load_ms" : ([0-9.]+).*"cold_us" : ([0-9.]+), "warm_us" : ([0-9.]+), "allowed_us" : ([0-9.]+).*/  '"session $session"': \1 policies: policy set load \2 ms; cold \3 us, warm \4 us per decide(); decide_allowed() \5 us/'
        done
    done
    for p in 1000 10000 100000; do
        runuser -u postgres -- "$BIN/dropdb" -h "$SOCK" -p "$PORT" "sweep_$p"
    done
}

workload_hot() {
    section "hot: 100 repeated requests"
    define_mix hot 2
    # the same through decide_allowed(): a one-column result, like SELECT 1's
    define_run "hot-allowed@2" "hot, decide_allowed()" decide 2 decide_allowed_hot.sql \
        --vs-select1 select1@2 --vs-sql ref-hot@2
    measure select1@2 ref-hot@2 hot@2 hot-allowed@2
}

workload_zipf() {
    section "zipf: skew 1.1 over 1M requests"
    define_mix zipf 2
    measure select1@2 ref-zipf@2 zipf@2
}

workload_cold() {
    section "cold: every request new"
    define_mix cold 2
    measure select1@2 ref-cold@2 cold@2
}

workload_batch() {
    section "batch: decide_many() with 100 requests a call"
    define_mix cold 2
    define_run "batch@2" "batch (decide_many x100)" decide 2 decide_batch.sql --per-call 100 \
        --vs-select1 select1@2 --vs-sql ref-cold@2 --vs-sql-label "SQL baseline: cold, per decision"
    if measured ref-cold@2; then
        measure select1@2 batch@2
    else
        measure select1@2 ref-cold@2 batch@2
    fi
}

workload_rls() {
    section "rls: 100,000 rows read through decide_row_allowed()"
    # an RLS read takes 1-2 s: slices of at least 4 s
    define_run "rls-plain@1" "RLS baseline: same read, no RLS" baseline 1 rls_read.sql \
        --role bench_plain --per-call 0 --min-slice 4
    define_run "rls@1" "RLS read, 100k rows" decide 1 rls_read.sql --role bench_reader \
        --per-call 0 --vs-sql rls-plain@1 --vs-sql-label "the same read with no RLS" --min-slice 4
    measure rls-plain@1 rls@1
}

workload_churn() {
    section "policy churn: a policy changes every second during zipf"
    define_mix zipf 2
    measured zipf@2 || measure select1@2 ref-zipf@2 zipf@2
    define_run "churn@2" "zipf + policy churn (1/s)" decide 2 decide_zipf.sql --no-retry \
        --vs-select1 select1@2 --vs-sql ref-zipf@2 --extra "no_churn=zipf@2"
    # The writer: one psql session committing an UPDATE every second; each
    # moves the epoch by one, so every backend reloads its policy set.
    local epoch_before epoch_after sampler=
    epoch_before=$(sql_value bench 'SELECT decide_epoch()')
    "$BIN/psql" -X -q -At -h "$SOCK" -p "$PORT" -U postgres -d bench >/dev/null 2>&1 <<<"
        UPDATE decide.policies SET priority = CASE WHEN priority = 1 THEN 0 ELSE 1 END
         WHERE name = 'p1' \\watch 1" &
    local writer=$!
    BG_PIDS+=("$writer")
    # Hit ratio over time around the changes, if decide_stats exists: one
    # psql session samples it every 0.2 s (time, decisions, hits, epoch).
    if [ -n "$STATS_VIEW" ]; then
        "$BIN/psql" -X -q -At -h "$SOCK" -p "$PORT" -U postgres -d bench \
            >"$OUT/raw/churn-stats.txt" 2>/dev/null <<<"
            SELECT extract(epoch FROM clock_timestamp()) || ' ' || (j->>'decisions') || ' ' ||
                   (coalesce((j->>'l1_hits')::numeric, 0) + coalesce((j->>'l2_hits')::numeric, 0)
                            + coalesce((j->>'carried_forward')::numeric, 0))
                   || ' ' || coalesce(j->>'epoch', '-')
              FROM (SELECT to_jsonb(s) AS j FROM $STATS_VIEW s LIMIT 1) x \\watch 0.2" &
        sampler=$!
        BG_PIDS+=("$sampler")
    fi
    # one slice: the hit-ratio chart is a single stretch of time
    measure --rounds 1 churn@2
    kill "$writer" 2>/dev/null || true
    wait "$writer" 2>/dev/null || true
    if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
    fi
    epoch_after=$(sql_value bench 'SELECT decide_epoch()')
    note "the writer committed $((epoch_after - epoch_before)) policy changes"
    R_EXTRA[churn@2]="no_churn=zipf@2;changes=$((epoch_after - epoch_before))"
}

workload_logging() {
    section "logging: zipf with the decision log on (decide.log = all, its default) next to off"
    if [ -z "$(sql_value bench "SELECT current_setting('decide.log', true)")" ]; then
        note "no decision log in decide $EXT_VERSION (no decide.log setting): skipped"
        return 0
    fi
    define_mix zipf 2
    define_run "zipf-log@2" "zipf, decide.log = all" decide 2 decide_zipf.sql \
        --options "-c decide.log=all" --vs-select1 select1@2 --vs-sql ref-zipf@2 \
        --extra "logging_off=zipf@2"
    measure zipf@2 zipf-log@2
}

workload_shapes() {
    section "load shapes on zipf: smoke (1), normal (2: the zipf workload), peak (8), stress (64 clients)"
    local c
    for c in 1 8 64; do
        define_mix zipf "$c"
        measure "select1@$c" "ref-zipf@$c" "zipf@$c"
    done
    if ! measured zipf@2; then
        define_mix zipf 2
        measure select1@2 ref-zipf@2 zipf@2
    fi
}

# Spike: 2 clients all along; 62 more join for the middle third. One
# slice, not retried: the burst is the disturbance being measured.
spike_run() { # spike_run <id> [define_run options]
    local id=$1
    shift
    define_run "$id" "$@"
    R_CLIENTS[$id]=2
    R_MODE[$id]=spike
    # At least 3 s a phase: 62 new backends need seconds to connect and
    # compile the policy set before their first decision.
    local third=$(( (DURATION + 2) / 3 )) min_third=3
    [ "$QUICK" = 1 ] && min_third=2
    [ "$third" -ge "$min_third" ] || third=$min_third
    R_EXTRA[$id]=$(add_note "${R_EXTRA[$id]}" "spike=${third}s")
    [ "$QUICK" = 1 ] || wait_quiet 0.5
    local hits_before cpu_before start
    hits_before=$(stats_snapshot)
    cpu_before=$(cpu_snapshot)
    start=$(date +%s.%N)
    pgbench_cmd "$id" 2 $((3 * third)) "$RAW/$id"
    runuser -u postgres -- "${PGBENCH[@]}" >"$OUT/raw/$id.out" 2>&1 &
    local base_pid=$!
    BG_PIDS+=("$base_pid")
    sleep "$third"
    printf '  %s: 2 clients for %ss, 62 more from %ss to %ss\n' "$id" $((3 * third)) "$third" $((2 * third))
    pgbench_cmd "$id" 62 "$third" "$RAW/$id-burst"
    local status=ok
    runuser -u postgres -- "${PGBENCH[@]}" >"$OUT/raw/$id-burst.out" 2>&1 || status=failed
    wait "$base_pid" || status=failed
    GROUP_NO=$((GROUP_NO + 1))
    printf '%s\t1\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t1\t%s\n' "$id" "$id,$id-burst" "$start" \
        "$(date +%s.%N)" "$status" "$cpu_before" "$(cpu_snapshot)" "$hits_before" \
        "$(stats_snapshot)" "$GROUP_NO" >>"$SLICES"
    R_SLICES[$id]=1 R_PREFIXES[$id]="$id,$id-burst" R_DUR[$id]=$((3 * third))
    R_START[$id]=$start R_END[$id]=$(date +%s.%N) R_STATUS[$id]=$status
    [ "$status" = ok ] || FAILURES=$((FAILURES + 1))
}

workload_spike() {
    section "spike: 2 -> 64 -> 2 clients on zipf"
    spike_run select1-spike "SELECT 1" baseline 2 select1.sql --per-call 0
    spike_run spike "zipf" decide 2 decide_zipf.sql --vs-select1 select1-spike
}

workload_soak() {
    section "soak: zipf at 8 clients for ${SOAK_DURATION}s"
    define_mix zipf 8
    measured select1@8 || measure select1@8
    define_run "soak@8" "zipf (soak)" decide 8 decide_zipf.sql --no-retry \
        --vs-select1 select1@8 --vs-sql ref-zipf@8
    local rss_before rss_after sampler first last
    rss_before=$(ps -o rss= --ppid "$SERVER_PID" | awk '{s += $1} END {print s + 0}')
    # The client backends' private memory (RssAnon: not the shared cache or
    # buffers they touch) every 10 s while the soak runs: a leak in a
    # backend grows it, a bounded cache does not once it is full.  It stops
    # with the server, should this script stop before it kills it.
    (
        start=$(date +%s)
        while sleep 10 && kill -0 "$SERVER_PID" 2>/dev/null; do
            ps -o pid=,args= --ppid "$SERVER_PID" | awk '/\[local\]/ { print $1 }' |
                while read -r pid; do awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null; done |
                awk -v t=$(( $(date +%s) - start )) '{ s += $1; n++ } END { if (n) print t "\t" n "\t" s }'
        done
    ) >"$OUT/raw/soak_memory.tsv" &
    sampler=$!
    measure --rounds 1 --duration "$SOAK_DURATION" soak@8
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    rss_after=$(ps -o rss= --ppid "$SERVER_PID" | awk '{s += $1} END {print s + 0}')
    # first sample a minute in (every backend has compiled its policy set
    # and its caches are filling), and the last one with all 8 backends
    # still there
    first=$(awk -F'\t' '$1 >= 60 && $2 == 8 { print $3; exit }' "$OUT/raw/soak_memory.tsv")
    last=$(awk -F'\t' '$2 == 8 { v = $3 } END { print v }' "$OUT/raw/soak_memory.tsv")
    R_EXTRA[soak@8]="rss_kb_before=$rss_before;rss_kb_after=$rss_after;backend_anon_kb_first=${first:-?};backend_anon_kb_last=${last:-?}"
    note "server processes' RSS: ${rss_before} kB before, ${rss_after} kB after;" \
         "8 client backends' private memory: ${first:-?} kB after a minute, ${last:-?} kB at the end"
}

# ---------------------------------------------------------------------------
needs_main=0
for w in "${WORKLOADS[@]}"; do [ "$w" = sweep ] || needs_main=1; done
if [ "$needs_main" = 1 ]; then
    section "data set"
    generate bench "$POLICIES" "$ACTORS" "$ROLES" "$RESOURCES"
    psql_db bench <"$REPO/sql/include/reference.sql" >/dev/null 2>"$TMP/reference.log" ||
        { cat "$TMP/reference.log"; die "loading sql/include/reference.sql failed"; }
    psql_db bench <"$BENCH/setup.sql" >/dev/null
    STATS_VIEW=$(sql_value bench "SELECT c.oid::regclass FROM pg_class c
                                   WHERE c.relname = 'decide_stats' AND c.relkind = 'v' LIMIT 1")
    if [ -n "$STATS_VIEW" ]; then
        note "hit ratios from $STATS_VIEW"
    else
        note "no decide_stats view in decide $EXT_VERSION: hit ratios read n/a"
    fi
    printf 'stats_view\t%s\n' "${STATS_VIEW:--}" >>"$OUT/raw/meta.tsv"
    printf 'decision_cache_guc\t%s\n' "$(sql_value bench "SELECT current_setting('decide.cache', true)" || true)" >>"$OUT/raw/meta.tsv"
fi

for w in "${WORKLOADS[@]}"; do
    "workload_$w"
done
write_runs

printf 'finished\t%s\nelapsed_s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(( $(date +%s) - START_TIME ))" >>"$OUT/raw/meta.tsv"

# ---------------------------------------------------------------------------
section "results"
report_args=(--raw "$RAW" --out "$OUT")
[ "$CHECK" = 1 ] && report_args+=(--check "$BENCH/baseline.json")
[ "$UPDATE_BASELINE" = 1 ] && report_args+=(--update-baseline "$BENCH/baseline.json")
rc=0
perl "$BENCH/report.pl" "${report_args[@]}" >"$TMP/report.txt" || rc=$?
# A ratio below the baseline is measured again before the run fails: two
# more rounds of each pair concerned (the ratio is then the median of all
# its rounds), since one round on a shared 2-core machine can be off by
# more than the tolerance.
if [ "$rc" = 3 ] && [ -s "$OUT/raw/suspects.tsv" ]; then
    section "confirming $(wc -l <"$OUT/raw/suspects.tsv") ratio(s) below the baseline"
    while IFS=$'\t' read -r a b; do
        defined "$a" && defined "$b" || continue
        measure --rounds 2 --duration $((2 * DURATION / ROUNDS)) "$b" "$a"
    done <"$OUT/raw/suspects.tsv"
    write_runs
    rm -f "$OUT/raw/suspects.tsv" "$OUT"/*.png "$OUT"/*.dat
    rc=0
    perl "$BENCH/report.pl" "${report_args[@]}" >"$TMP/report.txt" || rc=$?
fi
cat "$TMP/report.txt"
if [ "$KEEP_LOGS" = 1 ]; then
    for f in "$RAW"/*; do
        case $f in *.sql) ;; *) gzip -c "$f" >"$OUT/raw/$(basename "$f").gz" ;; esac
    done
fi
note "finished in $(( $(date +%s) - START_TIME ))s; results in $OUT"
if [ "$FAILURES" -gt 0 ]; then
    note "$FAILURES pgbench run(s) failed: see $OUT/raw/*.out"
    exit 1
fi
exit "$rc"
