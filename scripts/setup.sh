#!/usr/bin/env bash
# nnft set-up on Debian 12: install what is missing, configure and build, then either run the
# flagship recipe (`demo`) or the whole test suite (`test`). Idempotent; run as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config liblua5.4-dev lua5.4 libopenblas-dev liblapacke-dev
  libgsl-dev libreadline-dev gnuplot-nox lua-busted lua-cjson python3-numpy)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

build() { # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}

FLAGSHIP=examples/nnqft/npoint_vs_width.lua

case "${1:-}" in
  demo)
    install_missing
    build build
    build/nnft "$FLAGSHIP" out=out/flagship
    ;;
  test)
    install_missing
    build build
    ctest --test-dir build --output-on-failure
    # The same suite under AddressSanitizer + UBSan (bindings included: the specs run in build-asan/nnft).
    build build-asan -DNNFT_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure
    ;;
  *)
    echo "usage: scripts/setup.sh demo|test" >&2
    exit 2
    ;;
esac
