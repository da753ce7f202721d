#!/usr/bin/env bash
# Install nightshift's build and test dependencies on Debian 12 (bookworm).
# Safe to run again. Uses sudo when not root. The CUDA toolkit is optional and
# not installed here: when nvcc is on PATH (or in /usr/local/cuda), CMake
# builds the kernels too.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git ca-certificates \
  libzmq3-dev libmsgpack-dev libpq-dev libjansson-dev libpcre2-dev \
  postgresql postgresql-contrib \
  python3 python3-zmq python3-msgpack \
  clang libclang-rt-14-dev clang-format-16 \
  procps util-linux >/dev/null
echo "nightshift: dependencies installed"
