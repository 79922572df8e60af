#!/usr/bin/env bash
# bench/run.sh — the benchmark suite of decide, in one command:
#
#   sudo bash bench/run.sh                  # full run, 10k policies: ~12 min on 2 cores
#   sudo bash bench/run.sh --quick          # smoke run for CI: under 3 min
#   sudo bash bench/run.sh --scale 100k     # 100k policies, 1M actors (adds ~1 min of set-up)
#
# What it does, in order:
#   1. installs the Debian packages (scripts/install-deps.sh; quick when present);
#   2. builds decide from the working tree (or --rev) in a temporary copy with
#      /usr/lib/postgresql/15/bin/pg_config and installs it into a private
#      copy of the PostgreSQL 15 installation (the system's is left alone);
#   3. starts its own throwaway cluster as the postgres user: initdb in a
#      temporary directory, Unix socket in that directory only, no TCP,
#      shared_preload_libraries = 'decide' and the settings written below
#      (fsync stays on; synchronous_commit = off, which only affects the
#      commits of the data load and the policy-churn writer);
#   4. generates the synthetic governance data set (bench/generate.sql) at the
#      chosen scale, loads the SQL baseline (bench/reference.sql) and the RLS
#      table (bench/setup.sql);
#   5. scale sweep: the cost of one uncached decision inside the backend
#      (bench/micro.sql) at 1k, 10k and 100k policies;
#   6. the pgbench workloads (bench/workloads/*.sql), each beside its
#      baselines (SELECT 1 and the plain-SQL reference) in this same run;
#   7. writes the results to the output directory and prints the table:
#        results.md    the Markdown table and the targets of issues 2 and 6,
#        results.json  every raw figure, settings, machine and commit,
#        *.png         charts (gnuplot),
#        raw/          pgbench summaries (and per-transaction logs with --keep-logs);
#   8. compares the ratios with bench/baseline.json (exit status 3 if any fell
#      by more than 10%); the cluster is stopped and removed on exit, also on
#      failure or interruption.
#
# Options:
#   --scale 1k|10k|100k   policies in the main data set (default 10k); actors
#                         10k/100k/1M, resources 100k/100k/1M, roles 50/100/500
#   --quick               short runs (2 s each; 20,000 calls per sweep pass): the
#                         whole run in under 3 minutes, for CI and smoke tests
#   --duration SECS       seconds per pgbench run (default 20; --quick: 2); runs
#                         with 64 clients last at least 8 s (--quick: 5 s)
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
# bench/workloads/<name>.sql, add a workload_<name> function below (it calls
# bench_run with the baselines to compare with) and add <name> to
# ALL_WORKLOADS.
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
section() { printf '\n==== %s ====\n' "$*"; }
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
    if [ "$QUICK" = 1 ]; then DURATION=2; else DURATION=20; fi
fi
is_count "$DURATION" || bad_usage "--duration must be a positive number of seconds"
is_count "$SOAK_DURATION" || bad_usage "--soak-duration must be a positive number of seconds"
is_count "$PORT" && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 65535 ] || bad_usage "--port must be in 1024-65535"
MODE=full
[ "$QUICK" = 1 ] && MODE=quick
# Runs with 32+ clients last at least this long (connections and per-backend
# policy-set compilation take seconds at 64 clients).
MANY_CLIENTS_MIN_DURATION=8
# A run during which other processes took more than OTHER_CPU_LIMIT % of the
# machine's CPU is run again, up to MAX_ATTEMPTS times, while the retries fit
# in RETRY_BUDGET seconds for the whole invocation.
OTHER_CPU_LIMIT=${DECIDE_BENCH_OTHER_CPU_LIMIT:-10}
MAX_ATTEMPTS=3
RETRY_BUDGET=180
RETRY_USED=0
# decide() calls per pass of the scale sweep (bench/micro.sql)
SWEEP_CALLS=100000
if [ "$QUICK" = 1 ]; then
    MANY_CLIENTS_MIN_DURATION=5
    RETRY_BUDGET=10
    SWEEP_CALLS=20000
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

export LANG=C.UTF-8
unset LC_ALL LANGUAGE
for var in $(compgen -e | grep '^PG' || true); do unset "$var"; done

[ -n "$OUT" ] || OUT=$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -z "$(ls -A "$OUT")" ] || die "output directory $OUT is not empty"
mkdir -p "$OUT/raw"

TMP=$(mktemp -d /tmp/decide-bench.XXXXXX)
chmod 755 "$TMP"
DATA=$TMP/data
SOCK=$TMP/sock
RAW=$TMP/raw          # written by pgbench, as postgres
RUNS=$OUT/raw/runs.tsv
SERVER_PID=
BG_PIDS=()
BIN=/usr/lib/postgresql/15/bin

cleanup() {
    local rc=$?
    set +e
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    if [ -z "$SERVER_PID" ] && [ -f "$DATA/postmaster.pid" ]; then
        SERVER_PID=$(head -n 1 "$DATA/postmaster.pid")
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        note "stopping the benchmark cluster (PID $SERVER_PID)"
        runuser -u postgres -- "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null 2>&1
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            kill -QUIT "$SERVER_PID" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        fi
    fi
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ] && [ -s "$TMP/server.log" ]; then
        echo "----- last lines of the server log -----"
        tail -n 30 "$TMP/server.log"
    fi
    [ -s "$TMP/server.log" ] && cp "$TMP/server.log" "$OUT/raw/server.log" 2>/dev/null
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

note "scale $SCALE ($POLICIES policies, $ACTORS actors in $ROLES roles, $RESOURCES resources), mode $MODE, ${DURATION}s per run"
note "workloads: ${WORKLOADS[*]}"
note "output: $OUT"

# ---------------------------------------------------------------------------
section "dependencies"
bash "$REPO/scripts/install-deps.sh"
command -v gnuplot >/dev/null || die "gnuplot is missing (scripts/install-deps.sh installs gnuplot-nox)"

# ---------------------------------------------------------------------------
section "build and install"
mkdir "$TMP/build"
if [ -n "$REV" ]; then
    git -c safe.directory='*' -C "$REPO" archive --format=tar "$REV" | tar -C "$TMP/build" -xf - ||
        die "cannot export git revision $REV"
    BUILT_FROM="git revision $(git -c safe.directory='*' -C "$REPO" rev-parse --short "$REV")"
else
    tar -C "$REPO" \
        --exclude=./.git --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
        --exclude=./results --exclude=./output_iso --exclude='./tmp_check*' \
        --exclude=./log --exclude=./bench/results --exclude=./fuzz/build \
        -cf - . | tar -C "$TMP/build" -xf -
    BUILT_FROM="working tree at $(git -c safe.directory='*' -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
fi
# Installed into a private copy of the PostgreSQL installation, not into
# the system's: other work on this machine (the tests, a colleague's
# `make install`) may replace the system's decide.so or decide.control at
# any moment, and this run must neither disturb it nor be disturbed by it.
# PostgreSQL finds its share and lib directories relative to its binary, so
# the copied server uses the copied directories.
PG_ROOT=$TMP/pg
SYS_BIN=$("$PG_CONFIG" --bindir)
SYS_LIB=$("$PG_CONFIG" --pkglibdir)
SYS_SHARE=$("$PG_CONFIG" --sharedir)
mkdir -p "$PG_ROOT$(dirname "$SYS_BIN")" "$PG_ROOT$(dirname "$SYS_LIB")" "$PG_ROOT$(dirname "$SYS_SHARE")"
cp -a "$SYS_BIN" "$PG_ROOT$SYS_BIN"
[ -d "$PG_ROOT$SYS_LIB" ] || cp -a "$SYS_LIB" "$PG_ROOT$SYS_LIB"
cp -a "$SYS_SHARE" "$PG_ROOT$SYS_SHARE"
rm -rf "$PG_ROOT$SYS_LIB"/decide.so "$PG_ROOT$SYS_LIB"/bitcode/decide* "$PG_ROOT$SYS_SHARE"/extension/decide[.-]*
if ! (cd "$TMP/build" && make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" &&
      make install PG_CONFIG="$PG_CONFIG" DESTDIR="$PG_ROOT") >"$TMP/build.log" 2>&1; then
    cat "$TMP/build.log"
    die "build failed"
fi
BIN=$PG_ROOT$SYS_BIN
EXT_VERSION=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$TMP/build/decide.control")
note "built decide $EXT_VERSION from the $BUILT_FROM; installed into a private copy of PostgreSQL in $PG_ROOT"

# ---------------------------------------------------------------------------
section "throwaway cluster"
mkdir "$SOCK" "$RAW"
chown postgres: "$TMP" "$SOCK" "$RAW"
runuser -u postgres -- "$BIN/initdb" -D "$DATA" -A trust -U postgres --encoding=UTF8 \
    --locale=C.UTF-8 --no-instructions >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log"; exit 1; }
# The settings of every figure this script reports. Durability is as
# shipped (fsync, full_page_writes on); synchronous_commit = off only
# shortens the commits of the data load and of the churn writer: decisions
# write nothing.
cat >>"$DATA/postgresql.conf" <<EOF

# decide benchmark cluster (bench/run.sh): private and disposable
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
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
decide.database = 'bench'          # decisions in the bench database are logged (decide.log
                                   # = all, the default) and the worker warms its cache
EOF
runuser -u postgres -- "$BIN/pg_ctl" start -D "$DATA" -l "$TMP/server.log" -w -t 60 >/dev/null
SERVER_PID=$(head -n 1 "$DATA/postmaster.pid")
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
    printf 'settings\t%s\n' "$(sed -n '/^# decide benchmark cluster/,$p' "$DATA/postgresql.conf" |
        grep -vE '^#|^$|unix_socket_directories' | sed 's/ *#.*//' | paste -sd ';')"
} >"$OUT/raw/meta.tsv"
printf 'id\tworkload\tkind\tclients\tper_call\tvs_select1\tvs_sql\tvs_sql_label\tprefixes\tstart\tend\tduration\tstatus\tcpu_before\tcpu_after\thits_before\thits_after\textra\n' >"$RUNS"
printf 'clock_ticks\t%s\nother_cpu_limit\t%s\n' "$CLK_TCK" "$OTHER_CPU_LIMIT" >>"$OUT/raw/meta.tsv"

has_run() { grep -q "^$1	" "$RUNS"; }

# Hit ratio hook. decide_stats (issue 3) counts decisions and cache hits
# server-wide; its difference over a run is the run's hit ratio. Without the
# view (decide 0.1) the column reads n/a. Prints "decisions hits enqueued
# dropped" (the last two: decision log, issue 4; "-" when not counted) or "-".
STATS_VIEW=
stats_snapshot() {
    [ -n "$STATS_VIEW" ] || { echo -; return; }
    sql_value bench "SELECT (j->>'decisions')::numeric || ' ' ||
                            (coalesce((j->>'l1_hits')::numeric, 0) + coalesce((j->>'l2_hits')::numeric, 0))
                            || ' ' || coalesce(j->>'log_enqueued', '-') || ' ' || coalesce(j->>'log_dropped', '-')
                       FROM (SELECT to_jsonb(s) AS j FROM $STATS_VIEW s LIMIT 1) x" 2>/dev/null || echo -
}

# Interference: the machine may be shared. A snapshot is "all busy CPU
# ticks of the machine, ticks of this run's own processes": this shell and
# everything it waited for (pgbench, psql), the server and its live children
# (exited backends are in the postmaster's children's time). Over a run, the
# difference is the CPU that something else on the machine took.
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
add_note() { # add_note <extra> <key=value>
    if [ "$1" = - ]; then echo "$2"; else echo "$1;$2"; fi
}

# One line of runs.tsv: record_run <id> <workload> <kind> <clients> <per_call>
#   <vs_select1> <vs_sql> <vs_sql_label> <prefixes> <start> <duration>
#   <status> <cpu_before> <hits_before> <extra>
record_run() {
    local end cpu_after hits_after
    end=$(date +%s.%N)
    cpu_after=$(cpu_snapshot)
    hits_after=$(stats_snapshot)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10}" "$end" "${11}" "${12}" "${13}" \
        "$cpu_after" "${14}" "$hits_after" "${15}" >>"$RUNS"
}

# bench_run <id> <workload> <kind> <clients> <script> [options] -- runs pgbench
#   --role R           connect as R (default postgres)
#   --per-call N       decisions per transaction (default 1; 0: not decisions)
#   --vs-select1 ID    the SELECT 1 run to compare with
#   --vs-sql ID        the SQL baseline run to compare with
#   --vs-sql-label L   what that baseline is, when it is not the SQL reference
#   --duration S       instead of DURATION
#   --extra TEXT       free-form note kept in results.json
#   --options OPTS     server settings for its sessions (PGOPTIONS, e.g. "-c decide.log=none")
#   --background       start pgbench and return (the caller waits on BENCH_PID)
bench_run() {
    local id=$1 workload=$2 kind=$3 clients=$4 script=$5
    shift 5
    local role=postgres per_call=1 vs1=- vsql=- vlabel=- dur=$DURATION extra=- background=0 retry=1 options=
    while [ $# -gt 0 ]; do
        case $1 in
            --role) role=$2; shift ;;
            --per-call) per_call=$2; shift ;;
            --vs-select1) vs1=$2; shift ;;
            --vs-sql) vsql=$2; shift ;;
            --vs-sql-label) vlabel=$2; shift ;;
            --duration) dur=$2; shift ;;
            --extra) extra=$2; shift ;;
            --background) background=1 ;;
            --no-retry) retry=0 ;;
            --options) options=$2; shift ;;
            *) die "bench_run: unknown option $1" ;;
        esac
        shift
    done
    local threads=$clients
    [ "$threads" -le "$(nproc)" ] || threads=$(nproc)
    cp "$BENCH/workloads/$script" "$RAW/$script"
    chown postgres: "$RAW/$script"
    # Many clients need time to connect and compile the policy set in each
    # backend before the measured window opens.
    if [ "$clients" -ge 32 ] && [ "$dur" -lt "$MANY_CLIENTS_MIN_DURATION" ]; then
        dur=$MANY_CLIENTS_MIN_DURATION
    fi
    local cpu_before hits_before start
    hits_before=$(stats_snapshot)
    cpu_before=$(cpu_snapshot)
    start=$(date +%s.%N)
    printf '  %-22s %3s clients, %ss ... ' "$id" "$clients" "$dur"
    local cmd=(env PGOPTIONS="$options"
               "$BIN/pgbench" -n -M prepared -c "$clients" -j "$threads" -T "$dur"
               -D actors="$ACTORS" -D resources="$RESOURCES"
               -l --log-prefix="$RAW/$id" -h "$SOCK" -p "$PORT" -U "$role"
               -f "$RAW/$script" bench)
    if [ "$background" = 1 ]; then
        runuser -u postgres -- "${cmd[@]}" >"$OUT/raw/$id.out" 2>&1 &
        BENCH_PID=$!
        BG_PIDS+=("$BENCH_PID")
        BENCH_BG_META=("$id" "$workload" "$kind" "$clients" "$per_call" "$vs1" "$vsql" "$vlabel" "$id" "$start" "$dur" "$cpu_before" "$hits_before" "$extra")
        echo "started in the background"
        return 0
    fi
    # Run; if something else on the machine took more than OTHER_CPU_LIMIT %
    # of its CPU meanwhile, run again (at most MAX_ATTEMPTS in all, within
    # the run's retry budget). The last attempt is the one reported.
    local status attempt=1 other
    while true; do
        status=ok
        runuser -u postgres -- "${cmd[@]}" >"$OUT/raw/$id.out" 2>&1 || status=failed
        other=$(other_cpu_pct "$cpu_before" "$(cpu_snapshot)" "$start")
        if [ "$status" = ok ] && [ "$retry" = 1 ] && [ "$other" -gt "$OTHER_CPU_LIMIT" ] &&
           [ "$attempt" -lt "$MAX_ATTEMPTS" ] && [ $((RETRY_USED + dur)) -le "$RETRY_BUDGET" ]; then
            printf 'disturbed (other CPU %s%%), again ... ' "$other"
            RETRY_USED=$((RETRY_USED + dur))
            attempt=$((attempt + 1))
            rm -f "$RAW/$id".[0-9]*
            hits_before=$(stats_snapshot)
            cpu_before=$(cpu_snapshot)
            start=$(date +%s.%N)
            continue
        fi
        break
    done
    [ "$attempt" = 1 ] || extra=$(add_note "$extra" "attempts=$attempt")
    record_run "$id" "$workload" "$kind" "$clients" "$per_call" "$vs1" "$vsql" "$vlabel" "$id" \
        "$start" "$dur" "$status" "$cpu_before" "$hits_before" "$extra"
    if [ "$status" = ok ]; then
        sed -nE 's/^tps = ([0-9.]+) .*/\1 tps (pgbench summary)/p' "$OUT/raw/$id.out"
    else
        echo "FAILED"
        tail -n 5 "$OUT/raw/$id.out" | sed 's/^/    /'
        FAILURES=$((FAILURES + 1))
    fi
}
FAILURES=0

# The baselines, run once each at first need.
select1() { # select1 <clients>
    has_run "select1@$1" || bench_run "select1@$1" "SELECT 1" baseline "$1" select1.sql --per-call 0
}
reference() { # reference <mix> <clients>
    has_run "ref-$1@$2" ||
        bench_run "ref-$1@$2" "SQL baseline: $1" baseline "$2" "ref_$1.sql" --vs-select1 "select1@$2"
}
decision_run() { # decision_run <mix> <clients> [bench_run options]: decide() next to both baselines
    local mix=$1 clients=$2
    shift 2
    select1 "$clients"
    reference "$mix" "$clients"
    has_run "$mix@$clients" ||
        bench_run "$mix@$clients" "$mix" decide "$clients" "decide_$mix.sql" \
            --vs-select1 "select1@$clients" --vs-sql "ref-$mix@$clients" "$@"
}

# ---------------------------------------------------------------------------
# The workloads. Each workload_<name> runs what it needs; baselines shared
# between workloads run once.

workload_sweep() {
    section "scale sweep: one uncached decision in the backend (bench/micro.sql)"
    note "data sets of 10000 actors in 50 roles, 50000 resources (issue 2); $SWEEP_CALLS calls per pass"
    local p db
    : >"$OUT/raw/sweep.jsonl"
    for p in 1000 10000 100000; do
        db=sweep_$p
        generate "$db" "$p" 10000 50 50000
        # A fresh connection: the first pass starts with an empty entity
        # cache. Run again (once) if other work took the CPU meanwhile.
        local attempt=1 cpu0 t0 line other
        while true; do
            cpu0=$(cpu_snapshot)
            t0=$(date +%s.%N)
            line=$(psql_db "$db" -At -v calls="$SWEEP_CALLS" -v actors=10000 -v resources=50000 \
                       <"$BENCH/micro.sql" | tail -n 1)
            other=$(other_cpu_pct "$cpu0" "$(cpu_snapshot)" "$t0")
            if [ "$other" -gt "$OTHER_CPU_LIMIT" ] && [ "$attempt" -lt 2 ] &&
               [ $((RETRY_USED + 10)) -le "$RETRY_BUDGET" ]; then
                note "disturbed (other CPU $other%), again"
                RETRY_USED=$((RETRY_USED + 10))
                attempt=$((attempt + 1))
                continue
            fi
            break
        done
        printf '%s\n' "${line%\}}, \"other_cpu_pct\" : $other, \"attempts\" : $attempt}" >>"$OUT/raw/sweep.jsonl"
        tail -n 1 "$OUT/raw/sweep.jsonl" | sed -E 's/.*"load_ms" : ([0-9.]+).*"cold_us" : ([0-9.]+), "warm_us" : ([0-9.]+), "allowed_us" : ([0-9.]+).*/  policy set load \1 ms; cold \2 us, warm \3 us per decide(); decide_allowed() \4 us/'
        runuser -u postgres -- "$BIN/dropdb" -h "$SOCK" -p "$PORT" "$db"
    done
}

workload_hot() {
    section "hot: 100 repeated requests"
    decision_run hot 2
    # the same through decide_allowed(): a one-column result, like SELECT 1's
    bench_run "hot-allowed@2" "hot, decide_allowed()" decide 2 decide_allowed_hot.sql \
        --vs-select1 select1@2 --vs-sql ref-hot@2
}

workload_zipf() {
    section "zipf: skew 1.1 over 1M requests"
    decision_run zipf 2
}

workload_cold() {
    section "cold: every request new"
    decision_run cold 2
}

workload_batch() {
    section "batch: decide_many() with 100 requests a call"
    select1 2
    reference cold 2
    bench_run "batch@2" "batch (decide_many x100)" decide 2 decide_batch.sql --per-call 100 \
        --vs-select1 select1@2 --vs-sql ref-cold@2 --vs-sql-label "SQL baseline: cold, per decision"
}

workload_rls() {
    section "rls: 100,000 rows read through decide_allowed()"
    bench_run "rls-plain@1" "RLS baseline: same read, no RLS" baseline 1 rls_read.sql \
        --role bench_plain --per-call 0
    bench_run "rls@1" "RLS read, 100k rows" decide 1 rls_read.sql --role bench_reader \
        --per-call 0 --vs-sql rls-plain@1 --vs-sql-label "the same read with no RLS"
}

workload_churn() {
    section "policy churn: a policy changes every second during zipf"
    select1 2
    reference zipf 2
    has_run zipf@2 || decision_run zipf 2
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
                   (coalesce((j->>'l1_hits')::numeric, 0) + coalesce((j->>'l2_hits')::numeric, 0))
                   || ' ' || coalesce(j->>'epoch', '-')
              FROM (SELECT to_jsonb(s) AS j FROM $STATS_VIEW s LIMIT 1) x \\watch 0.2" &
        sampler=$!
        BG_PIDS+=("$sampler")
    fi
    bench_run "churn@2" "zipf + policy churn (1/s)" decide 2 decide_zipf.sql --no-retry \
        --vs-select1 select1@2 --vs-sql ref-zipf@2 --extra "no_churn=zipf@2"
    kill "$writer" 2>/dev/null || true
    wait "$writer" 2>/dev/null || true
    if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
    fi
    epoch_after=$(sql_value bench 'SELECT decide_epoch()')
    note "the writer committed $((epoch_after - epoch_before)) policy changes"
    sed -i "\$s/no_churn=zipf@2\$/no_churn=zipf@2;changes=$((epoch_after - epoch_before))/" "$RUNS"
}

workload_logging() {
    section "logging: zipf with the decision log off (decide.log = none) next to on (the default)"
    if [ -z "$(sql_value bench "SELECT current_setting('decide.log', true)")" ]; then
        note "no decision log in decide $EXT_VERSION (no decide.log setting): skipped"
        return 0
    fi
    has_run zipf@2 || decision_run zipf 2
    bench_run "zipf-nolog@2" "zipf, decide.log = none" decide 2 decide_zipf.sql \
        --options "-c decide.log=none" --vs-select1 select1@2 --vs-sql ref-zipf@2 \
        --extra "logging_on=zipf@2"
}

workload_shapes() {
    section "load shapes on zipf: smoke (1), normal (2), peak (8), stress (64 clients)"
    local c
    for c in 1 2 8 64; do
        decision_run zipf "$c"
    done
}

# Spike: 2 clients all along; 62 more join for the middle third.
spike_run() { # spike_run <id> <workload> <kind> <script> [--vs-select1 ID]
    local id=$1 workload=$2 kind=$3 script=$4
    shift 4
    # At least 3 s a phase: 62 new backends need seconds to connect and
    # compile the policy set before their first decision.
    local third=$(( (DURATION + 2) / 3 ))
    [ "$third" -ge 3 ] || third=3
    bench_run "$id" "$workload" "$kind" 2 "$script" --background --duration $((3 * third)) "$@"
    local base_pid=$BENCH_PID
    local meta=("${BENCH_BG_META[@]}")
    sleep "$third"
    printf '  %-22s burst of 62 clients for %ss\n' "$id" "$third"
    local burst_status=ok
    runuser -u postgres -- "$BIN/pgbench" -n -M prepared -c 62 -j "$(nproc)" -T "$third" \
        -D actors="$ACTORS" -D resources="$RESOURCES" -l --log-prefix="$RAW/$id-burst" \
        -h "$SOCK" -p "$PORT" -f "$RAW/$script" bench >"$OUT/raw/$id-burst.out" 2>&1 || burst_status=failed
    local status=ok
    wait "$base_pid" || status=failed
    [ "$burst_status" = ok ] || status=failed
    [ "$status" = ok ] || FAILURES=$((FAILURES + 1))
    record_run "${meta[0]}" "${meta[1]}" "${meta[2]}" "2→64→2" "${meta[4]}" "${meta[5]}" \
        "${meta[6]}" "${meta[7]}" "$id,$id-burst" "${meta[9]}" "${meta[10]}" "$status" \
        "${meta[11]}" "${meta[12]}" "spike=${third}s"
    echo "  $id: $status"
}

workload_spike() {
    section "spike: 2 -> 64 -> 2 clients on zipf"
    spike_run "select1-spike" "SELECT 1" baseline select1.sql --per-call 0
    spike_run "spike" "zipf" decide decide_zipf.sql --vs-select1 select1-spike
}

workload_soak() {
    section "soak: zipf at 8 clients for ${SOAK_DURATION}s"
    select1 8
    local rss_before rss_after
    rss_before=$(ps -o rss= --ppid "$SERVER_PID" | awk '{s += $1} END {print s + 0}')
    bench_run "soak@8" "zipf (soak)" decide 8 decide_zipf.sql --duration "$SOAK_DURATION" --no-retry \
        --vs-select1 select1@8 --vs-sql ref-zipf@8 --extra "rss_kb_before=$rss_before"
    rss_after=$(ps -o rss= --ppid "$SERVER_PID" | awk '{s += $1} END {print s + 0}')
    sed -i "\$s/rss_kb_before=$rss_before\$/rss_kb_before=$rss_before;rss_kb_after=$rss_after/" "$RUNS"
    note "server processes' RSS: ${rss_before} kB before, ${rss_after} kB after"
}

# ---------------------------------------------------------------------------
needs_main=0
for w in "${WORKLOADS[@]}"; do [ "$w" = sweep ] || needs_main=1; done
if [ "$needs_main" = 1 ]; then
    section "data set"
    generate bench "$POLICIES" "$ACTORS" "$ROLES" "$RESOURCES"
    psql_db bench <"$BENCH/reference.sql" >/dev/null 2>"$TMP/reference.log" ||
        { cat "$TMP/reference.log"; die "loading bench/reference.sql failed"; }
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

printf 'finished\t%s\nelapsed_s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(( $(date +%s) - START_TIME ))" >>"$OUT/raw/meta.tsv"

# ---------------------------------------------------------------------------
section "results"
report_args=(--raw "$RAW" --out "$OUT")
[ "$CHECK" = 1 ] && report_args+=(--check "$BENCH/baseline.json")
[ "$UPDATE_BASELINE" = 1 ] && report_args+=(--update-baseline "$BENCH/baseline.json")
rc=0
perl "$BENCH/report.pl" "${report_args[@]}" || rc=$?
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
