#!/bin/sh
# bench/fisher/run.sh: Fisher spectrum of an MLP 64-512-512-1 (P ≈ 3·10⁵) on n = 1000 inputs,
# nnft (Gram form, layer by layer) vs PyTorch (functorch vmap + jacrev, J Jᵀ, eigvalsh), float64,
# same threads, same parameters and inputs, in one run.
#
#   bench/fisher/run.sh [d=64 width=512 n=1000 reps=3]
# Environment: NNFT_BIN (default build/nnft), THREADS (default 1), PYTHON (default /usr/bin/python3).
# Prints both times, the ratio torch time / nnft time (> 1: nnft faster) and the checksums
# (top eigenvalue and trace of the spectrum) of both programs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
NNFT_BIN=${NNFT_BIN:-$root/build/nnft}
[ -x "$NNFT_BIN" ] || { echo "run.sh: no nnft interpreter at $NNFT_BIN (set NNFT_BIN)" >&2; exit 1; }
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import torch, functorch' 2>/dev/null || { echo "run.sh: $PY lacks torch (Debian: apt-get install python3-torch)" >&2; exit 1; }
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
BENCH_DIR=$(mktemp -d); export BENCH_DIR
trap 'rm -rf "$BENCH_DIR"' EXIT
a=$("$NNFT_BIN" "$here/fisher.lua" "$@")
b=$("$PY" -c "import torch; torch.set_num_threads($THREADS); exec(open('$here/fisher_torch.py').read())" "$@")
echo "$a"
echo "$b"
ta=$(echo "$a" | sed 's/.*time \([0-9.]*\) s.*/\1/')
tb=$(echo "$b" | sed 's/.*time \([0-9.]*\) s.*/\1/')
echo "threads=$THREADS  ratio torch/nnft = $(echo "$tb $ta" | awk '{printf "%.2f", $1/$2}')"

# Part (b): the BRG-NNFT ensemble of examples/brg/bayes_nn_ft.lua (100 members, per-sample SGD,
# diagonal readout Fisher, 25 cumulative cutoffs) vs PyTorch following the published loop:
# bench/fisher/brg_run.sh [members=100 epochs=20]; run from here with BRG=1 (minutes: the peer).
if [ "${BRG:-0}" = 1 ]; then NNFT_BIN=$NNFT_BIN THREADS=$THREADS "$here/brg_run.sh"; fi
