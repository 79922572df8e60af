#!/usr/bin/env bash
# Builds decide with AddressSanitizer and UndefinedBehaviorSanitizer and
# runs the pg_regress and isolation suites against it; fails on any test
# failure and on any sanitizer report.
#
#   sudo bash fuzz/sanitize.sh          (or: sudo make sanitize)
#
# How (Debian 12, packaged PostgreSQL 15, whose binaries are not
# instrumented; `scripts/install-deps.sh sanitize` installs the packages,
# scripts/cluster.sh copies, builds and starts and stops servers):
#  1. a private copy of the PostgreSQL installation in a temporary
#     directory (binaries find their lib/ and share/ relative to
#     themselves), so that the sanitized decide.so never reaches the
#     system's $libdir that other builds install into;
#  2. decide.so built by PGXS with
#        COPT="-fsanitize=address,undefined -fno-sanitize-recover=all
#              -fno-omit-frame-pointer -g"   with_llvm=no
#     (gcc; links libasan.so.8 and libubsan.so.1), installed into the copy
#     with DESTDIR;
#  3. the copy's `postgres` replaced by a wrapper that starts the real
#     binary with LD_PRELOAD="libasan.so.8 asan_preinit.so" (the runtime
#     must be loaded first; fuzz/asan_preinit.c works around a start-up
#     deadlock) and with ASAN_OPTIONS / UBSAN_OPTIONS below; only the
#     server runs under the sanitizers, not psql or pg_regress;
#  4. `make installcheck` as postgres with bindir= pointing at the copy,
#     regression tests first, then isolation specs (TAP tests not run);
#  5. any file the sanitizers wrote (log_path), a `runtime error:` in a
#     server log, or a server process that died, fails the run. A test
#     whose output differs while nothing died and nothing was reported
#     makes the stage run once more, in a fresh instance: the sanitized server is
#     slower, and tests that depend on the background worker's timing can
#     differ. If the stage then passes it is listed as timing-dependent
#     and does not fail the run; if not, it fails it.
#
# ASAN_OPTIONS: detect_leaks=0 (a backend exits without freeing its memory
# contexts, by design), alloc_dealloc_mismatch=0 (uninstrumented C++ in the
# server's ICU and LLVM), halt_on_error=1, log_path=<dir>.
# UBSAN_OPTIONS: halt_on_error=1, print_stacktrace=1, log_path=<dir>.
# What this does not see: overruns inside palloc chunks (the packaged
# server's memory contexts carve chunks out of malloc'd blocks; ASan sees
# only the block bounds) and errors in uninstrumented server code.
#
# Environment: DECIDE_KEEP_TMP=1 keeps the work directory;
# DECIDE_SANITIZE_PORT (default 54360); DECIDE_TEST_TIMEOUT (default 3600 s
# per suite).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PORT=${DECIDE_SANITIZE_PORT:-54360}
STAGE_TIMEOUT=${DECIDE_TEST_TIMEOUT:-3600}
SANITIZE_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
START=$(date +%s)

note() { printf 'sanitize.sh: %s\n' "$*"; }
say() { printf '\n=== %s ===\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    note "must run as root (the servers run as postgres); try: sudo bash $0" >&2
    exit 1
fi
DC_NAME=sanitize.sh
# shellcheck source=scripts/cluster.sh
. "$REPO/scripts/cluster.sh"
dc_clean_env
# The build set: gcc's ASan and UBSan runtimes come with gcc.
dc_install_deps sanitize

# The work directory. On exit, also on failure or Ctrl-C, the traps of
# scripts/cluster.sh stop, by the PID in its postmaster.pid, every server
# whose data directory is under $WORK (the canary's, pg_regress's), and
# remove $WORK (kept with DECIDE_KEEP_TMP=1).
DC_KEEP_TMP=${DECIDE_KEEP_TMP:-0}
dc_workdir decide-sanitize
WORK=$DC_TMP

LIBASAN=$(gcc -print-file-name=libasan.so)
LIBASAN=$(readlink -f "$LIBASAN")
[ -f "$LIBASAN" ] || { note "libasan not found (gcc -print-file-name=libasan.so)"; exit 1; }

# ---------------------------------------------------------------------------
say "private PostgreSQL installation in $WORK/pg"
DC_PG_CONFIG=$PG_CONFIG
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
dc_private_pg "$WORK/pg"
note "copied $BINDIR, $PKGLIBDIR and $SHAREDIR ($(du -sh "$WORK/pg" | cut -f1))"

# ---------------------------------------------------------------------------
say "build decide with $SANITIZE_FLAGS"
dc_copy_tree "$WORK/src"
if ! dc_build "$WORK/src" "$WORK/build.log" with_llvm=no COPT="$SANITIZE_FLAGS" DESTDIR="$WORK/pg"; then
    tail -n 50 "$WORK/build.log"
    note "build failed"
    exit 1
fi
if ! ldd "$WORK/pg$PKGLIBDIR/decide.so" | grep libasan >/dev/null; then
    note "decide.so is not linked with libasan"
    exit 1
fi
note "installed $WORK/pg$PKGLIBDIR/decide.so ($(ldd "$WORK/pg$PKGLIBDIR/decide.so" | grep -oE 'lib(a|ub)san\.so\.[0-9]+' | tr '\n' ' '))"

gcc -shared -fPIC -O2 -Wall -Werror -o "$WORK/asan_preinit.so" "$REPO/fuzz/asan_preinit.c" -ldl

# The server, and only the server, runs under the sanitizer runtime.
REPORTS=$WORK/sanitizer-reports
mkdir -p "$REPORTS" "$WORK/tmp"
mv "$WORK/pg$BINDIR/postgres" "$WORK/pg$BINDIR/postgres.real"
cat >"$WORK/pg$BINDIR/postgres" <<EOF
#!/bin/bash
# fuzz/sanitize.sh: the real server under AddressSanitizer and UBSan
export LD_PRELOAD="$LIBASAN $WORK/asan_preinit.so"
export ASAN_OPTIONS="detect_leaks=0:alloc_dealloc_mismatch=0:halt_on_error=1:abort_on_error=0:disable_coredump=1:log_path=$REPORTS/asan\${DECIDE_ASAN_EXTRA:+:\$DECIDE_ASAN_EXTRA}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORTS/ubsan"
exec -a "\$0" "\$(dirname "\$0")/postgres.real" "\$@"
EOF
chmod 755 "$WORK/pg$BINDIR/postgres"
if ! out=$(timeout 20 "$WORK/pg$BINDIR/postgres" -V 2>&1); then
    note "the wrapped server does not start: $out"
    exit 1
fi
# The runtime is really there: ASan lists its flags (on stderr, not in the
# report directory) when asked.
if ! DECIDE_ASAN_EXTRA=log_path=stderr:help=1 timeout 20 "$WORK/pg$BINDIR/postgres" -V 2>&1 |
        grep 'Available flags for AddressSanitizer' >/dev/null; then
    note "the wrapped server does not run under AddressSanitizer"
    exit 1
fi
note "server: $out, LD_PRELOAD=$LIBASAN asan_preinit.so"

# The canary module (fuzz/asan_canary.c), built the same way, into the copy.
gcc -shared -fPIC $SANITIZE_FLAGS -I"$("$PG_CONFIG" --includedir-server)" \
    -o "$WORK/pg$PKGLIBDIR/asan_canary.so" "$REPO/fuzz/asan_canary.c"
chown -R postgres: "$WORK"
chmod 755 "$WORK"

as_postgres() { runuser -u postgres -- env HOME="$WORK" TMPDIR="$WORK/tmp" "$@"; }

# ---------------------------------------------------------------------------
# Self-test: in a scratch server, a heap overflow and a too-large shift in
# the canary module must each leave a report (and kill only that backend).
say "self-test: the sanitizers catch planted bugs"
DC_BIN=$WORK/pg$BINDIR
dc_cluster_init "$WORK/canary" "$PORT"
echo "fsync = off" >>"$DC_DATA/postgresql.conf"
dc_cluster_start
canary_sql() { as_postgres "$WORK/pg$BINDIR/psql" -X -q -At -h "$DC_SOCK" -p "$PORT" -U postgres -d postgres -c "$1" 2>&1 || true; }
# After a backend dies the postmaster restarts the others and recovers.
canary_wait() {
    local i
    for i in $(seq 1 120); do
        [ "$(canary_sql 'SELECT 1')" = 1 ] && return 0
        sleep 0.5
    done
    return 1
}
canary_sql "CREATE FUNCTION asan_canary_read(int) RETURNS int AS 'asan_canary' LANGUAGE C STRICT;
            CREATE FUNCTION ubsan_canary_shift(int) RETURNS int AS 'asan_canary' LANGUAGE C STRICT;" >/dev/null
canary_ok=1
if [ -n "$(ls "$REPORTS")" ] || [ "$(canary_sql 'SELECT asan_canary_read(0) + ubsan_canary_shift(3)')" != 128 ]; then
    note "self-test: the canary functions misbehave without their bugs"
    canary_ok=0
fi
canary_sql 'SELECT asan_canary_read(8)' >/dev/null
canary_wait || { note "self-test: the scratch server did not recover"; canary_ok=0; }
if ! grep -l 'heap-buffer-overflow' "$REPORTS"/asan.* >/dev/null 2>&1; then
    note "self-test: no AddressSanitizer report for the planted heap overflow"
    canary_ok=0
fi
canary_sql 'SELECT ubsan_canary_shift(40)' >/dev/null
canary_wait || { note "self-test: the scratch server did not recover"; canary_ok=0; }
# (gcc's UBSan runtime writes to the server's stderr, i.e. its log)
if ! grep -l 'shift exponent 40 is too large' "$REPORTS"/* "$DC_LOG" >/dev/null 2>&1; then
    note "self-test: no UBSan report for the planted shift"
    canary_ok=0
fi
dc_cluster_stop
if [ "$canary_ok" != 1 ]; then
    ls -l "$REPORTS"; tail -n 30 "$DC_LOG"
    note "self-test failed: the sanitizer run would not see bugs"
    exit 1
fi
note "both planted bugs reported ($(ls "$REPORTS" | wc -l) report files); clearing them"
rm -f "$REPORTS"/* "$WORK/pg$PKGLIBDIR/asan_canary.so"

# ---------------------------------------------------------------------------
TOTAL_PASS=0
TOTAL_FAIL=0
SUMMARY=()
# A backend that died (a sanitizer report exits with status 1), any
# process killed by a signal, or a report that reached the server log.
DIED='server process \(PID [0-9]+\) (was terminated|exited with exit code)|terminated by signal|AddressSanitizer|runtime error:'
installcheck() { # <log> <make overrides...>
    local log=$1
    shift
    (cd "$WORK/src" && timeout -k 30 "$STAGE_TIMEOUT" runuser -u postgres -- \
        env HOME="$WORK" TMPDIR="$WORK/tmp" \
        make installcheck PG_CONFIG="$PG_CONFIG" bindir="$WORK/pg$BINDIR" \
        EXTRA_REGRESS_OPTS="--port=$PORT" TAP_TESTS= "$@") </dev/null 2>&1 | tee "$log"
}
sanitizer_trouble() { # <server log>: true if anything died or reported
    grep -qE "$DIED" "$1" 2>/dev/null || [ -n "$(ls "$REPORTS")" ]
}
FLAKY=()
run_suite() { # <name> <REGRESS|ISOLATION> <log> <diffs> <server log> <make overrides...>
    local name=$1 kind=$2 log=$3 diffs=$4 serverlog=$5
    shift 5
    say "$name"
    local rc=0 t0 pass fail failed_tests
    t0=$(date +%s)
    installcheck "$log" "$@" || rc=$?
    pass=$(grep -cE '^(test +|[[:space:]]+)[^[:space:]]+ +\.\.\. +ok\b|^ok [0-9]+ ' "$log" || true)
    fail=$(grep -cE '\.\.\. +FAILED|^not ok [0-9]+ ' "$log" || true)
    failed_tests=$(sed -nE 's/^(test +|[[:space:]]+)([^[:space:]]+) +\.\.\. +FAILED.*/\2/p' "$log" | xargs)
    if grep -qE "$DIED" "$serverlog" 2>/dev/null; then
        note "$name: a server process died or a sanitizer reported (see $serverlog):"
        grep -nE "$DIED" "$serverlog" | head -n 20
        fail=$((fail + 1))
    elif [ "$fail" -gt 0 ] && [ -n "$failed_tests" ] && ! sanitizer_trouble "$serverlog"; then
        # Only output differences, nothing died, no report: the sanitized
        # build is slower, and a test that depends on the background
        # worker's timing may differ. Show the differences, then run the
        # whole stage once more in a fresh instance (not just the failed
        # tests: some depend on what earlier tests left behind).
        [ -s "$diffs" ] && head -n 300 "$diffs"
        note "$name: output differences in: $failed_tests; nothing died and no sanitizer report."
        note "$name: running the stage once more, to tell a timing-dependent test from a finding"
        local retry_rc=0
        installcheck "$log.retry" "$@" || retry_rc=$?
        if [ "$retry_rc" -eq 0 ] && grep -qE '^ *(# )?All [0-9]+ tests passed' "$log.retry" &&
                ! sanitizer_trouble "$serverlog"; then
            note "$name: all passed the second time: $failed_tests are timing-dependent, not a sanitizer finding"
            FLAKY+=("$failed_tests (passed on the second run)")
            pass=$((pass + fail))
            fail=0
            rc=0
        else
            note "$name: failed again"
            [ -s "$diffs" ] && head -n 300 "$diffs"
        fi
    elif [ "$fail" -ne 0 ] && [ -s "$diffs" ]; then
        head -n 300 "$diffs"
    fi
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        note "$name: make installcheck exited with status $rc"
        fail=1
    fi
    if [ "$fail" -eq 0 ] && ! grep -qE '^ *(# )?All [0-9]+ tests passed' "$log" "$log.retry" 2>/dev/null; then
        note "$name: no 'All N tests passed' line"
        fail=$((fail + 1))
    fi
    TOTAL_PASS=$((TOTAL_PASS + pass))
    TOTAL_FAIL=$((TOTAL_FAIL + fail))
    SUMMARY+=("$name: $pass passed, $fail failed ($(( $(date +%s) - t0 ))s)")
}

run_suite "regression tests under ASan+UBSan" REGRESS "$WORK/regress.log" \
    "$WORK/src/regression.diffs" "$WORK/src/log/postmaster.log" ISOLATION=
if compgen -G "$WORK/src/specs/*.spec" >/dev/null; then
    run_suite "isolation tests under ASan+UBSan" ISOLATION "$WORK/isolation.log" \
        "$WORK/src/output_iso/regression.diffs" "$WORK/src/output_iso/log/postmaster.log" REGRESS=
fi

say "sanitizer reports"
reports=$(find "$REPORTS" -type f | sort)
if [ -n "$reports" ]; then
    for f in $reports; do
        printf -- '----- %s -----\n' "$f"
        head -n 80 "$f"
    done
    TOTAL_FAIL=$((TOTAL_FAIL + $(echo "$reports" | wc -l)))
    SUMMARY+=("sanitizer reports: $(echo "$reports" | wc -l)")
else
    note "none"
    SUMMARY+=("sanitizer reports: none")
fi

say "summary"
printf '  %s\n' "${SUMMARY[@]}"
[ ${#FLAKY[@]} -eq 0 ] || printf '  timing-dependent under the sanitized build: %s\n' "${FLAKY[@]}"
printf '  time: %ss\n' "$(( $(date +%s) - START ))"
printf '%d passed, %d failed\n' "$TOTAL_PASS" "$TOTAL_FAIL"
[ "$TOTAL_FAIL" -eq 0 ]
