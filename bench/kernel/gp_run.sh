#!/bin/sh
# bench/kernel/gp_run.sh: benchmark (b), nnft GP fit + predict vs scikit-learn's
# GaussianProcessRegressor(optimizer=None) (and a direct scipy reference); prints the ratios.
#   NNFT_BIN=build-x/nnft THREADS=1 bench/kernel/gp_run.sh [n=4000 m=1000 d=8 reps=3 ...]
set -e
cd "$(dirname "$0")/../.."
NNFT_BIN=${NNFT_BIN:-build/nnft}
THREADS=${THREADS:-1}
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
py=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import sklearn, scipy' >/dev/null 2>&1; then py=$p; break; fi
done
[ -n "$py" ] || { echo "gp_run.sh: no python3 with scikit-learn (apt-get install python3-sklearn)" >&2; exit 1; }
echo "threads: $THREADS"
a=$("$NNFT_BIN" bench/kernel/gp_bench.lua "$@")
b=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" bench/kernel/gp_sklearn.py "$@")
echo "$a"; echo "$b"
ta=$(echo "$a" | sed 's/.*: \([0-9.]*\) s.*/\1/'); ca=$(echo "$a" | sed 's/.*checksum \([^ ]*\).*/\1/')
tb=$(echo "$b" | sed -n 1p | sed 's/.*: \([0-9.]*\) s.*/\1/'); cb=$(echo "$b" | sed -n 1p | sed 's/.*checksum \([^ ]*\).*/\1/')
tc=$(echo "$b" | sed -n 2p | sed 's/.*: \([0-9.]*\) s.*/\1/'); cc=$(echo "$b" | sed -n 2p | sed 's/.*checksum \([^ ]*\).*/\1/')
"$py" -c "
ta,tb,tc,ca,cb,cc=$ta,$tb,$tc,$ca,$cb,$cc
print('ratio (sklearn time / nnft time): %.2f' % (tb/ta))
print('ratio (scipy one-factor reference / nnft time): %.2f' % (tc/ta))
print('checksums agree to %.1e (sklearn), %.1e (scipy) relative' % (abs(ca-cb)/abs(cb), abs(ca-cc)/abs(cc)))"
