#!/usr/bin/env bash
# jobs_lib.sh - shared setup for the job-system integration tests: a private
# PostgreSQL (tests/queue/pg_test_env.sh), free TCP ports, the broker and
# worker as background processes, SQL checks and waits. Source it.
# Needs NS_BIN and NS_SOURCE_DIR (set by CTest); NS_REFERENCE_DIR optional.
# NS_KEEP=1 keeps the temporary directory for inspection.
set -euo pipefail
: "${NS_BIN:?NS_BIN not set}" "${NS_SOURCE_DIR:?NS_SOURCE_DIR not set}"
NS=$NS_BIN/nightshift
# shellcheck source=../queue/pg_test_env.sh
source "$NS_SOURCE_DIR/tests/queue/pg_test_env.sh"

JL_DIR=$(mktemp -d /tmp/ns-jobs-XXXXXX)
chmod 755 "$JL_DIR"
BROKER_PID=
WORKER_PID=

jl_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

jl_cleanup() {
    local rc=$?
    if [ -n "${JL_EXTRA_CLEANUP:-}" ]; then eval "$JL_EXTRA_CLEANUP" || true; fi
    for p in $WORKER_PID $BROKER_PID; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ns_pg_stop "$JL_DIR/pg" 2>/dev/null || true
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        for f in "$JL_DIR"/*.log; do
            [ -f "$f" ] || continue
            echo "---- tail of $f" >&2
            tail -n 25 "$f" >&2
        done
    fi
    if [ "${NS_KEEP:-0}" = 1 ]; then echo "kept $JL_DIR" >&2; else rm -rf "$JL_DIR"; fi
    exit $rc
}
trap jl_cleanup EXIT

jl_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

jl_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The model: stories260K when the reference data is there, else a synthetic tiny one.
jl_model() {
    local ref=${NS_REFERENCE_DIR:-$NS_SOURCE_DIR/../shared/reference}/models/stories260K.gguf
    if [ -f "$ref" ]; then
        JL_MODEL=$ref
    else
        JL_MODEL=$JL_DIR/tiny.gguf
        "$NS" synth --shape tiny --ftype q4_k_m --seed 1 -o "$JL_MODEL" >/dev/null
    fi
    JL_MODEL_NAME=$(basename "$JL_MODEL" .gguf)
}

jl_start_pg() {
    local rc=0
    ns_pg_start "$JL_DIR/pg" >/dev/null || rc=$?
    if [ $rc -ne 0 ]; then
        [ $rc -eq 77 ] && { echo "SKIP: no PostgreSQL server" >&2; exit 77; }
        jl_fail "PostgreSQL did not start"
    fi
    CI=$NS_PG_CONNINFO
    PSQL=$NS_PG_BIN/psql
    [ -x "$PSQL" ] || PSQL=$(command -v psql)
}

jl_sql() { "$PSQL" -X -A -t -q "$CI" -c "$1"; }

jl_ports() {
    CPORT=$(jl_free_port)
    WPORT=$(jl_free_port)
    while [ "$WPORT" = "$CPORT" ]; do WPORT=$(jl_free_port); done
    export NIGHTSHIFT_BROKER=tcp://127.0.0.1:$CPORT
}

jl_start_broker() {
    "$NS_BIN/nightshift-broker" --pg "$CI" --clients "tcp://127.0.0.1:$CPORT" --workers "tcp://127.0.0.1:$WPORT" \
        --migrate --heartbeat-ms 500 "$@" >>"$JL_DIR/broker.log" 2>&1 &
    BROKER_PID=$!
    local i
    for i in $(seq 1 100); do
        "$NS" workers >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    jl_fail "broker did not answer"
}

# jl_start_worker NAME [worker options...]
jl_start_worker() {
    local name=$1
    shift
    "$NS_BIN/nightshift-worker" -m "$JL_MODEL" --broker "tcp://127.0.0.1:$WPORT" --pg "$CI" --name "$name" \
        "$@" >>"$JL_DIR/worker.log" 2>&1 &
    WORKER_PID=$!
    local i
    for i in $(seq 1 200); do
        "$NS" workers --json 2>/dev/null | grep -q "\"$name\"" && return 0
        sleep 0.1
    done
    jl_fail "worker $name did not register"
}

jl_stop_worker() {
    [ -n "$WORKER_PID" ] || return 0
    kill -TERM "$WORKER_PID" 2>/dev/null || true
    wait "$WORKER_PID" 2>/dev/null || true
    WORKER_PID=
}

# jl_status BATCH FIELD -> value from `status --json`
jl_status() {
    "$NS" status "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# jl_wait_done BATCH TIMEOUT_S
jl_wait_done() {
    local b=$1 t=$2 i
    for i in $(seq 1 $((t * 5))); do
        [ "$(jl_status "$b" done 2>/dev/null || echo False)" = True ] && return 0
        sleep 0.2
    done
    "$NS" status "$b" >&2 || true
    jl_fail "batch $b not done within $t s"
}

# jl_wait_progress BATCH FRACTION: until succeeded >= FRACTION * total
jl_wait_progress() {
    local b=$1 f=$2 i
    for i in $(seq 1 1500); do
        local s
        s=$("$NS" status "$b" --json 2>/dev/null || echo '{}')
        if python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d.get('total',0)>0 and d['succeeded']>=$f*d['total'] else 1)" "$s"; then
            return 0
        fi
        sleep 0.1
    done
    jl_fail "batch $b made no progress"
}

# Exactly one result per job, every job succeeded, counters consistent.
jl_check_exactly_once() {
    local b=$1 n=$2
    local total ok res dup miss badatt counters
    total=$(jl_sql "select count(*) from jobs where batch_id=$b")
    ok=$(jl_sql "select count(*) from jobs where batch_id=$b and state='succeeded'")
    res=$(jl_sql "select count(*) from results where batch_id=$b")
    dup=$(jl_sql "select count(*) from (select job_id from results where batch_id=$b group by job_id having count(*)>1) d")
    miss=$(jl_sql "select count(*) from jobs j where j.batch_id=$b and not exists (select 1 from results r where r.job_id=j.id)")
    badatt=$(jl_sql "select count(*) from jobs j join results r on r.job_id=j.id where j.batch_id=$b and r.attempt<>j.attempt")
    counters=$(jl_sql "select total||' '||succeeded||' '||queued||' '||running||' '||failed||' '||cancelled from batches where id=$b")
    [ "$total" = "$n" ] || jl_fail "batch $b has $total jobs, expected $n"
    [ "$ok" = "$n" ] || jl_fail "batch $b: $ok of $n jobs succeeded"
    [ "$res" = "$n" ] || jl_fail "batch $b: $res results for $n jobs"
    [ "$dup" = 0 ] || jl_fail "batch $b: $dup jobs with more than one result"
    [ "$miss" = 0 ] || jl_fail "batch $b: $miss jobs without a result"
    [ "$badatt" = 0 ] || jl_fail "batch $b: $badatt results written by a stale attempt"
    [ "$counters" = "$n $n 0 0 0 0" ] || jl_fail "batch $b counters: $counters"
}

# jl_jobs FILE N MAX_TOKENS: N greedy jobs p0..p{N-1}, prompts also in FILE.txt
jl_jobs() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
path, n, mt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
subjects = ["a little girl", "a big dog", "a small bird", "a brave boy", "a happy cat", "an old man", "a tiny fish",
            "a red ball", "a kind queen", "a funny frog"]
places = ["in the park", "by the sea", "in a big house", "under a tree", "in the forest", "on a hill", "at school"]
with open(path, "w") as f, open(path + ".txt", "w") as t:
    for i in range(n):
        p = "Once upon a time, %s lived %s. Day %d" % (subjects[i % 10], places[(i // 10) % 7], i)
        f.write(json.dumps({"custom_id": "p%d" % i, "prompt": p, "max_tokens": mt, "temperature": 0}) + "\n")
        t.write(p + "\n")
PY
}
