#!/usr/bin/env bash
# Installs, from Debian's own archive, the packages that one command of
# decide needs on Debian 12, and nothing more. Idempotent: when every
# package of the sets named is already installed it does not touch apt at
# all, so repeated runs take a moment; otherwise it runs `apt-get update`
# first, then installs what is missing (without recommended packages).
#
#   bash scripts/install-deps.sh [SET...]      (as root, or through sudo)
#
# Sets (each command names its own; several may be given):
#   build     what building decide and running a server with it needs: gcc
#             and make (build-essential), PostgreSQL 15 (postgresql-15:
#             server, initdb, pg_ctl, psql, pgbench), its server headers and
#             PGXS (postgresql-server-dev-15), hiredis (libhiredis-dev).
#             scripts/demo.sh; the default when no set is named.
#   test      build + redis-server (the TAP tests start their own Redis),
#             perl and libipc-run-perl (prove; PostgreSQL::Test::Cluster needs
#             IPC::Run). `make unittest` builds with gcc's AddressSanitizer
#             and UBSan, whose runtimes (libasan8, libubsan1) come with gcc.
#             scripts/test.sh, and so CI (.ci/run).
#   fuzz      build-essential, clang-14 and libclang-rt-14-dev (libFuzzer and
#             the sanitizer runtimes of clang). fuzz/run.sh.
#   sanitize  the build set: gcc's ASan/UBSan come with it. fuzz/sanitize.sh.
#   bench     build + perl (bench/report.pl), gnuplot-nox (its charts) and
#             procps (ps). bench/run.sh.
#   layers    build + redis-server. bench/layers.sh.
#   profile   build + valgrind (callgrind). bench/profile.sh.
#   all       every set above.
#
# LLVM bitcode: Debian's PostgreSQL 15 is built with LLVM (with_llvm = yes in
# /usr/lib/postgresql/15/lib/pgxs/src/Makefile.global), so PGXS also compiles
# each source into bitcode for JIT inlining, with CLANG = /usr/bin/clang-14.
# postgresql-server-dev-15 depends on clang-14 and llvm-14-dev itself, so
# the build set does not name a clang: installing the server headers brings
# it, and the extension is built and installed with its bitcode, as any
# PGXS extension on Debian is.
#
# The postgresql-15 package may create and start a "main" cluster on port
# 5432, and redis-server Debian's own Redis on 127.0.0.1:6379. Both are left
# alone: nothing in this repository uses them or their ports; the tests, the
# demo and the benchmarks start their own throwaway servers.
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*"; }

BUILD=(build-essential postgresql-15 postgresql-server-dev-15 libhiredis-dev)
set_packages() { # set_packages <set>: prints its packages, one a line
    case $1 in
        build|sanitize) printf '%s\n' "${BUILD[@]}" ;;
        test)    printf '%s\n' "${BUILD[@]}" redis-server perl libipc-run-perl ;;
        fuzz)    printf '%s\n' build-essential clang-14 libclang-rt-14-dev ;;
        bench)   printf '%s\n' "${BUILD[@]}" perl gnuplot-nox procps ;;
        layers)  printf '%s\n' "${BUILD[@]}" redis-server ;;
        profile) printf '%s\n' "${BUILD[@]}" valgrind ;;
        all)     local s; for s in test fuzz bench layers profile; do set_packages "$s"; done ;;
        *) return 1 ;;
    esac
}

SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(build)
PACKAGES=()
for s in "${SETS[@]}"; do
    case $s in
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    esac
    pkgs=$(set_packages "$s") || { log "unknown set '$s' (known: build test fuzz sanitize bench layers profile all)" >&2; exit 2; }
    read -r -d '' -a more <<<"$pkgs" || true
    PACKAGES+=("${more[@]}")
done
mapfile -t PACKAGES < <(printf '%s\n' "${PACKAGES[@]}" | awk '!seen[$0]++')

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    log "${SETS[*]}: all ${#PACKAGES[@]} packages already installed"
else
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            exec sudo -n -- bash "$0" "$@"
        fi
        log "must run as root to install: ${missing[*]}" >&2
        exit 1
    fi
    log "${SETS[*]}: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt or dpkg run (a colleague's install) holds the lock: wait
    # for it rather than fail.
    apt_opts=(-y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600
              -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    # A fresh machine may have an empty or stale package index.
    apt-get update -q -o DPkg::Lock::Timeout=600 </dev/null
    apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" </dev/null
    for pkg in "${missing[@]}"; do
        if ! installed "$pkg"; then
            log "package $pkg did not install" >&2
            exit 1
        fi
    done
fi

# The servers of the tests, the demo and the benchmarks run as "postgres"
# (initdb and postgres refuse root). postgresql-common creates that user;
# make sure.
if printf '%s\n' "${PACKAGES[@]}" | grep -qx postgresql-15; then
    if ! id -u postgres >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ]; then
            log "no postgres OS user, and not root to create it" >&2
            exit 1
        fi
        log "creating the postgres OS user"
        groupadd --system postgres 2>/dev/null || true
        useradd --system --gid postgres --home-dir /var/lib/postgresql \
            --shell /bin/bash --comment "PostgreSQL administrator" postgres
    fi
    PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
    if [ ! -x "$PG_CONFIG" ]; then
        log "$PG_CONFIG is missing" >&2
        exit 1
    fi
    log "ok: PostgreSQL $("$PG_CONFIG" --version | sed 's/^PostgreSQL //'), postgres user uid $(id -u postgres)"
fi
