#!/usr/bin/env bash
# Crash tests, one batch each, killed at about a third of the way:
#   1. kill -9 the worker, restart it          -> every job exactly one result
#   2. kill -9 the broker, restart it          -> same (the worker re-announces)
#   3. crash PostgreSQL (immediate stop), start -> same (the worker keeps results
#      in memory and retries; the broker reconnects)
# Results are checked in SQL (jobs_lib.sh: jl_check_exactly_once).
source "$(dirname "$0")/jobs_lib.sh"
N=${NS_JOBS_N:-240}
MT=48
WARGS=(-t 1 --slots 8)
jl_model
jl_start_pg
jl_ports
jl_start_broker
jl_start_worker w-crash "${WARGS[@]}"

# ---- 1. worker kill -9 --------------------------------------------------------
jl_jobs "$JL_DIR/a.jsonl" "$N" "$MT"
B=$("$NS" submit --model "$JL_MODEL_NAME" -q "$JL_DIR/a.jsonl")
jl_wait_progress "$B" 0.3
jl_log "batch $B: kill -9 worker (pid $WORKER_PID) at $(jl_status "$B" succeeded)/$N"
kill -9 "$WORKER_PID"
wait "$WORKER_PID" 2>/dev/null || true
WORKER_PID=
lost=$(jl_sql "select count(*) from jobs where batch_id=$B and state='leased'")
jl_start_worker w-crash "${WARGS[@]}"
jl_wait_done "$B" 240
jl_check_exactly_once "$B" "$N"
requeued=$(jl_sql "select count(*) from job_errors e join jobs j on j.id=e.job_id where j.batch_id=$B")
[ "$requeued" -gt 0 ] || jl_fail "no job was requeued after the worker was killed (leased at kill: $lost)"
jl_log "worker crash: ok ($requeued attempts requeued)"

# ---- 2. broker kill -9 ----------------------------------------------------------
jl_jobs "$JL_DIR/b.jsonl" "$N" "$MT"
B=$("$NS" submit --model "$JL_MODEL_NAME" -q "$JL_DIR/b.jsonl")
jl_wait_progress "$B" 0.3
jl_log "batch $B: kill -9 broker (pid $BROKER_PID) at $(jl_status "$B" succeeded)/$N"
kill -9 "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
BROKER_PID=
sleep 1
"$NS_BIN/nightshift-broker" --pg "$CI" --clients "tcp://127.0.0.1:$CPORT" --workers "tcp://127.0.0.1:$WPORT" \
    --heartbeat-ms 500 >>"$JL_DIR/broker.log" 2>&1 &
BROKER_PID=$!
jl_wait_done "$B" 240
jl_check_exactly_once "$B" "$N"
grep -q "READY sent" "$JL_DIR/worker.log" || jl_fail "worker never re-announced"
jl_log "broker crash: ok"

# ---- 3. PostgreSQL crash ----------------------------------------------------------
jl_jobs "$JL_DIR/c.jsonl" "$N" "$MT"
B=$("$NS" submit --model "$JL_MODEL_NAME" -q "$JL_DIR/c.jsonl")
jl_wait_progress "$B" 0.3
jl_log "batch $B: PostgreSQL immediate stop at $(jl_status "$B" succeeded)/$N"
ns_pg_kill "$JL_DIR/pg"
sleep 3
ns_pg_start "$JL_DIR/pg" >/dev/null || jl_fail "PostgreSQL did not restart"
jl_wait_done "$B" 240
jl_check_exactly_once "$B" "$N"
grep -q "PostgreSQL unavailable" "$JL_DIR/worker.log" || jl_fail "the worker never saw PostgreSQL go away"
jl_log "PostgreSQL crash: ok"
