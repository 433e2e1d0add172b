#!/bin/sh
# bench/ensemble/run.sh: streamed ensemble correlators, nnft against numpy and PyTorch on the same
# work, in one run (see bench/README.md for the conventions).
#
#   bench/ensemble/run.sh [E=100000] [E_peer=...] [width=1000] [reps=1]
#
# For 1 and 2 threads: nnft (bench/ensemble/ensemble.lua) and its peers
# (bench/ensemble/ensemble_numpy.py lib=numpy, lib=torch) sample E one-hidden-layer ReLU networks
# of the given width at 6 inputs and accumulate G2, G4, G6 over all sorted tuples in 10 bags.
# E_peer (default E) runs the peers on fewer networks: their times are then scaled to E per
# network (the work is linear in E) and marked "scaled".
# Environment: NNFT_BIN (default build/nnft, built first), PYTHON (a python3 with numpy).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

E=100000
E_peer=""
width=1000
reps=1
for a in "$@"; do
  case "$a" in
    E=*) E=${a#E=} ;;
    E_peer=*) E_peer=${a#E_peer=} ;;
    width=*) width=${a#width=} ;;
    reps=*) reps=${a#reps=} ;;
    *) echo "run.sh: unknown argument '$a' (E=, E_peer=, width=, reps=)" >&2; exit 2 ;;
  esac
done
[ -n "$E_peer" ] || E_peer=$E

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

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "ensemble correlators: E=$E networks (peers: E=$E_peer), width $width, d=1, 6 inputs, G2+G4+G6 (609 tuples), 10 bags"
echo "nnft:  $NNFT_BIN"
for t in 1 2; do
  export OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t
  "$NNFT_BIN" "$here/ensemble.lua" E="$E" width="$width" threads="$t" reps="$reps" >>"$tmp/out"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$here/ensemble_numpy.py" lib=numpy \
    E="$E_peer" width="$width" threads="$t" reps="$reps" >>"$tmp/out"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$here/ensemble_numpy.py" lib=torch \
    E="$E_peer" width="$width" threads="$t" reps="$reps" >>"$tmp/out"
done
grep '^INFO' "$tmp/out" | sort -u | sed 's/^INFO /peer:  /'
echo
awk -v E="$E" -v EP="$E_peer" '
  $1 == "RESULT" { split($2, p, "_t"); lib = p[1]; th = p[2]
                   s = (lib == "nnft") ? 1 : E / EP
                   t[lib, th] = $3 * s; g[lib, th] = $4; e[lib, th] = $5; seen[lib] = 1 }
  $1 == "SKIP"   { split($2, p, "_t"); skip[p[1]] = 1 }
  END {
    printf "%-8s %7s %12s %12s %22s\n", "program", "threads", "time [s]", "us/network", "G2(1.2,1.2) (K=0.72)"
    for (th = 1; th <= 2; th++) {
      n = split("nnft numpy torch", libs, " ")
      for (i = 1; i <= n; i++) {
        l = libs[i]
        if (l in skip) { printf "%-8s %7d   skipped (not installed)\n", l, th; continue }
        if (!((l, th) in t)) continue
        printf "%-8s %7d %12.3f %12.2f %13.5f +- %.5f%s\n", l, th, t[l, th], t[l, th] / E * 1e6,
               g[l, th], e[l, th], (l != "nnft" && E != EP) ? "  (time scaled from E=" EP ")" : ""
      }
      for (i = 2; i <= n; i++) {
        l = libs[i]
        if ((l, th) in t) printf "  %s/nnft (%d thread%s): %.1fx\n", l, th, (th > 1 ? "s" : ""), t[l, th] / t["nnft", th]
      }
    }
    print ""
    print "peer/nnft = peer time / nnft time: > 1 means nnft is faster."
  }' "$tmp/out"
