#!/usr/bin/env bash
# End-to-end checks of `nightshift generate`, `logits` and `perplexity` on the
# reference models (skips with 77 when ../shared/reference is absent).
set -euo pipefail
BIN="${NS_BIN:?}/nightshift"
REF="${NS_REFERENCE_DIR:?}/models"
[ -f "$REF/stories260K.gguf" ] || { echo "SKIP: no reference models"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Greedy generation equals llama.cpp's continuation (prompt tokens too).
"$BIN" generate -m "$REF/stories260K.gguf" -p "Once upon a time" -n 60 --temp 0 --json -t 2 >"$TMP/gen.json"
python3 - "$TMP/gen.json" "$REF/stories260K.p1.json" <<'PY'
import json, sys
got = json.loads(open(sys.argv[1]).read())
ref = json.load(open(sys.argv[2]))
assert got["prompt_tokens"] == ref["prompt_tokens"], (got["prompt_tokens"], ref["prompt_tokens"])
assert got["tokens"] == ref["greedy"][:len(got["tokens"])] and len(got["tokens"]) == 60, got["tokens"]
assert got["finish_reason"] == "length"
print("generate greedy: ok")
PY

# Logits of every position within the bar, for an F32 and a quantized model.
for m in stories260K:0.002 micro-qwen2-q8_0:0.035; do
    name=${m%%:*}; bar=${m##*:}
    ids=$(python3 -c "import json;print(','.join(map(str,json.load(open('$REF/$name.p2.json'))['prompt_tokens'])))")
    "$BIN" logits -m "$REF/$name.gguf" --token-ids "$ids" -o "$TMP/l.f32" -t 2
    python3 - "$TMP/l.f32" "$REF/$name.p2.logits.f32" "$REF/$name.p2.json" "$bar" <<'PY'
import json, math, struct, sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
n_vocab = json.load(open(sys.argv[3]))["n_vocab"]; bar = float(sys.argv[4])
assert len(a) == len(b), (len(a), len(b))
a = struct.unpack("<%df" % (len(a) // 4), a); b = struct.unpack("<%df" % (len(b) // 4), b)
worst = 0
for p in range(len(a) // n_vocab):
    x = a[p * n_vocab:(p + 1) * n_vocab]; y = b[p * n_vocab:(p + 1) * n_vocab]
    r = math.sqrt(sum((u - v) ** 2 for u, v in zip(x, y)) / sum(v * v for v in y))
    worst = max(worst, r)
assert worst <= bar, worst
print("logits %s: worst relative RMS %.5f" % (sys.argv[2].split("/")[-1], worst))
PY
done

# Text prompts tokenize like llama.cpp (BOS from metadata).
"$BIN" logits -m "$REF/stories260K.gguf" -p "Once upon a time" -o "$TMP/l.f32" --print-ids -t 1 >"$TMP/ids.txt"
[ "$(cat "$TMP/ids.txt")" = "1 403 407 261 378" ] || { echo "prompt ids: $(cat "$TMP/ids.txt")"; exit 1; }

# A file of prompts runs as one batch; results come back in input order.
printf 'Once upon a time\nThe cat sat\n\nLily wanted to play\n' >"$TMP/prompts.txt"
"$BIN" generate -m "$REF/stories260K.gguf" -f "$TMP/prompts.txt" -n 16 --seed 7 --json -t 2 >"$TMP/multi.json"
python3 - "$TMP/multi.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["index"] for r in rows] == [0, 1, 2], rows
assert all(len(r["tokens"]) == 16 or r["finish_reason"] == "stop" for r in rows)
print("generate -f: ok")
PY

# Perplexity: finite, and the same on a rerun with another thread count.
p1=$("$BIN" perplexity -m "$REF/stories260K.gguf" -f "$NS_SOURCE_DIR/docs/engine.md" --ctx 64 --chunks 4 --json -t 1)
p2=$("$BIN" perplexity -m "$REF/stories260K.gguf" -f "$NS_SOURCE_DIR/docs/engine.md" --ctx 64 --chunks 4 --json -t 2)
python3 - "$p1" "$p2" <<'PY'
import json, math, sys
a = json.loads(sys.argv[1]); b = json.loads(sys.argv[2])
assert math.isfinite(a["ppl"]) and a["ppl"] > 1 and a["n_chunks"] == 4, a
assert a["ppl"] == b["ppl"], (a["ppl"], b["ppl"])
print("perplexity: %.3f" % a["ppl"])
PY

# Usage errors exit 2.
set +e
"$BIN" generate -m "$REF/stories260K.gguf" >/dev/null 2>&1; [ $? -eq 2 ] || exit 1
"$BIN" logits -m x --bogus >/dev/null 2>&1; [ $? -eq 2 ] || exit 1
echo "all ok"
