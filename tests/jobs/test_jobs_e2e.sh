#!/usr/bin/env bash
# 1000 greedy jobs through broker + worker + PostgreSQL: every job succeeds,
# exactly one result each, and each text equals `nightshift generate` for the
# same prompt (same engine, same sampler, batch-invariant forward pass).
source "$(dirname "$0")/jobs_lib.sh"
N=${NS_JOBS_N:-1000}
MT=24
jl_model
jl_start_pg
jl_ports
jl_start_broker
jl_start_worker w-e2e -t 2 --slots 32

jl_jobs "$JL_DIR/jobs.jsonl" "$N" "$MT"
t0=$(date +%s.%N)
B=$("$NS" submit --model "$JL_MODEL_NAME" -q "$JL_DIR/jobs.jsonl")
jl_log "batch $B submitted ($N jobs)"
jl_wait_done "$B" 300
t1=$(date +%s.%N)
jl_log "batch $B done in $(python3 -c "print(round($t1-$t0,2))") s"
jl_check_exactly_once "$B" "$N"

"$NS" results "$B" -o "$JL_DIR/results.jsonl"
"$NS" generate -m "$JL_MODEL" -f "$JL_DIR/jobs.jsonl.txt" -n "$MT" --temp 0 --json -t 2 >"$JL_DIR/generate.jsonl" \
    2>"$JL_DIR/generate.log"
python3 - "$JL_DIR/results.jsonl" "$JL_DIR/generate.jsonl" "$N" <<'PY'
import json, sys
res = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["error"] is None and r["response"]["status_code"] == 200, r
    body = r["response"]["body"]
    c = body["choices"][0]
    text = c["message"]["content"] if "message" in c else c["text"]
    res[r["custom_id"]] = (text, body["usage"]["completion_tokens"], c["finish_reason"])
gen = {}
for line in open(sys.argv[2]):
    g = json.loads(line)
    gen["p%d" % g["index"]] = (g["text"], len(g["tokens"]), g["finish_reason"])
n = int(sys.argv[3])
assert len(res) == n, "%d results, expected %d" % (len(res), n)
assert len(gen) == n, "%d generate outputs, expected %d" % (len(gen), n)
bad = [k for k in res if res[k][0] != gen[k][0] or res[k][1] != gen[k][1]]
for k in bad[:5]:
    print("MISMATCH", k, "\n  worker:  ", res[k], "\n  generate:", gen[k])
assert not bad, "%d of %d results differ from nightshift generate" % (len(bad), n)
print("all %d results equal nightshift generate" % n)
PY
jl_log "ok"
