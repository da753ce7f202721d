#!/usr/bin/env bash
# test_plan_cli.sh - `nightshift plan` end to end on the reference tiny-llama:
# the table, --json (components and buffers sum to the arena, arena <= budget),
# the assumed-device note, --measure without CUDA, and usage/capacity errors.
set -u
BIN="${NS_BIN:?}/nightshift"
MODEL="${NS_REFERENCE_DIR:?}/models/tiny-llama-q4_k_m.gguf"
if [ ! -r "$MODEL" ]; then
    echo "SKIP: $MODEL not found"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 1. The table on a named profile.
"$BIN" plan -m "$MODEL" --vram-budget 1GiB --device rtx3060-12gb >"$TMP/out" 2>"$TMP/err" || fail "plan exited $?: $(cat "$TMP/err")"
for pat in "resident weights" "staging slots" "KV page pool" "activations" "workspace" "sampling buffers" \
    "arena (sum)" "resident layers" "KV pool" "sequences" "prefill" "decode" "rtx3060-12gb"; do
    grep -q "$pat" "$TMP/out" || fail "table lacks '$pat'"
done
grep -q "assumed" "$TMP/out" && fail "a named device must not be reported as assumed"

# 2. JSON: exact sum, within budget, for several budgets and workloads.
for b in 200MiB 512MiB 1GiB 11.5GiB; do
    for w in summarize label single; do
        "$BIN" plan -m "$MODEL" --vram-budget "$b" --workload "$w" --device rtx3060-12gb --json >"$TMP/j.json" \
            2>"$TMP/err" || fail "json plan $b $w exited $?: $(cat "$TMP/err")"
        python3 - "$TMP/j.json" "$b" <<'PY' || fail "json check $b $w"
import json, sys
units = {"MiB": 2**20, "GiB": 2**30}
b = sys.argv[2]
budget = round(float(b[:-3]) * units[b[-3:]])
p = json.load(open(sys.argv[1]))
comps = p["components"]
assert [c["name"] for c in comps] == ["resident weights", "staging slots", "KV page pool", "activations",
                                      "workspace", "sampling buffers"], comps
off = 0
for c in comps:
    assert c["offset"] == off, (c, off)
    assert c["bytes"] % 256 == 0, c
    off += c["bytes"]
assert off == p["arena_bytes"], (off, p["arena_bytes"])
assert p["budget_bytes"] == budget, (p["budget_bytes"], budget)
assert p["arena_bytes"] <= budget
assert p["kv_blocks"] * p["kv_block_bytes"] <= comps[2]["bytes"]
# Buffers tile the activation and workspace components exactly, in order.
bufs = p["buffers"]
off = comps[3]["offset"]
for x in bufs:
    assert x["offset"] == off, (x, off)
    off += (x["bytes"] + 255) // 256 * 256
assert off == comps[5]["offset"], (off, comps[5])
assert comps[5]["bytes"] == 0
ac = p["arena_config"]
assert ac["n_pages"] == p["kv_blocks"] and ac["max_tokens"] == p["max_step_tokens"], ac
assert ac["n_resident"] == p["n_resident"] and ac["max_seq_len"] == p["n_ctx"], ac
assert p["max_seqs"] * p["blocks_per_job"] <= p["kv_blocks"]
assert len(p["resident_layers"]) == p["n_resident"] <= p["n_layer"] == 4
assert p["hparams"]["n_vocab"] == 32000 and p["hparams"]["n_embd"] == 512
assert p["decode"]["tokens_per_s"] > 0 and p["prefill"]["tokens_per_s"] > 0
assert p["device"]["name"] == "rtx3060-12gb" and p["device"]["assumed"] is False
PY
    done
done

# 3. Forced resident layers are honoured; the head is always resident (the backend does not stream it).
"$BIN" plan -m "$MODEL" --vram-budget 1GiB --device l4-24gb --resident-layers 2 --json >"$TMP/f.json" \
    || fail "forced plan failed"
python3 -c "
import json,sys
p=json.load(open('$TMP/f.json'))
assert p['n_resident']==2 and p['resident_forced'] and p['output_resident'], p
assert p['staging_slots']==2 and p['arena_config']['n_resident']==2, p
assert p['resident_layers']==[1,3], p['resident_layers']
" || fail "forced plan not honoured"

# 4. No --device: the default profile is assumed and said so.
"$BIN" plan -m "$MODEL" --vram-budget 1GiB >"$TMP/out" || fail "default-device plan failed"
grep -q "rtx3060-12gb (assumed" "$TMP/out" || fail "no assumed-device note"

# 5. Overrides.
"$BIN" plan -m "$MODEL" --vram-budget 1GiB --device rtx3060-12gb --pcie-gbps 12.5 --json >"$TMP/o.json" || fail "override"
python3 -c "import json; assert json.load(open('$TMP/o.json'))['device']['pcie_gbps'] == 12.5" || fail "override ignored"

# 6. --measure without a device (no CUDA in the build, or no GPU): a clear runtime error.
#    On a machine with a GPU and a CUDA build it must measure instead.
"$BIN" plan -m "$MODEL" --vram-budget 1GiB --measure --json >"$TMP/out" 2>"$TMP/err"
rc=$?
if grep -q "nightshift plan: measured" "$TMP/err"; then
    [ $rc -eq 0 ] || fail "--measure measured but exited $rc"
    python3 -c "
import json
p=json.load(open('$TMP/out'))
assert p['device']['name']=='measured' and p['device']['pcie_gbps']>0 and p['device']['tflops']>0, p['device']
" || fail "--measure figures"
else
    [ $rc -eq 1 ] || fail "--measure exit $rc, want 1"
    grep -q "needs a CUDA device" "$TMP/err" || fail "--measure message: $(cat "$TMP/err")"
    grep -q "use --device NAME" "$TMP/err" || fail "--measure message: $(cat "$TMP/err")"
fi

# 7. Capacity: too small a budget says how much is needed (exit 1).
"$BIN" plan -m "$MODEL" --vram-budget 8MiB --device rtx3060-12gb >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "tiny budget exit $rc, want 1"
grep -q "too small; this model needs at least" "$TMP/err" || fail "capacity message: $(cat "$TMP/err")"

# 8. Usage errors exit 2.
for args in "--vram-budget 1GiB" "-m $MODEL" "-m $MODEL --vram-budget lots" "-m $MODEL --vram-budget 1GiB --device voodoo2" \
    "-m $MODEL --vram-budget 1GiB --workload poetry" "-m $MODEL --vram-budget 1GiB --ctx 100" \
    "-m $MODEL --vram-budget 1GiB --resident-layers 9" "-m $MODEL --vram-budget 1GiB --bogus" \
    "-m $MODEL --vram-budget 1GiB --output host" "-m $MODEL --vram-budget 1GiB --slots 9"; do
    # shellcheck disable=SC2086
    "$BIN" plan $args >/dev/null 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "'plan $args' exit $rc, want 2"
done
"$BIN" plan --help | grep -q -- "--vram-budget" || fail "--help"
"$BIN" plan --list-devices | grep -q "h100-80gb-sxm" || fail "--list-devices"
"$BIN" plan -m /nonexistent.gguf --vram-budget 1GiB >/dev/null 2>&1
[ $? -eq 1 ] || fail "missing model must exit 1"
echo "test_plan_cli: ok"
