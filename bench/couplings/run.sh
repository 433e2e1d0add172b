#!/bin/sh
# Vertex integrals: nnft vs scipy.integrate.quad/dblquad on the same work; prints the ratios.
# Usage: bench/couplings/run.sh [path/to/nnft]
here=$(cd "$(dirname "$0")" && pwd)
nnft=${1:-$here/../../build/nnft}
py=${PYTHON:-/usr/bin/python3}  # Debian's python3-scipy imports under the system python
a=$("$nnft" "$here/couplings.lua")
if ! "$py" -c "import scipy" 2>/dev/null; then
  echo "$a"; echo "scipy is not installed (apt-get install python3-scipy): no peer timing"; exit 0
fi
b=$("$py" "$here/couplings_scipy.py")
echo "$a"; echo "$b"
for k in d1_126x21 d2_15x4; do
  tn=$(echo "$a" | awk -v k=$k '$2==k{print $3}'); ts=$(echo "$b" | awk -v k=$k '$2==k{print $3}')
  awk -v k=$k -v n=$tn -v s=$ts 'BEGIN{printf "%s: nnft %.4f s, scipy %.2f s, ratio %.0fx\n", k, n, s, s/n}'
done
