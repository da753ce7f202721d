#!/usr/bin/env bash
# Fresh Debian 12 -> a built nightshift running its main job on a small default:
# install dependencies, build, synthesize a tiny model, inspect it, and (once
# the job system is built) push a demo batch through `nightshift up`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
if [ -z "$(command -v nvcc || true)" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
gen=()
if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
cmake -S . -B build "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
ns=build/bin/nightshift
mkdir -p var
echo
echo "==== nightshift synth: a tiny random-weight llama model"
$ns synth --shape tiny --ftype q4_k_m --seed 1 -o var/tiny-q4_k_m.gguf
echo
echo "==== nightshift inspect (abridged)"
$ns inspect var/tiny-q4_k_m.gguf | grep -vE '^  (blk\.|tokenizer)' 
if [ -x scripts/demo.sh ]; then
  echo
  echo "==== demo batch through the queue"
  bash scripts/demo.sh var/tiny-q4_k_m.gguf
fi
