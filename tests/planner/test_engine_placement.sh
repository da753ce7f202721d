#!/usr/bin/env bash
# test_engine_placement.sh - --vram-budget / --resident-layers / --workload on
# generate, logits, perplexity, bench and nightshift-worker: usage errors (exit 2), CPU rejection, and
# what happens without a device: builds without CUDA refuse the options
# (exit 1); CUDA builds on a machine without a GPU plan first (a budget too
# small fails with the planner's message), then fail cleanly for --backend
# cuda and fall back to the CPU for --backend auto. On a machine with a GPU
# the auto runs use CUDA and must print the context-overhead line.
set -u
BIN="${NS_BIN:?}/nightshift"
MODEL="${NS_REFERENCE_DIR:?}/models/stories260K.gguf"
if [ ! -r "$MODEL" ]; then
    echo "SKIP: $MODEL not found"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
run() { "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"; echo $?; }

# 1. Usage errors, identical with and without CUDA.
for cmd in "generate -p hi -n 2" "logits -p hi -o $TMP/l.f32" "perplexity -f $TMP/text.txt" "bench --prompt 4 --gen 1 --batches 1"; do
    # shellcheck disable=SC2086
    set -- $cmd
    sub=$1
    shift
    rc=$(run "$sub" -m "$MODEL" "$@" --backend cpu --vram-budget 1GiB)
    [ "$rc" -eq 2 ] || fail "$sub --backend cpu --vram-budget: exit $rc, want 2"
    grep -q "apply to the CUDA backend, not --backend cpu" "$TMP/err" || fail "$sub cpu message: $(cat "$TMP/err")"
    rc=$(run "$sub" -m "$MODEL" "$@" --backend auto --resident-layers 2)
    [ "$rc" -eq 2 ] || fail "$sub --resident-layers alone: exit $rc, want 2"
    grep -q "needs --vram-budget" "$TMP/err" || fail "$sub resident message: $(cat "$TMP/err")"
    for bad in "--vram-budget lots" "--vram-budget 0" "--resident-layers -1" "--workload poetry"; do
        # shellcheck disable=SC2086
        rc=$(run "$sub" -m "$MODEL" "$@" $bad)
        [ "$rc" -eq 2 ] || fail "$sub $bad: exit $rc, want 2"
    done
    "$BIN" "$sub" --help | grep -q -- "--vram-budget SIZE" || fail "$sub --help lacks --vram-budget"
done

# The worker rejects the same combinations before it connects anywhere.
WORKER="${NS_BIN}/nightshift-worker"
if [ -x "$WORKER" ]; then
    "$WORKER" -m "$MODEL" --pg "dbname=none" --backend cpu --vram-budget 1GiB >/dev/null 2>"$TMP/err"
    rc=$?
    [ "$rc" -eq 2 ] || fail "worker --backend cpu --vram-budget: exit $rc, want 2"
    grep -q "do not apply to --backend cpu" "$TMP/err" || fail "worker cpu message: $(cat "$TMP/err")"
    "$WORKER" -m "$MODEL" --pg "dbname=none" --resident-layers 2 >/dev/null 2>"$TMP/err"
    rc=$?
    [ "$rc" -eq 2 ] || fail "worker --resident-layers alone: exit $rc, want 2"
    grep -q "needs --vram-budget" "$TMP/err" || fail "worker resident message: $(cat "$TMP/err")"
    "$WORKER" -m "$MODEL" --pg "dbname=none" --workload poetry >/dev/null 2>&1
    [ $? -eq 2 ] || fail "worker --workload poetry must exit 2"
fi

# 2. Without a device.
"$BIN" plan -m "$MODEL" --vram-budget 1GiB --measure >/dev/null 2>"$TMP/m"
if grep -q "this build has no CUDA" "$TMP/m"; then
    rc=$(run generate -m "$MODEL" -p hi -n 2 --vram-budget 1GiB)
    [ "$rc" -eq 1 ] || fail "no-CUDA build with --vram-budget: exit $rc, want 1"
    grep -q "need the CUDA backend; this build has none" "$TMP/err" || fail "no-CUDA message: $(cat "$TMP/err")"
    echo "test_engine_placement: ok (build without CUDA)"
    exit 0
fi
rc=$(run generate -m "$MODEL" -p hi -n 2 --backend cuda --vram-budget 8MiB)
[ "$rc" -eq 1 ] || fail "budget below the minimum: exit $rc, want 1"
grep -q "too small; this model needs at least" "$TMP/err" || fail "capacity message: $(cat "$TMP/err")"
rc=$(run generate -m "$MODEL" -p hi -n 2 --backend cuda --vram-budget 1GiB --resident-layers 6)
[ "$rc" -eq 1 ] || fail "--resident-layers above n_layer: exit $rc, want 1"
grep -q "resident_layers 6 outside" "$TMP/err" || fail "resident range message: $(cat "$TMP/err")"
rc=$(run generate -m "$MODEL" -p "Once upon" -n 4 --temp 0 --vram-budget 1GiB --resident-layers 2)
[ "$rc" -eq 0 ] || fail "auto with a budget: exit $rc: $(cat "$TMP/err")"
if grep -q "backend cuda" "$TMP/err"; then
    grep -q "context overhead .* outside the budget); arena .* of budget 1.00 GiB; 2/5 layers resident" "$TMP/err" \
        || fail "no device line: $(cat "$TMP/err")"
    echo "test_engine_placement: ok (CUDA device)"
else
    grep -q "backend cpu" "$TMP/err" || fail "auto fallback: $(cat "$TMP/err")"
    rc=$(run generate -m "$MODEL" -p hi -n 2 --backend cuda --vram-budget 1GiB)
    [ "$rc" -eq 1 ] || fail "--backend cuda without a device: exit $rc, want 1"
    grep -qi "no CUDA device\|cuda" "$TMP/err" || fail "no-device message: $(cat "$TMP/err")"
    echo "test_engine_placement: ok (CUDA build, no device)"
fi
