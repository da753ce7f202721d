#!/usr/bin/env bash
# The one-machine flow: scripts/demo.sh (nightshift up -> submit the demo
# batch -> watch -> results -> down) on a private data directory, then
# `nightshift up` again to check the supervisor restarts a worker killed with
# kill -9, and that `nightshift down` leaves nothing running.
source "$(dirname "$0")/jobs_lib.sh"
[ -x "${NS_PG_BIN:-/usr/lib/postgresql/15/bin}/pg_ctl" ] || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 ||
    { echo "SKIP: no PostgreSQL server" >&2; exit 77; }
jl_model
DATA=$JL_DIR/data
PORT=$(jl_free_port)
export NIGHTSHIFT_DATA=$DATA
export NIGHTSHIFT_BROKER=tcp://127.0.0.1:$PORT
JL_EXTRA_CLEANUP='"$NS" down --data "$DATA" >/dev/null 2>&1'

# ---- the demo, as quickstart runs it ------------------------------------------------
NS_BIN=$NS_BIN NS_DEMO_PORT=$PORT bash "$NS_SOURCE_DIR/scripts/demo.sh" "$JL_MODEL" >"$JL_DIR/demo.log" 2>&1 ||
    { cat "$JL_DIR/demo.log" >&2; jl_fail "demo.sh failed"; }
cat "$JL_DIR/demo.log" >&2
grep -q "batch 1 done: 20 succeeded, 0 failed, 0 cancelled" "$JL_DIR/demo.log" || jl_fail "demo batch did not succeed"
[ "$(wc -l <"$DATA/demo-results.jsonl")" = 20 ] || jl_fail "demo results missing"
grep -q "nightshift is down" "$JL_DIR/demo.log" || jl_fail "demo did not bring nightshift down"
[ ! -f "$DATA/supervisor.pid" ] || jl_fail "supervisor pid file left behind"
jl_log "demo: ok"

# ---- supervisor restarts a killed worker; data survives down/up ------------------------
"$NS" up -m "$JL_MODEL" --data "$DATA" --port "$PORT" -t 1 >"$JL_DIR/up.log" 2>&1 || { cat "$JL_DIR/up.log" >&2; jl_fail "up failed"; }
"$NS" up -m "$JL_MODEL" --data "$DATA" --port "$PORT" 2>&1 | grep -q "already running" || jl_fail "second up did not notice"
[ "$(jl_status 1 succeeded)" = 20 ] || jl_fail "the first batch is gone after down/up"
wpid=$(grep "started worker" "$DATA/logs/supervisor.log" | tail -1 | sed 's/.*pid \([0-9]*\).*/\1/')
[ -n "$wpid" ] && kill -0 "$wpid" || jl_fail "cannot find the worker pid"
jl_jobs "$JL_DIR/up.jsonl" 60 32
B=$("$NS" submit --model "$JL_MODEL_NAME" -q "$JL_DIR/up.jsonl")
kill -9 "$wpid"
jl_log "killed worker $wpid"
"$NS" watch "$B" >"$JL_DIR/watch.out" 2>&1 || jl_fail "watch failed: $(cat "$JL_DIR/watch.out")"
grep -q "60 succeeded" "$JL_DIR/watch.out" || jl_fail "batch after worker kill: $(cat "$JL_DIR/watch.out")"
grep -q "worker (pid $wpid) killed by signal 9" "$DATA/logs/supervisor.log" || jl_fail "supervisor did not see the kill"
[ "$(grep -c "started worker" "$DATA/logs/supervisor.log")" -ge 3 ] || jl_fail "supervisor did not restart the worker"
sup=$(cat "$DATA/supervisor.pid")
"$NS" down --data "$DATA" >&2
JL_EXTRA_CLEANUP=
! kill -0 "$sup" 2>/dev/null || jl_fail "supervisor still running after down"
[ -z "$(pgrep -f "$DATA" || true)" ] || jl_fail "processes left after down: $(pgrep -af "$DATA")"
jl_log "ok"
