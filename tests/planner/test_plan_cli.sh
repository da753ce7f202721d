#!/usr/bin/env bash
# test_plan_cli.sh - `nightshift plan` end to end on the reference tiny-llama:
# the table, --json (components sum to the arena, arena <= budget), the
# assumed-device note, --measure without CUDA, and usage/capacity errors.
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
for pat in "resident weights" "staging slots" "KV page pool" "activations" "cuBLAS workspace" "sampling buffers" \
    "arena (sum)" "resident layers" "KV pool" "sequences" "prefill" "decode" "rtx3060-12gb"; do
    grep -q "$pat" "$TMP/out" || fail "table lacks '$pat'"
done
grep -q "assumed" "$TMP/out" && fail "a named device must not be reported as assumed"

# 2. JSON: exact sum, within budget, for several budgets and workloads.
for b in 96MiB 200MiB 1GiB 11.5GiB; do
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
                                      "cuBLAS workspace", "sampling buffers"], comps
off = 0
for c in comps:
    assert c["offset"] == off, (c, off)
    assert c["bytes"] % 256 == 0, c
    off += c["bytes"]
assert off == p["arena_bytes"], (off, p["arena_bytes"])
assert p["budget_bytes"] == budget, (p["budget_bytes"], budget)
assert p["arena_bytes"] <= budget
assert p["kv_blocks"] * p["kv_block_bytes"] <= comps[2]["bytes"]
assert p["max_seqs"] * p["blocks_per_job"] <= p["kv_blocks"]
assert len(p["resident_layers"]) == p["n_resident"] <= p["n_layer"] == 4
assert p["hparams"]["n_vocab"] == 32000 and p["hparams"]["n_embd"] == 512
assert p["decode"]["tokens_per_s"] > 0 and p["prefill"]["tokens_per_s"] > 0
assert p["device"]["name"] == "rtx3060-12gb" and p["device"]["assumed"] is False
PY
    done
done

# 3. Forced resident layers and output placement are honoured.
"$BIN" plan -m "$MODEL" --vram-budget 1GiB --device l4-24gb --resident-layers 2 --output host --json >"$TMP/f.json" \
    || fail "forced plan failed"
python3 -c "
import json,sys
p=json.load(open('$TMP/f.json'))
assert p['n_resident']==2 and p['resident_forced'] and not p['output_resident'], p
assert p['resident_layers']==[1,3], p['resident_layers']
" || fail "forced plan not honoured"

# 4. No --device: the default profile is assumed and said so.
"$BIN" plan -m "$MODEL" --vram-budget 1GiB >"$TMP/out" || fail "default-device plan failed"
grep -q "rtx3060-12gb (assumed" "$TMP/out" || fail "no assumed-device note"

# 5. Overrides.
"$BIN" plan -m "$MODEL" --vram-budget 1GiB --device rtx3060-12gb --pcie-gbps 12.5 --json >"$TMP/o.json" || fail "override"
python3 -c "import json; assert json.load(open('$TMP/o.json'))['device']['pcie_gbps'] == 12.5" || fail "override ignored"

# 6. --measure without CUDA: a clear runtime error.
"$BIN" plan -m "$MODEL" --vram-budget 1GiB --measure >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "--measure exit $rc, want 1"
grep -q "needs a CUDA device; use --device NAME" "$TMP/err" || fail "--measure message: $(cat "$TMP/err")"

# 7. Capacity: too small a budget says how much is needed (exit 1).
"$BIN" plan -m "$MODEL" --vram-budget 8MiB --device rtx3060-12gb >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "tiny budget exit $rc, want 1"
grep -q "too small; this model needs at least" "$TMP/err" || fail "capacity message: $(cat "$TMP/err")"

# 8. Usage errors exit 2.
for args in "--vram-budget 1GiB" "-m $MODEL" "-m $MODEL --vram-budget lots" "-m $MODEL --vram-budget 1GiB --device voodoo2" \
    "-m $MODEL --vram-budget 1GiB --workload poetry" "-m $MODEL --vram-budget 1GiB --ctx 100" \
    "-m $MODEL --vram-budget 1GiB --resident-layers 9" "-m $MODEL --vram-budget 1GiB --bogus"; do
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
