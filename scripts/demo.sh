#!/usr/bin/env bash
# demo.sh MODEL.gguf - the job system end to end on one machine:
#   nightshift up -> submit a demo batch (examples/demo.jsonl: 20 jobs, raw
#   prompts, chat messages and OpenAI Batch API lines) -> watch -> export the
#   results -> print a few -> nightshift down.
# Environment: NS_BIN (directory of the nightshift binaries, default build/bin),
#   NIGHTSHIFT_DATA (data dir, default var/nightshift), NS_DEMO_PORT (5555).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:?usage: scripts/demo.sh MODEL.gguf}
bin=${NS_BIN:-$root/build/bin}
ns=$bin/nightshift
data=${NIGHTSHIFT_DATA:-$root/var/nightshift}
port=${NS_DEMO_PORT:-5555}
name=$(basename "$model" .gguf)
export NIGHTSHIFT_DATA=$data
export NIGHTSHIFT_BROKER=tcp://127.0.0.1:$port

echo "==== nightshift up (PostgreSQL + broker + worker, data in $data)"
"$ns" up -m "$model" --data "$data" --port "$port" --model-name "$name"
trap 'echo; echo "==== nightshift down"; "$ns" down --data "$data"' EXIT

echo
echo "==== nightshift submit --model $name examples/demo.jsonl"
batch=$("$ns" submit --model "$name" --name demo "$root/examples/demo.jsonl")
echo "batch $batch"

echo
echo "==== nightshift watch $batch"
"$ns" watch "$batch"

echo
echo "==== nightshift status $batch"
"$ns" status "$batch"

out=$data/demo-results.jsonl
echo
echo "==== nightshift results $batch -o $out"
"$ns" results "$batch" -o "$out"
echo "first results (custom_id: finish_reason, text):"
if command -v python3 >/dev/null 2>&1; then
    head -n 5 "$out" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    c = r["response"]["body"]["choices"][0]
    text = c["message"]["content"] if "message" in c else c["text"]
    print("  %-10s %-6s %r" % (r["custom_id"], c["finish_reason"], text[:100]))
'
else
    head -n 3 "$out"
fi
n=$(wc -l <"$out")
echo "$n results in $out"
"$ns" workers
