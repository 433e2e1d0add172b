#!/bin/sh
# bench/mat/run.sh: nnft.mat against numpy on the same work, in one run.
#
#   bench/mat/run.sh [key=value ...]        (keys of bench/mat/mat.lua: reps, loop_reps, n_mm,
#                                            n_chol, n_eig, n_loop)
# Environment:
#   NNFT_BIN   the nnft interpreter (default: build/nnft, built first with cmake --build build)
#   THREADS    BLAS/OpenMP threads for both programs (default 1)
#   PYTHON     a python3 with numpy (default: the first of python3, /usr/bin/python3 that has it)
#
# Prints, per case, the best wall time of each program and the ratio numpy time / nnft time
# (> 1 means nnft is faster), and whether the two checksums agree (same inputs, same work).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ -z "${NNFT_BIN:-}" ]; then
  NNFT_BIN="$root/build/nnft"
  if [ ! -f "$root/build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$root/build" -j2 --target nnft >/dev/null
fi
[ -x "$NNFT_BIN" ] || { echo "run.sh: no nnft interpreter at $NNFT_BIN (set NNFT_BIN)" >&2; exit 1; }

py=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import numpy' >/dev/null 2>&1; then py=$p; break; fi
done
[ -n "$py" ] || { echo "run.sh: no python3 with numpy (apt-get install python3-numpy)" >&2; exit 1; }

THREADS=${THREADS:-1}
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "nnft.mat vs numpy: OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS for both; best wall time of several runs"
echo "nnft:  $NNFT_BIN ($("$NNFT_BIN" -e 'io.write(nnft.sys.info().blas)'))"

"$NNFT_BIN" "$here/mat.lua" "$@" >"$tmp/nnft.out"
# numpy: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some machines for old OpenBLAS builds) slow a
# current numpy down; unset both for this command alone (see bench/README.md).
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$here/mat_numpy.py" "$@" >"$tmp/numpy.out"

sed -n 's/^INFO numpy /numpy: numpy '"$("$py" -c 'import numpy; print(numpy.__version__)')"' /p' "$tmp/numpy.out"
echo
awk '
  FNR == NR && $1 == "RESULT" { t[$2] = $3; c[$2] = $4; order[++n] = $2; next }
  FNR == NR && $1 == "SKIP"   { skip[$2] = $0; order[++n] = $2; next }
  $1 == "RESULT" { nt[$2] = $3; nc[$2] = $4 }
  END {
    printf "%-24s %12s %12s %12s  %s\n", "case", "nnft [s]", "numpy [s]", "numpy/nnft", "checksums"
    for (k = 1; k <= n; k++) {
      name = order[k]
      if (name in skip) { printf "%-24s skipped: %s\n", name, substr(skip[name], length(name) + 7); continue }
      if (!(name in nt)) { printf "%-24s %12.4f %12s\n", name, t[name], "-"; continue }
      d = c[name] - nc[name]; if (d < 0) d = -d
      s = nc[name] < 0 ? -nc[name] : nc[name]
      rel = s > 0 ? d / s : d
      printf "%-24s %12.4f %12.4f %12.2f  %s (rel diff %.1e)\n", name, t[name], nt[name],
             nt[name] / t[name], rel < 1e-8 ? "agree" : "DIFFER", rel
    }
    print ""
    print "numpy/nnft = numpy time / nnft time: > 1 means nnft is faster, < 1 numpy is faster."
  }' "$tmp/nnft.out" "$tmp/numpy.out"
