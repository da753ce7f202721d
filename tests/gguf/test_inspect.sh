#!/usr/bin/env bash
# `nightshift inspect` end to end: text and JSON views of a real model match
# what the file holds, --dequant output is bit-identical to llama.cpp's
# dequantization, and bad input gives clear errors with exit codes.
set -euo pipefail
ns="$NS_BIN/nightshift"
ref="$NS_REFERENCE_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A synthetic model always exists, so the command is covered without the reference data.
"$ns" synth --shape tiny --ftype q4_k_m -o "$tmp/tiny.gguf" 2>/dev/null
"$ns" inspect "$tmp/tiny.gguf" > "$tmp/tiny.txt"
grep -q 'architecture: llama' "$tmp/tiny.txt" || fail "no architecture line"
grep -q 'kv cache:    2048 bytes per token at f16' "$tmp/tiny.txt" || fail "kv bytes/token (4 layers x 4 kv heads x (32+32) x 2 bytes)"
grep -q 'blk.3.attn_v.weight *Q6_K' "$tmp/tiny.txt" || fail "Q4_K_M mix: attn_v of layer 3 (i >= 7n/8) is Q6_K"
grep -q 'unsupported: none' "$tmp/tiny.txt" || fail "unsupported line"
"$ns" inspect "$tmp/tiny.gguf" --json > "$tmp/tiny.json"
python3 - "$tmp/tiny.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["hparams"]["n_layer"] == 4 and d["hparams"]["n_embd"] == 256, d["hparams"]
assert len(d["tensors"]) == 39 and len(d["layer_bytes"]) == 4
assert d["total_bytes"] == sum(t["bytes"] for t in d["tensors"])
assert d["metadata"]["tokenizer.ggml.tokens"]["n"] == 512 and len(d["metadata"]["tokenizer.ggml.tokens"]["head"]) == 8
assert d["kv_bytes_per_token_f16"] == 2048 and d["unsupported_tensors"] == []
PY

# Errors: missing file, corrupt file, unknown tensor, usage.
if "$ns" inspect "$tmp/none.gguf" 2>"$tmp/err"; then fail "missing file accepted"; fi
grep -q 'cannot open' "$tmp/err" || fail "missing-file message: $(cat "$tmp/err")"
head -c 100 "$tmp/tiny.gguf" > "$tmp/cut.gguf"
if "$ns" inspect "$tmp/cut.gguf" 2>"$tmp/err"; then fail "truncated file accepted"; fi
grep -q 'at byte' "$tmp/err" || fail "truncated-file message lacks an offset: $(cat "$tmp/err")"
if "$ns" inspect "$tmp/tiny.gguf" --dequant nope -o "$tmp/x.f32" 2>"$tmp/err"; then fail "unknown tensor accepted"; fi
grep -q "no tensor named 'nope'" "$tmp/err" || fail "unknown-tensor message"
set +e
"$ns" inspect 2>/dev/null; [ $? -eq 2 ] || fail "usage error must exit 2"
set -e

# Reference data: stories260K's facts, and bit-exact --dequant against llama.cpp.
if [ ! -f "$ref/models/stories260K.gguf" ] || [ ! -f "$ref/quant/quant-vectors.gguf" ]; then
  echo "SKIP: reference data absent"; exit 77
fi
"$ns" inspect "$ref/models/stories260K.gguf" > "$tmp/s.txt"
grep -q 'n_layer 5, n_embd 64, n_ff 172, n_head 8, n_head_kv 4, head_dim 8, n_vocab 512' "$tmp/s.txt" || fail "stories hparams"
grep -q 'gguf:        version 3, 1 file(s), alignment 32, 19 metadata keys, 48 tensors' "$tmp/s.txt" || fail "stories header"
grep -q 'kv cache:    640 bytes per token' "$tmp/s.txt" || fail "stories kv bytes (5 layers x 4 kv heads x (8+8) x 2 bytes)"
for t in q4_0 q8_0 q2_K q4_K q6_K iq4_xs bf16; do
  "$ns" inspect "$ref/quant/quant-vectors.gguf" --dequant "$t.q" -o "$tmp/a.f32" 2>/dev/null
  "$ns" inspect "$ref/quant/quant-vectors.gguf" --dequant "$t.f32" -o "$tmp/b.f32" 2>/dev/null
  cmp -s "$tmp/a.f32" "$tmp/b.f32" || fail "--dequant $t.q differs from llama.cpp's $t.f32"
done
echo "test_inspect: ok"
