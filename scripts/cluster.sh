# shellcheck shell=bash disable=SC2034  # the DC_* results are read by the scripts that source this
# scripts/cluster.sh — sourced, not run: what the scripts that build decide
# and start a server have in common.
#
#   . "$REPO/scripts/cluster.sh"
#
# Used by scripts/demo.sh, scripts/test.sh, fuzz/sanitize.sh, bench/run.sh,
# bench/layers.sh and bench/profile.sh. It offers:
#
#   dc_clean_env            one locale (C.UTF-8); no PG* connection settings
#                           of the caller (PG_CONFIG excepted)
#   dc_install_deps SET...  scripts/install-deps.sh with those package sets
#   dc_workdir PREFIX       a fresh directory /tmp/PREFIX.XXXXXX (DC_TMP),
#                           and the traps that clean up on exit, failure,
#                           Ctrl-C (INT), TERM and HUP (see "On exit" below)
#   dc_copy_tree DEST [REV] a private copy of the working tree (tracked and
#                           new files, without .git and what .gitignore names),
#                           or of git revision REV; DC_BUILT_FROM tells which
#   dc_build SRC LOG [MAKE VARIABLE=VALUE...]
#                           `make -j` and `make install` in SRC with PGXS,
#                           output to LOG (with DESTDIR=..., into a private copy)
#   dc_private_pg ROOT      a private copy of the PostgreSQL 15 installation
#                           (bin/, lib/, share/) under ROOT, without any
#                           decide: install into it with
#                           dc_build ... DESTDIR="$DC_PG_ROOT"; sets DC_BIN
#   dc_cluster_init DIR PORT
#                           initdb, as the postgres OS user, of a throwaway
#                           cluster in DIR: DC_DATA=DIR/data,
#                           DC_SOCK=DIR/sock (its Unix socket directory),
#                           DC_LOG=DIR/server.log; the caller appends its own
#                           settings to "$DC_DATA/postgresql.conf"
#   dc_cluster_start        starts it (pg_ctl -w) and sets DC_SERVER_PID to
#                           its postmaster's PID
#   dc_cluster_stop         stops it by that PID: fast shutdown (SIGINT),
#                           then immediate (SIGQUIT), then SIGKILL
#   dc_stop_servers_under DIR
#                           stops, by PID, every server whose data directory
#                           (postmaster.pid) is under DIR: what pg_regress or
#                           a TAP test may leave after an interruption
#   dc_as_postgres CMD...   runs CMD as the postgres OS user
#
# The servers listen on nothing but a Unix socket in a directory of their
# own (listen_addresses = '', set in postgresql.conf and again on the
# command line, where nothing written later into the configuration files can
# override it). The port number only names the socket file.
#
# On exit (normal end, error, Ctrl-C, TERM or HUP) the traps run, once and
# with further signals ignored: the function named by DC_BEFORE_STOP (given
# the exit status), then dc_cluster_stop, dc_stop_servers_under "$DC_TMP",
# the function named by DC_AFTER_STOP, and the removal of DC_TMP unless
# DC_KEEP_TMP=1. A script that sets traps of its own after dc_workdir
# replaces these.
#
# Processes are found by the PID their server wrote, never by name, and a
# PID is signalled only while it is still that server (its working directory
# is the data directory), so that nothing else on the machine is touched.

DC_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DC_PG_CONFIG=${DC_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
DC_NAME=${DC_NAME:-$(basename "$0")}
DC_TMP=
DC_KEEP_TMP=${DC_KEEP_TMP:-0}
DC_BEFORE_STOP=
DC_AFTER_STOP=
DC_BIN=
DC_PG_ROOT=
DC_DATA=
DC_SOCK=
DC_LOG=
DC_PORT=
DC_SERVER_PID=
DC_BUILT_FROM=

dc_note() { printf '%s: %s\n' "$DC_NAME" "$*"; }

dc_clean_env() {
    export LANG=C.UTF-8
    unset LC_ALL LC_CTYPE LC_COLLATE LC_MESSAGES LC_NUMERIC LC_TIME LC_MONETARY LANGUAGE
    local var
    for var in $(compgen -e | grep '^PG' | grep -vx 'PG_CONFIG' || true); do unset "$var"; done
}

dc_install_deps() { bash "$DC_REPO/scripts/install-deps.sh" "$@"; }

dc_as_postgres() { runuser -u postgres -- "$@"; }

# ---------------------------------------------------------------------------
# The work directory and the traps.

dc_workdir() { # dc_workdir <prefix>
    DC_TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$DC_TMP"
    trap dc__on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

dc__on_exit() {
    local rc=$?
    set +e
    trap '' INT TERM HUP
    trap - EXIT
    [ -z "$DC_BEFORE_STOP" ] || "$DC_BEFORE_STOP" "$rc"
    dc_cluster_stop
    [ -z "$DC_TMP" ] || dc_stop_servers_under "$DC_TMP"
    [ -z "$DC_AFTER_STOP" ] || "$DC_AFTER_STOP" "$rc"
    if [ -n "$DC_TMP" ] && [ -d "$DC_TMP" ]; then
        if [ "$DC_KEEP_TMP" = 1 ]; then
            dc_note "kept $DC_TMP"
        else
            rm -rf "$DC_TMP"
        fi
    fi
    exit "$rc"
}

# ---------------------------------------------------------------------------
# The tree and its build.

dc_copy_tree() { # dc_copy_tree <dest> [git revision]
    local dest=$1 rev=${2:-}
    local git=(git -c safe.directory='*' -C "$DC_REPO")
    mkdir -p "$dest"
    if [ -n "$rev" ]; then
        "${git[@]}" archive --format=tar "$rev" | tar -C "$dest" -xf - || return 1
        DC_BUILT_FROM="git revision $("${git[@]}" rev-parse --short "$rev")"
        return 0
    fi
    if command -v git >/dev/null 2>&1 && "${git[@]}" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Tracked and untracked files, minus what .gitignore names (build
        # artefacts, test output); a tracked file deleted in the working
        # tree is not copied.
        "${git[@]}" ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' f; do
                if [ -e "$DC_REPO/$f" ] || [ -L "$DC_REPO/$f" ]; then printf '%s\0' "$f"; fi
            done |
            tar -C "$DC_REPO" --null --no-recursion -T - -cf - | tar -C "$dest" -xf - || return 1
        DC_BUILT_FROM="working tree at $("${git[@]}" describe --always --dirty 2>/dev/null || echo unknown)"
    else
        # Without git: the same with a fixed list of exclusions.
        tar -C "$DC_REPO" \
            --exclude=./.git --exclude='*.o' --exclude='*.bc' --exclude='*.so' --exclude='*.d' \
            --exclude=./results --exclude=./output_iso --exclude='./tmp_check*' \
            --exclude=./log --exclude=./regression.diffs --exclude=./regression.out \
            --exclude=./bench/results --exclude=./fuzz/build \
            -cf - . | tar -C "$dest" -xf - || return 1
        DC_BUILT_FROM="working tree (no git)"
    fi
}

dc_build() { # dc_build <src> <log> [make variables...]
    local src=$1 log=$2
    shift 2
    (cd "$src" &&
        make -j"$(nproc)" PG_CONFIG="$DC_PG_CONFIG" "$@" &&
        make install PG_CONFIG="$DC_PG_CONFIG" "$@") >"$log" 2>&1
}

# A private copy of the PostgreSQL installation: PostgreSQL finds its share
# and lib directories relative to its binary, so the copied server uses the
# copied directories, and what other work on this machine installs into the
# system's (the tests, a colleague's `make install`) neither disturbs it nor
# is disturbed by it.
dc_private_pg() { # dc_private_pg <root>
    local root=$1 bin lib share
    bin=$("$DC_PG_CONFIG" --bindir)
    lib=$("$DC_PG_CONFIG" --pkglibdir)
    share=$("$DC_PG_CONFIG" --sharedir)
    mkdir -p "$root$(dirname "$bin")" "$root$(dirname "$lib")" "$root$(dirname "$share")"
    cp -a "$bin" "$root$bin"
    [ -d "$root$lib" ] || cp -a "$lib" "$root$lib"
    cp -a "$share" "$root$share"
    # whatever decide the system has installed must not be picked up
    rm -rf "$root$lib"/decide.so "$root$lib"/bitcode/decide* "$root$share"/extension/decide[.-]*
    DC_PG_ROOT=$root
    DC_BIN=$root$bin
}

# ---------------------------------------------------------------------------
# The cluster.

dc_cluster_init() { # dc_cluster_init <dir> <port>
    local dir=$1
    DC_PORT=$2
    DC_DATA=$dir/data
    DC_SOCK=$dir/sock
    DC_LOG=$dir/server.log
    [ -n "$DC_BIN" ] || DC_BIN=$("$DC_PG_CONFIG" --bindir)
    install -d -o postgres -g postgres -m 755 "$dir"
    install -d -o postgres -g postgres -m 700 "$DC_DATA" "$DC_SOCK"
    if ! dc_as_postgres "$DC_BIN/initdb" -D "$DC_DATA" -A trust -U postgres --encoding=UTF8 \
            --locale=C.UTF-8 --no-instructions >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log"
        return 1
    fi
    cat >>"$DC_DATA/postgresql.conf" <<EOF

# throwaway cluster (scripts/cluster.sh): a Unix socket in its own directory, no TCP
port = $DC_PORT
listen_addresses = ''
unix_socket_directories = '$DC_SOCK'
EOF
}

# True while <pid> runs (a zombie does not count) and, with <data>, is the
# postmaster of that data directory (it works in it).
dc_pid_alive() { # dc_pid_alive <pid> [data directory]
    local pid=$1 data=${2:-} state
    case $pid in ''|*[!0-9]*) return 1 ;; esac
    state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] || return 1
    if [ -n "$data" ]; then
        [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$data")" ] || return 1
    fi
}

# Stops the postmaster <pid> of <data>: fast shutdown, after <seconds>
# immediate shutdown, then SIGKILL.
dc_stop_pid() { # dc_stop_pid <pid> <data> [seconds]
    local pid=$1 data=$2 limit=$(( ${3:-60} * 10 )) i sig
    for sig in INT QUIT KILL; do
        dc_pid_alive "$pid" "$data" || return 0
        kill -s "$sig" "$pid" 2>/dev/null || return 0
        for (( i = 0; i < limit; i++ )); do
            dc_pid_alive "$pid" "$data" || return 0
            sleep 0.1
        done
        limit=100
    done
    ! dc_pid_alive "$pid" "$data"
}

dc_cluster_start() {
    # The command line repeats what keeps the server private: it overrides
    # postgresql.conf and postgresql.auto.conf.
    if ! dc_as_postgres "$DC_BIN/pg_ctl" start -D "$DC_DATA" -l "$DC_LOG" -w -t 60 \
            -o "-c listen_addresses='' -c port=$DC_PORT -c unix_socket_directories='$DC_SOCK'" >/dev/null; then
        dc_note "the server did not start; its log:"
        tail -n 40 "$DC_LOG" 2>/dev/null
        return 1
    fi
    DC_SERVER_PID=$(head -n 1 "$DC_DATA/postmaster.pid")
    dc_pid_alive "$DC_SERVER_PID" "$DC_DATA" || { dc_note "no server running as PID $DC_SERVER_PID"; return 1; }
}

dc_cluster_stop() {
    [ -n "$DC_DATA" ] || return 0
    # Started, but pg_ctl gave up waiting: the PID is in postmaster.pid.
    if [ -z "$DC_SERVER_PID" ] && [ -f "$DC_DATA/postmaster.pid" ]; then
        DC_SERVER_PID=$(head -n 1 "$DC_DATA/postmaster.pid" 2>/dev/null)
    fi
    if dc_pid_alive "$DC_SERVER_PID" "$DC_DATA"; then
        dc_note "stopping the server (PID $DC_SERVER_PID)"
        dc_stop_pid "$DC_SERVER_PID" "$DC_DATA" 60 || dc_note "PID $DC_SERVER_PID did not stop"
    fi
    DC_SERVER_PID=
}

dc_stop_servers_under() { # dc_stop_servers_under <dir>
    local pidfile pid data
    [ -d "$1" ] || return 0
    while IFS= read -r pidfile; do
        pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
        data=$(dirname "$pidfile")
        if dc_pid_alive "$pid" "$data"; then
            dc_note "stopping leftover server $pid ($data)"
            dc_stop_pid "$pid" "$data" 10 || dc_note "PID $pid did not stop"
        fi
    done < <(find "$1" -name postmaster.pid -type f 2>/dev/null)
}
