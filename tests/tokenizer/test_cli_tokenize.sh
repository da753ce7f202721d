#!/bin/bash
# test_cli_tokenize.sh - `nightshift tokenize` end to end against llama.cpp's
# prompt tokenizations in ../shared/reference/models/*.json (skips with 77
# when the reference data is absent).
set -u
BIN="${NS_BIN:?}/nightshift"
REF="${NS_REFERENCE_DIR:?}"
[ -d "$REF/models" ] && [ -d "$REF/vocab" ] || { echo "SKIP: no reference data"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

n=0
for j in "$REF"/models/*.json; do
    base=$(basename "$j" .json)
    model="$REF/models/${base%.*}.gguf"
    want=$(python3 -c 'import json,sys; print(" ".join(str(i) for i in json.load(open(sys.argv[1]))["prompt_tokens"]))' "$j") || fail "cannot read $j"
    got=$(python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["prompt"])' "$j" | "$BIN" tokenize -m "$model") || fail "tokenize failed for $base"
    [ "$got" = "$want" ] || fail "$base: got '$got' want '$want'"
    n=$((n + 1))
done
[ "$n" -ge 10 ] || fail "only $n prompts checked"

V="$REF/vocab"
got=$(printf 'Hello world' | "$BIN" tokenize -m "$V/ggml-vocab-llama-bpe.gguf")
[ "$got" = "128000 9906 1917" ] || fail "llama3 with BOS: '$got'"
got=$(printf 'Hello world' | "$BIN" tokenize -m "$V/ggml-vocab-llama-bpe.gguf" --no-bos)
[ "$got" = "9906 1917" ] || fail "llama3 --no-bos: '$got'"
got=$(printf '<|im_start|>user\nhi<|im_end|>' | "$BIN" tokenize -m "$V/ggml-vocab-qwen2.gguf" --parse-special)
[ "$got" = "151644 872 198 6023 151645" ] || fail "qwen2 --parse-special: '$got'"
got=$(printf '<|im_end|>' | "$BIN" tokenize -m "$V/ggml-vocab-qwen2.gguf")
case " $got " in *" 151645 "*) fail "control token parsed without --parse-special: '$got'" ;; esac
got=$(printf '' | "$BIN" tokenize -m "$REF/models/stories260K.gguf")
[ "$got" = "1" ] || fail "empty text with BOS: '$got'"

"$BIN" tokenize >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing -m should exit 2"
"$BIN" tokenize -m "$REF/models/stories260K.gguf" --bogus </dev/null >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad option should exit 2"
"$BIN" tokenize -m /nonexistent.gguf </dev/null >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing file should exit 1"
"$BIN" tokenize --help | grep -q "usage" || fail "--help"
echo "ok: $n prompts"
