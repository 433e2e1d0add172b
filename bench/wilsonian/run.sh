#!/bin/sh
# bench/wilsonian/run.sh: nnft vs numpy/scipy on the digits Wilsonian analysis; prints the ratio.
#   NNFT_BIN=build-x/nnft THREADS=1 bench/wilsonian/run.sh [key=value ...]
set -e
cd "$(dirname "$0")/../.."
NNFT_BIN=${NNFT_BIN:-build/nnft}
THREADS=${THREADS:-1}
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
py=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import numpy, scipy' >/dev/null 2>&1; then py=$p; break; fi
done
[ -n "$py" ] || { echo "run.sh: no python3 with numpy and scipy (apt-get install python3-scipy)" >&2; exit 1; }
echo "threads: $THREADS"
a=$("$NNFT_BIN" bench/wilsonian/bench.lua "$@")
b=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" bench/wilsonian/peer.py "$@")
echo "$a"; echo "$b"
ta=$(echo "$a" | sed 's/.*: \([0-9.]*\) s.*/\1/'); tb=$(echo "$b" | sed 's/.*: \([0-9.]*\) s.*/\1/')
ca=$(echo "$a" | sed 's/.*checksum //'); cb=$(echo "$b" | sed 's/.*checksum //')
"$py" -c "
ta,tb,ca,cb=$ta,$tb,$ca,$cb
print('ratio (numpy time / nnft time): %.2f' % (tb/ta))
print('checksums agree to %.1e relative' % (abs(ca-cb)/abs(cb)))"
