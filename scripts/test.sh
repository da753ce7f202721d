#!/usr/bin/env bash
# Run nightshift's whole test suite, as CI does:
#   0. clang-format-16 --dry-run over every C/CUDA source (the `format-check` target) when it is installed;
#   1. build with -Werror (CUDA kernels too when nvcc is present) and run every
#      test: unit, integration (a private PostgreSQL and real ZeroMQ sockets),
#      and gpu (each skips with 77 when no device is found);
#   2. build with ASan + UBSan and run the unit tests again;
#   3. with clang, build the libFuzzer targets and fuzz each for NS_FUZZ_SECONDS (60).
# Build trees go to build-test/, build-asan/ and build-fuzz/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_seconds=${NS_FUZZ_SECONDS:-60}
gen=()
if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
if [ -z "$(command -v nvcc || true)" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi

status=0
step() { printf '\n==== %s\n' "$*"; }

step "build (-Werror)"
cmake -S . -B build-test "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNS_WERROR=ON -DNS_CUDA=AUTO
cmake --build build-test -j "$jobs"
if command -v clang-format-16 >/dev/null 2>&1; then
  step "format check (clang-format-16)"
  cmake --build build-test --target format-check || status=1
fi
step "all tests"
ctest --test-dir build-test --output-on-failure -j "$jobs" || status=1

step "build (ASan + UBSan)"
cmake -S . -B build-asan "${gen[@]}" -DCMAKE_BUILD_TYPE=Debug -DNS_WERROR=ON -DNS_SANITIZE=ON -DNS_CUDA=OFF
cmake --build build-asan -j "$jobs"
step "unit tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -L unit || status=1

if command -v clang >/dev/null 2>&1 && echo 'int LLVMFuzzerTestOneInput(const char*d,unsigned long n){(void)d;(void)n;return 0;}' \
     | clang -x c -fsanitize=fuzzer - -o /tmp/ns_fuzz_probe 2>/dev/null; then
  step "fuzz (${fuzz_seconds}s per target)"
  cmake -S . -B build-fuzz "${gen[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNS_FUZZ=ON \
    -DNS_CUDA=OFF -DNS_FUZZ_SECONDS="$fuzz_seconds"
  cmake --build build-fuzz -j "$jobs"
  ctest --test-dir build-fuzz --output-on-failure -L fuzz || status=1
else
  step "fuzz: skipped (clang with libFuzzer not available)"
fi

if [ "$status" -ne 0 ]; then
  echo "nightshift tests: FAILED"
else
  echo "nightshift tests: all passed"
fi
exit "$status"
