#!/bin/sh
# bench/kernel/mercer_run.sh: benchmark (c), top-k Mercer modes vs numpy eigh of the full matrix
# (and scipy's dsyevr subset as a reference); prints the ratios.
#   NNFT_BIN=build-x/nnft THREADS=1 bench/kernel/mercer_run.sh [n=4000 k=100 d=8 reps=3]
set -e
cd "$(dirname "$0")/../.."
NNFT_BIN=${NNFT_BIN:-build/nnft}
THREADS=${THREADS:-1}
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
py=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import sklearn, scipy' >/dev/null 2>&1; then py=$p; break; fi
done
[ -n "$py" ] || { echo "mercer_run.sh: no python3 with scikit-learn (apt-get install python3-sklearn)" >&2; exit 1; }
echo "threads: $THREADS"
a=$("$NNFT_BIN" bench/kernel/mercer_bench.lua "$@")
b=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" bench/kernel/mercer_numpy.py "$@")
echo "$a"; echo "$b"
ta=$(echo "$a" | sed 's/.*: \([0-9.]*\) s.*/\1/'); ca=$(echo "$a" | sed 's/.*checksum \([^ ]*\).*/\1/')
tb=$(echo "$b" | sed -n 1p | sed 's/.*: \([0-9.]*\) s.*/\1/'); cb=$(echo "$b" | sed -n 1p | sed 's/.*checksum \([^ ]*\).*/\1/')
tc=$(echo "$b" | sed -n 2p | sed 's/.*: \([0-9.]*\) s.*/\1/'); cc=$(echo "$b" | sed -n 2p | sed 's/.*checksum \([^ ]*\).*/\1/')
"$py" -c "
ta,tb,tc,ca,cb,cc=$ta,$tb,$tc,$ca,$cb,$cc
print('ratio (numpy full eigh time / nnft time): %.2f' % (tb/ta))
print('ratio (scipy dsyevr subset reference / nnft time): %.2f' % (tc/ta))
print('checksums agree to %.1e (numpy), %.1e (scipy) relative' % (abs(ca-cb)/abs(cb), abs(ca-cc)/abs(cc)))"
