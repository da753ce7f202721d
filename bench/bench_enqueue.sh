#!/usr/bin/env bash
# bench_enqueue.sh - enqueue throughput, end to end, against a private
# PostgreSQL (fsync ON, as in production) and a real broker.
#   bench/bench_enqueue.sh BUILD_DIR [JOBS] [CHUNK]
set -euo pipefail
build=${1:?usage: bench_enqueue.sh BUILD_DIR [JOBS] [CHUNK]}
jobs=${2:-100000}
chunk=${3:-1000}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/queue/pg_test_env.sh"
tmp=$(mktemp -d /tmp/ns-bench-XXXXXX)
chmod 755 "$tmp"
broker_pid=
cleanup() {
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null || true
    ns_pg_stop "$tmp"
    rm -rf "$tmp"
}
trap cleanup EXIT
NS_PG_FSYNC=on ns_pg_start "$tmp"
port=$((20000 + RANDOM % 20000))
"$build/bin/nightshift-broker" --pg "$NS_PG_CONNINFO" --clients "tcp://127.0.0.1:$port" \
    --workers "tcp://127.0.0.1:$((port + 1))" --migrate 2>"$tmp/broker.log" &
broker_pid=$!
sleep 0.5
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "git: $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$build/bin/bench_enqueue" --broker "tcp://127.0.0.1:$port" --jobs "$jobs" --chunk "$chunk"
