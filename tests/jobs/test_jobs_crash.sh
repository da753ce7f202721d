#!/usr/bin/env bash
# Crash tests, one batch each, killed at about a third of the way:
#   1. kill -9 the worker, restart it          -> every job exactly one result
#   2. kill -9 the broker, restart it          -> same (the worker re-announces)
#   3. crash PostgreSQL (immediate stop), start -> same (the worker keeps results
#      in memory and retries; the broker reconnects)
#   4. kill -9 the broker while long jobs run: the worker re-announces them in
#      READY and the restarted broker re-adopts them (no attempt charged)
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

# ---- 4. broker restart with jobs in flight: re-adoption -------------------------------
# Jobs that run for seconds, and a short heartbeat so the worker notices the
# dead broker quickly: it re-announces the jobs still running when it reconnects.
jl_stop_worker
kill "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
"$NS_BIN/nightshift-broker" --pg "$CI" --clients "tcp://127.0.0.1:$CPORT" --workers "tcp://127.0.0.1:$WPORT" \
    --heartbeat-ms 300 >>"$JL_DIR/broker.log" 2>&1 &
BROKER_PID=$!
# (seed 1: greedy output of these prompts rarely ends before 400 tokens)
"$NS" synth --shape tiny --ftype q4_k_m --seed 1 -o "$JL_DIR/long.gguf" >/dev/null
JL_MODEL=$JL_DIR/long.gguf
jl_start_worker w-long -t 1 --slots 16 --ctx 2048
python3 -c '
import json
for i in range(16): print(json.dumps({"custom_id": "l%d" % i, "prompt": "hello %d" % i, "max_tokens": 400,
                                        "temperature": 0}))' >"$JL_DIR/long.jsonl"
B=$("$NS" submit --model long -q "$JL_DIR/long.jsonl")
for i in $(seq 1 100); do [ "$(jl_status "$B" running)" = 16 ] && break; sleep 0.1; done
sleep 0.5
kill -9 "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
BROKER_PID=
jl_log "batch $B: broker killed while jobs run"
sleep 1
"$NS_BIN/nightshift-broker" --pg "$CI" --clients "tcp://127.0.0.1:$CPORT" --workers "tcp://127.0.0.1:$WPORT" \
    --heartbeat-ms 300 >>"$JL_DIR/broker.log" 2>&1 &
BROKER_PID=$!
jl_wait_done "$B" 240
jl_check_exactly_once "$B" 16
grep -q "worker w-long ready (model long, 16 slots; [1-9][0-9]* adopted" "$JL_DIR/broker.log" ||
    jl_fail "the restarted broker adopted nothing: $(grep 'w-long ready' "$JL_DIR/broker.log")"
jl_log "re-adoption: ok ($(grep -o 'w-long ready.*adopted' "$JL_DIR/broker.log" | tail -1))"
