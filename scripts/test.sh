#!/usr/bin/env bash
# Runs the whole test suite of decide:
#
#   sudo bash scripts/test.sh
#
#  1. installs the Debian packages of the test set (`scripts/install-deps.sh
#     test`: what building needs, redis-server, perl and IPC::Run; fast when
#     present);
#  2. copies the working tree (tracked and new files, not .git, not build
#     artefacts) into a fresh temporary directory (scripts/cluster.sh);
#  3. checks the layers of src/ (scripts/check-layers.sh), builds the copy
#     with -Werror through PGXS and installs it (as root);
#  4. as the "postgres" OS user, runs in that copy:
#       - the regression tests (sql/*.sql, expected/*.out) with pg_regress,
#       - the isolation specs (specs/*.spec), if any, with pg_isolation_regress,
#       - the TAP tests (t/*.pl), if any, with prove,
#     each through `make installcheck`, each in its own temporary instance
#     (see REGRESS_OPTS / ISOLATION_OPTS in the Makefile), and any unit-test
#     target the Makefile offers (`make unittest` or `make check-units`);
#  5. prints why anything failed (regression diffs, server logs, TAP logs)
#     and ends with one line "N passed, N failed".
#
# Exit status: 0 when everything passed, 1 otherwise.
#
# Environment:
#   DECIDE_KEEP_TMP=1          keep the temporary directory (its path is printed)
#   DECIDE_TEST_TIMEOUT=SECS   limit for each stage (default 1800)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
STAGE_TIMEOUT=${DECIDE_TEST_TIMEOUT:-1800}
START_TIME=$(date +%s)
DC_NAME=test.sh
DC_PG_CONFIG=$PG_CONFIG
# shellcheck source=scripts/cluster.sh
. "$REPO/scripts/cluster.sh"

say() { printf '\n=== %s ===\n' "$*"; }
note() { printf 'test.sh: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    note "must run as root (it installs packages and the extension); try: sudo bash $0" >&2
    exit 1
fi

# One locale everywhere, so that outputs do not depend on the caller's; no
# connection settings of the caller may leak into the test instances.
dc_clean_env

# The work directory; on exit the traps of scripts/cluster.sh stop the
# running stage (stop_stage), then, by the PID in its postmaster.pid, every
# server whose data directory is under $WORK (pg_regress and
# PostgreSQL::Test::Cluster stop their servers, but after an interruption
# one may be left), and remove $WORK (kept with DECIDE_KEEP_TMP=1).
DC_KEEP_TMP=${DECIDE_KEEP_TMP:-0}
dc_workdir decide-test
WORK=$DC_TMP
SRC=$WORK/src

stop_stage() {
    if [ -n "${STAGE_PID:-}" ]; then
        kill -TERM -- "-$STAGE_PID" 2>/dev/null || kill -TERM "$STAGE_PID" 2>/dev/null || true
        wait "$STAGE_PID" 2>/dev/null || true
    fi
}
DC_BEFORE_STOP=stop_stage

TOTAL_PASS=0
TOTAL_FAIL=0
SUMMARY=()

finish() {
    say "summary"
    local line
    for line in "${SUMMARY[@]}"; do
        printf '  %s\n' "$line"
    done
    printf '  time: %ss\n' "$(( $(date +%s) - START_TIME ))"
    printf '%d passed, %d failed\n' "$TOTAL_PASS" "$TOTAL_FAIL"
    if [ "$TOTAL_FAIL" -ne 0 ]; then
        exit 1
    fi
    exit 0
}

record() { # record <stage> <passed> <failed>
    TOTAL_PASS=$((TOTAL_PASS + $2))
    TOTAL_FAIL=$((TOTAL_FAIL + $3))
    SUMMARY+=("$1: $2 passed, $3 failed")
}

# Prints a file with a header, at most $2 lines (the last ones).
show() {
    local file=$1 max=${2:-2000}
    [ -s "$file" ] || return 0
    local n
    n=$(wc -l <"$file")
    printf -- '----- %s' "${file#"$WORK"/}"
    if [ "$n" -gt "$max" ]; then
        printf ' (last %d of %d lines)' "$max" "$n"
    fi
    printf ' -----\n'
    tail -n "$max" "$file"
    printf -- '----- end of %s -----\n' "${file#"$WORK"/}"
}

# ---------------------------------------------------------------------------
say "dependencies"
if ! dc_install_deps test; then
    record "dependencies" 0 1
    finish
fi

# ---------------------------------------------------------------------------
say "copying the working tree to $SRC"
# Tracked and new files, minus what .gitignore names (build artefacts, test
# output); without git, the same with a fixed list of exclusions.
dc_copy_tree "$SRC"
note "$(find "$SRC" -type f | wc -l) files copied ($DC_BUILT_FROM)"

# ---------------------------------------------------------------------------
say "layers (scripts/check-layers.sh)"
if (cd "$SRC" && bash scripts/check-layers.sh); then
    record "layers" 1 0
else
    record "layers" 0 1
fi

# ---------------------------------------------------------------------------
say "build (-Werror) and install"
build_log=$WORK/build.log
if ! dc_build "$SRC" "$build_log" COPT=-Werror; then
    cat "$build_log"
    note "build or install failed"
    record "build" 0 1
    finish
fi
grep -E ': (warning|error|note): ' "$build_log" || true
note "built and installed into $("$PG_CONFIG" --pkglibdir)"

# Temporary files and sockets of the test servers (pg_regress, TAP) go to
# $WORK/tmp, so that an interrupted run leaves nothing behind in /tmp.
mkdir -p "$WORK/tmp"
chown -R postgres: "$WORK"
chmod 755 "$WORK"

# Runs a command in the copy as postgres, with a time limit, showing its
# output and keeping it in a log. timeout(1) puts the command in a process
# group of its own; STAGE_PID lets the traps stop that group.
STAGE_PID=
as_postgres() { # as_postgres <log> <command...>
    local log=$1
    shift
    : >"$log"
    (cd "$SRC" && exec timeout -k 30 "$STAGE_TIMEOUT" \
        runuser -u postgres -- env HOME="$WORK" TMPDIR="$WORK/tmp" "$@") </dev/null >"$log" 2>&1 &
    STAGE_PID=$!
    # tail and the stage both run in the background: a signal to this script
    # runs its trap at once instead of after the stage.
    tail -n +1 -f --pid="$STAGE_PID" "$log" &
    local tail_pid=$! rc=0
    wait "$STAGE_PID" || rc=$?
    STAGE_PID=
    wait "$tail_pid" || true
    if [ "$rc" -eq 124 ]; then
        note "timed out after ${STAGE_TIMEOUT}s: $*"
    fi
    return "$rc"
}

# Counts pg_regress / pg_isolation_regress results in a log: "test x ... ok",
# "     x ... FAILED" (PostgreSQL 15) and "ok 1 - x" / "not ok 1 - x" (16+).
count_regress() { # count_regress <log> -> "passed failed"
    local pass fail
    pass=$(grep -cE '^(test +|[[:space:]]+)[^[:space:]]+ +\.\.\. +ok\b|^ok [0-9]+ ' "$1" || true)
    fail=$(grep -cE '\.\.\. +FAILED|^not ok [0-9]+ ' "$1" || true)
    echo "$pass $fail"
}

make_vars=(PG_CONFIG="$PG_CONFIG")

run_pg_regress_stage() { # <stage name> <log> <diffs> <server log> <make overrides...>
    local name=$1 log=$2 diffs=$3 serverlog=$4
    shift 4
    say "$name"
    local rc=0
    as_postgres "$log" make installcheck "${make_vars[@]}" "$@" || rc=$?
    local pass fail
    read -r pass fail < <(count_regress "$log")
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        note "$name: exited with status $rc before reporting a failed test"
        fail=1
    fi
    if [ "$rc" -ne 0 ] || [ "$fail" -ne 0 ]; then
        say "$name: why it failed"
        show "$diffs" 3000
        show "$serverlog" 200
    fi
    record "$name" "$pass" "$fail"
}

# ---------------------------------------------------------------------------
# The three suites run as separate `make installcheck` runs (the others
# switched off on the command line) so that a failure in one does not hide
# the results of the next.
run_pg_regress_stage "regression tests (pg_regress)" "$WORK/regress.log" \
    "$SRC/regression.diffs" "$SRC/log/postmaster.log" \
    ISOLATION= TAP_TESTS=

if compgen -G "$SRC/specs/*.spec" >/dev/null; then
    run_pg_regress_stage "isolation tests (pg_isolation_regress)" "$WORK/isolation.log" \
        "$SRC/output_iso/regression.diffs" "$SRC/output_iso/log/postmaster.log" \
        REGRESS= TAP_TESTS=
else
    SUMMARY+=("isolation tests: none (no specs/*.spec)")
fi

if compgen -G "$SRC/t/*.pl" >/dev/null; then
    say "TAP tests (prove)"
    tap_log=$WORK/tap.log
    rc=0
    as_postgres "$tap_log" make installcheck "${make_vars[@]}" REGRESS= ISOLATION= || rc=$?
    pass=0
    fail=0
    if grep -q '^All tests successful' "$tap_log"; then
        pass=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$tap_log" | tail -n 1)
        pass=${pass:-0}
    else
        total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$tap_log" | tail -n 1)
        total=${total:-0}
        failed_tests=0
        failed_files=()
        # "t/001_x.pl (Wstat: 256 (exited 1) Tests: 5 Failed: 1)": a file
        # that died counts at least once.
        while IFS= read -r line; do
            file=${line%% *}
            n=$(sed -nE 's/.*Failed: ([0-9]+)\).*/\1/p' <<<"$line")
            n=${n:-0}
            failed_tests=$((failed_tests + n))
            fail=$((fail + (n > 0 ? n : 1)))
            failed_files+=("$file")
        done < <(grep -E '^[^[:space:]]+\.pl +\(Wstat: ' "$tap_log" || true)
        pass=$((total - failed_tests))
        [ "$pass" -ge 0 ] || pass=0
        if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
            note "TAP: exited with status $rc before reporting a failed test"
            fail=1
        fi
        say "TAP tests: why they failed"
        for file in "${failed_files[@]}"; do
            base=$(basename "$file" .pl)
            show "$SRC/tmp_check/log/regress_log_$base" 400
            for serverlog in "$SRC"/tmp_check/log/"${base}"_*.log; do
                [ -e "$serverlog" ] && show "$serverlog" 80
            done
        done
        if [ ${#failed_files[@]} -eq 0 ]; then
            for f in "$SRC"/tmp_check/log/regress_log_*; do
                [ -e "$f" ] && show "$f" 200
            done
        fi
    fi
    record "TAP tests" "$pass" "$fail"
else
    SUMMARY+=("TAP tests: none (no t/*.pl)")
fi

# ---------------------------------------------------------------------------
# Hook for stand-alone test programs (e.g. the evaluator's C unit tests): any
# of these targets the Makefile defines is run. Lines "ok N"/"not ok N" in
# its output are counted; otherwise the target counts as one test.
unit_targets=0
for target in unittest check-units; do
    if (cd "$SRC" && runuser -u postgres -- make -n "$target" "${make_vars[@]}" >/dev/null 2>&1); then
        unit_targets=$((unit_targets + 1))
        say "unit tests (make $target)"
        log=$WORK/unit-$target.log
        rc=0
        as_postgres "$log" make "$target" "${make_vars[@]}" || rc=$?
        pass=$(grep -cE '^ok [0-9]+' "$log" || true)
        fail=$(grep -cE '^not ok [0-9]+' "$log" || true)
        if [ "$pass" -eq 0 ] && [ "$fail" -eq 0 ]; then
            if [ "$rc" -eq 0 ]; then pass=1; else fail=1; fi
        elif [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
            fail=1
        fi
        [ "$rc" -eq 0 ] || note "make $target exited with status $rc"
        record "unit tests (make $target)" "$pass" "$fail"
    fi
done
[ "$unit_targets" -gt 0 ] || SUMMARY+=("unit tests: none (no unittest or check-units target)")

finish
