#!/usr/bin/env bash
# Installs what decide needs to build, test, fuzz and benchmark on Debian 12,
# from Debian's own archive. Idempotent: when every package is already
# installed it does not touch apt at all, so repeated runs take a moment.
#
#   bash scripts/install-deps.sh        (as root, or through sudo)
#
# The postgresql-15 package may create and start a "main" cluster on port
# 5432. It is left alone: nothing in this repository uses that cluster or
# its port; the tests and the demo start their own throwaway servers.
set -euo pipefail

PACKAGES=(
    build-essential          # gcc, make
    clang                    # fuzzing; PGXS also compiles LLVM bitcode with clang-14
    perl                     # prove and Test::More for the TAP tests
    postgresql-15            # server, initdb, pg_ctl, pgbench
    postgresql-server-dev-15 # PGXS, headers, pg_regress, pg_isolation_regress
    libhiredis-dev           # Redis client library (L3 cache)
    redis-server             # Redis for the TAP fault tests
    libipc-run-perl          # IPC::Run, needed by PostgreSQL::Test::Cluster
    gnuplot-nox              # benchmark charts
    valgrind                 # callgrind profiles (bench/profile.sh)
)

log() { printf 'install-deps: %s\n' "$*"; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    log "all ${#PACKAGES[@]} packages already installed"
else
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            exec sudo -n -- bash "$0" "$@"
        fi
        log "must run as root to install: ${missing[*]}" >&2
        exit 1
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-y -q -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef
              -o Dpkg::Options::=--force-confold)
    # A fresh machine may have an empty or stale package index.
    apt-get update -q </dev/null
    apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" </dev/null
    for pkg in "${missing[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        if [ "$status" != installed ]; then
            log "package $pkg did not install" >&2
            exit 1
        fi
    done
fi

# The servers of the tests and the demo run as "postgres" (initdb and
# postgres refuse root). postgresql-common creates that user; make sure.
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
