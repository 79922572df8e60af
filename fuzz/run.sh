#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and fails on any crash,
# sanitizer report, timeout or property violation.
#
#   bash fuzz/run.sh [seconds-per-target]      (default 60; or: make fuzz)
#
# Installs clang-14 and libFuzzer when missing (`scripts/install-deps.sh
# fuzz`, as root), builds fuzz/build/fuzz_<target> with clang-14 and
# -fsanitize=fuzzer,address,undefined (fuzz/Makefile), then runs each from
# a scratch copy of its committed seed corpus, fuzz/corpus/<target>/, so
# that a run does not change the tree.  Inputs that crash are kept in
# fuzz/build/artifacts/<target>/; reproduce one with
#   fuzz/build/fuzz_<target> fuzz/build/artifacts/<target>/crash-...
#
# Environment:
#   FUZZ_TARGETS="glob evaluator"   run only these (default: all five)
#   FUZZ_JOBS=N                     parallel workers per target (default 1)
#   FUZZ_MERGE=1                    afterwards, merge new coverage into the
#                                   committed corpus (libFuzzer -merge=1)
#   FUZZ_CC=clang-14                the compiler
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_TARGET=${1:-60}
TARGETS=${FUZZ_TARGETS:-"glob request_key evaluator cache_value log_record log_chunk"}
JOBS=${FUZZ_JOBS:-1}
BUILD=fuzz/build

case $SECONDS_PER_TARGET in
    ''|*[!0-9]*) echo "fuzz/run.sh: seconds must be a number, not '$SECONDS_PER_TARGET'" >&2; exit 2 ;;
esac

# clang-14 and its runtimes (libFuzzer, ASan, UBSan): nothing to do when
# they are installed; otherwise installing them needs root.
bash scripts/install-deps.sh fuzz

echo "fuzz/run.sh: building the fuzz targets"
make -s -f fuzz/Makefile fuzzers ${FUZZ_CC:+FUZZ_CC="$FUZZ_CC"}

# A property violation aborts; any sanitizer report is fatal.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=()
summary=()
for target in $TARGETS; do
    binary=$BUILD/fuzz_$target
    seeds=fuzz/corpus/$target
    work=$BUILD/work/$target
    artifacts=$BUILD/artifacts/$target
    log=$BUILD/$target.log
    rm -rf "$work"
    mkdir -p "$work" "$artifacts"
    cp "$seeds"/* "$work"/ 2>/dev/null || true

    echo
    echo "=== fuzz $target: ${SECONDS_PER_TARGET}s ($(ls "$seeds" | wc -l) seeds) ==="
    rc=0
    # -timeout: one input taking more than 10 s is a hang, a failure.
    # -rss_limit_mb: a memory blow-up is a failure too.
    args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048
          -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/")
    if [ "$JOBS" -gt 1 ]; then
        args+=(-jobs="$JOBS" -workers="$JOBS")
    fi
    "$binary" "${args[@]}" "$work" >"$log" 2>&1 || rc=$?
    grep -E '^#[0-9]+ +(DONE|INITED)|^stat::number_of_executed_units|^stat::peak_rss_mb|^Done [0-9]+ runs' "$log" || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: ' "$log"; then
        echo "--- fuzz $target FAILED (exit status $rc); the end of $log:"
        tail -n 60 "$log"
        ls -1 "$artifacts" | sed 's/^/    artifact: /'
        failed+=("$target")
        summary+=("$target: FAILED after ${execs:-?} executions")
    else
        summary+=("$target: ${execs:-?} executions in ${SECONDS_PER_TARGET}s, clean")
    fi
    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
        "$binary" -merge=1 "$seeds" "$work" >"$BUILD/$target.merge.log" 2>&1
        echo "merged new coverage into $seeds ($(ls "$seeds" | wc -l) files)"
    fi
done

echo
echo "=== fuzz summary ==="
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz/run.sh: all targets clean"
