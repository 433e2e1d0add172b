#!/bin/sh
# bench/kernel/run.sh: the kernel benchmarks, one part after another. Each part is a script
# bench/kernel/<part>_run.sh that runs nnft and its peer on the same work and prints the ratio:
#   nngp    (a) NNGP kernel matrix vs numpy            (nngp_run.sh)
#   gp      (b) GP fit + predict vs scikit-learn       (gp_run.sh)
#   mercer  (c) Mercer modes vs numpy                  (mercer_run.sh)
# A new part only needs its <part>_run.sh here (and a line above).
#
#   bench/kernel/run.sh                     every part, in the order above, then any other *_run.sh
#   PARTS="nngp gp" bench/kernel/run.sh     the listed parts only
#   NNFT_BIN=build-x/nnft THREADS=2 bench/kernel/run.sh
# Each part takes its own key=value arguments; run it directly to pass them.
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
export NNFT_BIN
if [ -z "${PARTS:-}" ]; then
  PARTS="nngp gp mercer"
  for s in "$here"/*_run.sh; do
    p=$(basename "$s" _run.sh)
    case " $PARTS " in *" $p "*) ;; *) PARTS="$PARTS $p" ;; esac
  done
fi
status=0
for p in $PARTS; do
  s="$here/${p}_run.sh"
  if [ ! -f "$s" ]; then echo "run.sh: no part '$p' ($s)" >&2; status=1; continue; fi
  echo "==== $p"
  sh "$s" || { echo "run.sh: part '$p' failed" >&2; status=1; }
  echo
done
exit $status
