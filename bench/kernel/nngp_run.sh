#!/bin/sh
# bench/kernel/nngp_run.sh: benchmark (a), the NNGP kernel matrix K(X, X) of a depth-5 MLP at
# n = 3000 points in d = 64 (relu, erf: closed forms; gelu: Gauss–Hermite at n_gelu points) —
# nnft (bench/kernel/nngp.lua) against numpy running the same recursion (nngp_numpy.py).
#
#   bench/kernel/nngp_run.sh [key=value ...]   (keys of nngp.lua: n, n_gelu, d, depth, quad,
#                                               reps, sigma_w, sigma_b)
# Environment: NNFT_BIN (default build/nnft), THREADS (OpenMP/BLAS threads for both, default 1),
# PYTHON (a python3 with numpy and scipy).
# Prints per case the best wall time of each program, numpy/nnft, and whether the checksums
# (sums of K) agree.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
NNFT_BIN=${NNFT_BIN:-$root/build/nnft}
[ -x "$NNFT_BIN" ] || { echo "nngp_run.sh: no nnft interpreter at $NNFT_BIN (set NNFT_BIN)" >&2; exit 1; }
py=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import numpy, scipy.special' >/dev/null 2>&1; then py=$p; break; fi
done
[ -n "$py" ] || { echo "nngp_run.sh: no python3 with numpy and scipy (apt-get install python3-numpy python3-scipy)" >&2; exit 1; }
THREADS=${THREADS:-1}
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "(a) NNGP kernel matrix: OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=$THREADS for both; best wall time"
"$NNFT_BIN" "$here/nngp.lua" "$@" >"$tmp/nnft.out"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$here/nngp_numpy.py" "$@" >"$tmp/numpy.out"
awk '
  FNR == NR && $1 == "RESULT" { t[$2] = $3; c[$2] = $4; order[++n] = $2; next }
  $1 == "RESULT" { nt[$2] = $3; nc[$2] = $4 }
  END {
    printf "%-28s %10s %10s %11s  %s\n", "case", "nnft [s]", "numpy [s]", "numpy/nnft", "checksums"
    for (k = 1; k <= n; k++) {
      name = order[k]
      if (!(name in nt)) { printf "%-28s %10.4f %10s\n", name, t[name], "-"; continue }
      d = c[name] - nc[name]; if (d < 0) d = -d
      s = nc[name] < 0 ? -nc[name] : nc[name]
      rel = s > 0 ? d / s : d
      printf "%-28s %10.4f %10.4f %11.2f  %s (rel diff %.1e)\n", name, t[name], nt[name],
             nt[name] / t[name], rel < 1e-10 ? "agree" : "DIFFER", rel
    }
  }' "$tmp/nnft.out" "$tmp/numpy.out"
