#!/usr/bin/env bash
# Client CLI behaviour against a real broker, worker and PostgreSQL:
#   - a duplicate custom_id is rejected with a clear error (in one chunk, and
#     across chunks), and no batch is left behind to run;
#   - cancel: queued jobs at once, running jobs at the next step;
#   - a bad job (prompt longer than the context) fails alone, with its error in
#     `results --errors`; `retry` requeues it and it succeeds on a worker that can run it;
#   - OpenAI Batch API input lines and the OpenAI output format;
#   - status --json, workers.
source "$(dirname "$0")/jobs_lib.sh"
jl_model
jl_start_pg
jl_ports
jl_start_broker

# ---- duplicate custom_id -----------------------------------------------------------
printf '%s\n' '{"custom_id":"a","prompt":"x"}' '{"custom_id":"b","prompt":"y"}' '{"custom_id":"a","prompt":"z"}' \
    >"$JL_DIR/dup.jsonl"
if "$NS" submit --model "$JL_MODEL_NAME" "$JL_DIR/dup.jsonl" >"$JL_DIR/dup.out" 2>"$JL_DIR/dup.err"; then
    jl_fail "a duplicate custom_id was accepted"
fi
cat "$JL_DIR/dup.err" >&2
grep -q "line 3" "$JL_DIR/dup.err" || jl_fail "the duplicate error does not name the line"
grep -q "duplicate_custom_id" "$JL_DIR/dup.err" || jl_fail "the duplicate error does not say duplicate_custom_id"
grep -q "'a'" "$JL_DIR/dup.err" || jl_fail "the duplicate error does not name the custom_id"
# across chunks (the second chunk repeats a custom_id of the first)
python3 -c '
import json
for i in range(1000): print(json.dumps({"custom_id": "c%d" % i, "prompt": "x"}))
print(json.dumps({"custom_id": "c7", "prompt": "again"}))' >"$JL_DIR/dup2.jsonl"
if "$NS" submit --model "$JL_MODEL_NAME" "$JL_DIR/dup2.jsonl" >"$JL_DIR/dup2.out" 2>"$JL_DIR/dup2.err"; then
    jl_fail "a duplicate custom_id across chunks was accepted"
fi
cat "$JL_DIR/dup2.err" >&2
grep -q "c7" "$JL_DIR/dup2.err" || jl_fail "the cross-chunk duplicate error does not name the custom_id"
live=$(jl_sql "select count(*) from jobs where state in ('queued','leased')")
[ "$live" = 0 ] || jl_fail "$live jobs of rejected submissions are still runnable"
jl_log "duplicate custom_id: ok"

# ---- malformed input lines ----------------------------------------------------------
printf '%s\n' '{"custom_id":"a","prompt":"x"}' '{not json' >"$JL_DIR/bad.jsonl"
if "$NS" submit --model "$JL_MODEL_NAME" "$JL_DIR/bad.jsonl" 2>"$JL_DIR/bad.err"; then jl_fail "bad JSON accepted"; fi
grep -q "line 2: invalid JSON" "$JL_DIR/bad.err" || jl_fail "bad JSON error: $(cat "$JL_DIR/bad.err")"
printf '%s\n' '{"custom_id":"a"}' >"$JL_DIR/bad2.jsonl"
if "$NS" submit --model "$JL_MODEL_NAME" "$JL_DIR/bad2.jsonl" 2>"$JL_DIR/bad2.err"; then jl_fail "no prompt accepted"; fi
grep -q "line 1: each job needs exactly one of 'prompt' or 'messages'" "$JL_DIR/bad2.err" ||
    jl_fail "missing prompt error: $(cat "$JL_DIR/bad2.err")"
printf '%s\n' '{"custom_id":"a","prompt":"x","top_p":0}' >"$JL_DIR/bad3.jsonl"
if "$NS" submit --model "$JL_MODEL_NAME" "$JL_DIR/bad3.jsonl" 2>"$JL_DIR/bad3.err"; then jl_fail "top_p 0 accepted"; fi
grep -q "line 1:.*top_p" "$JL_DIR/bad3.err" || jl_fail "top_p error: $(cat "$JL_DIR/bad3.err")"
jl_log "malformed lines: ok"

# ---- cancel: queued jobs (no worker yet) ------------------------------------------------
jl_jobs "$JL_DIR/q.jsonl" 50 16
B=$("$NS" submit --model "$JL_MODEL_NAME" -q "$JL_DIR/q.jsonl")
"$NS" cancel "$B" | tee "$JL_DIR/cancel.out"
grep -q "50 queued jobs cancelled" "$JL_DIR/cancel.out" || jl_fail "cancel output: $(cat "$JL_DIR/cancel.out")"
[ "$(jl_status "$B" state)" = cancelled ] || jl_fail "batch not cancelled"
[ "$(jl_status "$B" cancelled)" = 50 ] || jl_fail "not all 50 jobs cancelled"
"$NS" results "$B" --errors -o "$JL_DIR/cancel_err.jsonl"
[ "$(grep -c '"code":"cancelled"' "$JL_DIR/cancel_err.jsonl")" = 50 ] || jl_fail "cancelled jobs missing from results --errors"
jl_log "cancel queued: ok"

# ---- cancel: running jobs stop at the next step -------------------------------------------
jl_start_worker w-cli -t 1 --slots 4 --ctx 2048
python3 -c '
import json
for i in range(40): print(json.dumps({"custom_id": "long%d" % i, "prompt": "Once upon a time", "max_tokens": 2000,
                                       "temperature": 1.0, "seed": i}))' >"$JL_DIR/long.jsonl"
B=$("$NS" submit --model "$JL_MODEL_NAME" -q "$JL_DIR/long.jsonl")
for i in $(seq 1 100); do [ "$(jl_status "$B" running)" -gt 0 ] && break; sleep 0.1; done
"$NS" cancel "$B"
jl_wait_done "$B" 60
left=$(jl_sql "select count(*) from jobs where batch_id=$B and state in ('queued','leased')")
[ "$left" = 0 ] || jl_fail "$left jobs still live after cancel"
nres=$(jl_sql "select count(*) from results where batch_id=$B")
nok=$(jl_sql "select count(*) from jobs where batch_id=$B and state='succeeded'")
[ "$nres" = "$nok" ] || jl_fail "results ($nres) != succeeded jobs ($nok) after cancel"
[ "$(jl_status "$B" cancelled)" -gt 30 ] || jl_fail "too few jobs cancelled"
jl_log "cancel running: ok ($(jl_status "$B" cancelled) cancelled, $nok finished first)"
jl_stop_worker

# ---- a bad job fails alone; retry requeues it ----------------------------------------------
jl_start_worker w-small -t 1 --slots 4 --ctx 64
python3 - "$JL_DIR/mixed.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(10):
        f.write(json.dumps({"custom_id": "ok%d" % i, "prompt": "Once upon a time %d" % i, "max_tokens": 8,
                            "temperature": 0}) + "\n")
    f.write(json.dumps({"custom_id": "toolong", "prompt": "Once upon a time " * 40, "max_tokens": 8}) + "\n")
    f.write(json.dumps({"custom_id": "openai-1", "method": "POST", "url": "/v1/chat/completions",
                        "body": {"model": "ignored", "messages": [{"role": "user", "content": "Hi"}],
                                 "max_tokens": 8, "temperature": 0}}) + "\n")
PY
B=$("$NS" submit --model "$JL_MODEL_NAME" -q "$JL_DIR/mixed.jsonl")
jl_wait_done "$B" 60
[ "$(jl_status "$B" succeeded)" = 11 ] || jl_fail "expected 11 successes: $("$NS" status "$B")"
[ "$(jl_status "$B" failed)" = 1 ] || jl_fail "expected 1 failure"
"$NS" results "$B" --errors -o "$JL_DIR/errors.jsonl"
grep -q '"custom_id":"toolong"' "$JL_DIR/errors.jsonl" || jl_fail "failed job missing from --errors"
grep -q '"code":"too_long"' "$JL_DIR/errors.jsonl" || jl_fail "failure kind missing: $(cat "$JL_DIR/errors.jsonl")"
grep -q "context is 64 tokens" "$JL_DIR/errors.jsonl" || jl_fail "failure message unclear: $(cat "$JL_DIR/errors.jsonl")"
"$NS" results "$B" -o "$JL_DIR/ok.jsonl"
python3 - "$JL_DIR/ok.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 11, len(rows)
for r in rows:
    assert set(r) == {"id", "custom_id", "response", "error"}, r
    assert r["error"] is None and r["response"]["status_code"] == 200
    b = r["response"]["body"]
    ch = b["choices"][0]
    if r["custom_id"] == "openai-1":  # a chat job
        assert b["object"] == "chat.completion" and b["id"].startswith("chatcmpl-"), b
        assert ch["message"]["role"] == "assistant" and isinstance(ch["message"]["content"], str), ch
        assert "text" not in ch, ch
    else:  # a raw prompt
        assert b["object"] == "text_completion" and b["id"].startswith("cmpl-"), b
        assert isinstance(ch["text"], str) and "message" not in ch, ch
    assert b["usage"]["total_tokens"] == b["usage"]["prompt_tokens"] + b["usage"]["completion_tokens"]
    assert b["choices"][0]["finish_reason"] in ("stop", "length")
assert any(r["custom_id"] == "openai-1" for r in rows)
print("OpenAI output format: ok")
PY
jl_stop_worker
jl_start_worker w-big -t 1 --slots 4 --ctx 512
"$NS" retry "$B" | tee "$JL_DIR/retry.out"
grep -q "1 failed jobs requeued" "$JL_DIR/retry.out" || jl_fail "retry output: $(cat "$JL_DIR/retry.out")"
jl_wait_done "$B" 60
[ "$(jl_status "$B" succeeded)" = 12 ] || jl_fail "retry did not complete the failed job: $("$NS" status "$B")"
errs=$(jl_sql "select count(*) from job_errors e join jobs j on j.id=e.job_id where j.custom_id='toolong' and j.batch_id=$B")
[ "$errs" = 1 ] || jl_fail "the failed attempt's error history was not kept ($errs)"
jl_log "bad job + retry: ok"

"$NS" status "$B" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["done"] and d["total"]==12, d'
"$NS" workers | grep -q w-big || jl_fail "workers does not list w-big"
"$NS" status 999999 2>"$JL_DIR/nf.err" && jl_fail "status of an unknown batch succeeded"
grep -q "not_found" "$JL_DIR/nf.err" || jl_fail "unknown batch error: $(cat "$JL_DIR/nf.err")"
jl_log "ok"
