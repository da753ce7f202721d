#!/usr/bin/env bash
# pg_test_env.sh - a private, throw-away PostgreSQL 15 server for tests and
# benchmarks. Unix socket only (listen_addresses=''), trust auth, data and
# socket inside one directory you choose. Works as root too: PostgreSQL
# refuses to run as root, so the server then runs as `nobody` via runuser.
#
# Two ways to use it:
#   1. source it from bash:
#        source tests/queue/pg_test_env.sh
#        ns_pg_start "$dir"          # sets NS_PG_CONNINFO; returns 77 if impossible
#        ... psql "$NS_PG_CONNINFO" ...
#        ns_pg_restart "$dir"        # fast restart (same data)
#        ns_pg_stop "$dir"
#   2. run it:   pg_test_env.sh start DIR   -> prints the conninfo on stdout
#                pg_test_env.sh stop|restart|kill DIR
#                pg_test_env.sh conninfo DIR
# Environment:
#   NS_PG_BIN    server binaries (default /usr/lib/postgresql/15/bin)
#   NS_PG_FSYNC  on|off (default off: tests do not need durability across an
#                OS crash; a server kill or restart is still safe). Benchmarks
#                should pass on.
# Exit status 77 ("skip") when no PostgreSQL server binaries are installed.

NS_PG_BIN=${NS_PG_BIN:-/usr/lib/postgresql/15/bin}
NS_PG_PORT=5432

ns__pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

ns__pg_user() {
    if [ "$(id -u)" = 0 ]; then echo nobody; else id -un; fi
}

ns_pg_conninfo() {
    echo "host=$1/sock port=$NS_PG_PORT dbname=postgres user=$(ns__pg_user) connect_timeout=5"
}

ns_pg_start() {
    local dir=$1
    if [ -z "$dir" ]; then echo "ns_pg_start: no directory" >&2; return 2; fi
    if [ ! -x "$NS_PG_BIN/initdb" ] || [ ! -x "$NS_PG_BIN/pg_ctl" ]; then
        echo "ns_pg_start: PostgreSQL server binaries not found in $NS_PG_BIN" >&2
        return 77
    fi
    if [ "$(id -u)" = 0 ] && ! command -v runuser >/dev/null; then
        echo "ns_pg_start: running as root without runuser" >&2
        return 77
    fi
    mkdir -p "$dir/sock" || return 1
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = 0 ]; then
        chown -R nobody "$dir" || return 77
        chmod 755 "$dir"
        if ! runuser -u nobody -- test -x "$dir"; then
            echo "ns_pg_start: user nobody cannot reach $dir (a parent directory is not o+x)" >&2
            return 1
        fi
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        ns__pg_as_owner "$NS_PG_BIN/initdb" -D "$dir/data" -A trust -U "$(ns__pg_user)" -E UTF8 --locale=C \
            --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    fi
    ns__pg_as_owner "$NS_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -k $dir/sock -p $NS_PG_PORT -c fsync=${NS_PG_FSYNC:-off} -c max_connections=200" \
        start >/dev/null || { tail -20 "$dir/server.log" >&2; return 1; }
    NS_PG_CONNINFO=$(ns_pg_conninfo "$dir")
    NS_PG_DIR=$dir
    export NS_PG_CONNINFO NS_PG_DIR
}

ns_pg_stop() {
    [ -f "$1/data/postmaster.pid" ] || return 0
    ns__pg_as_owner "$NS_PG_BIN/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null 2>&1
}

# Stop abruptly (like a crash: no checkpoint; recovery on the next start).
ns_pg_kill() {
    [ -f "$1/data/postmaster.pid" ] || return 0
    ns__pg_as_owner "$NS_PG_BIN/pg_ctl" -D "$1/data" -m immediate -w -t 60 stop >/dev/null 2>&1
}

ns_pg_restart() {
    ns_pg_stop "$1" && ns_pg_start "$1"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    cmd=$1
    dir=$2
    case "$cmd" in
    start) ns_pg_start "$dir" || exit $?; echo "$NS_PG_CONNINFO" ;;
    stop) ns_pg_stop "$dir" ;;
    kill) ns_pg_kill "$dir" ;;
    restart) ns_pg_restart "$dir" || exit $?; echo "$NS_PG_CONNINFO" ;;
    conninfo) ns_pg_conninfo "$(cd "$dir" && pwd)" ;;
    *) echo "usage: $0 start|stop|kill|restart|conninfo DIR" >&2; exit 2 ;;
    esac
fi
