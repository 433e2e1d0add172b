#!/bin/sh
# bench/fisher/brg_run.sh — part (b): the BRG-NNFT ensemble of examples/brg/bayes_nn_ft.lua
# (physics.md §7.5) with 100 members, nnft (brg_nnft.lua: arch:init_many, nnft.train_ensemble,
# nnft.fisher form="diag", nnft.shell.schedule) vs PyTorch following the published training loop
# (brg_torch.py: one nn.Sequential per member, per-sample SGD lr 1e-6, batch 1, fixed order, the
# first three layers frozen; the diagonal readout Fisher on 10 inputs; the 25 cumulative cutoffs
# with resampling from N(0,1)), float64, the same data and initial parameters, the same number of
# epochs, the same thread count.
#
#   bench/fisher/brg_run.sh [members=100 epochs=20]
# Environment: NNFT_BIN (default build/nnft), THREADS (default 1), PYTHON (default /usr/bin/python3).
# The published protocol trains for 1000 epochs; the peer takes ~0.1-0.25 ms per SGD step, so
# 100 x 1000 x 200 steps would take hours: the default is epochs=20 for both programs. Both
# times are linear in the epochs (training dominates), so the script prints the training and the
# coarse-graining parts separately and scales the training part linearly to 1000 epochs.
# Checksum: the ensemble-mean test MSE of the trained members (Λ = 0) agrees to rounding (same
# networks, same data, same order of steps); the coarse-grained MSEs use each program's own draws.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
NNFT_BIN=${NNFT_BIN:-$root/build/nnft}
[ -x "$NNFT_BIN" ] || { echo "brg_run.sh: no nnft interpreter at $NNFT_BIN (set NNFT_BIN)" >&2; exit 1; }
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import torch' 2>/dev/null || { echo "brg_run.sh: $PY lacks torch (Debian: apt-get install python3-torch)" >&2; exit 1; }
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
BENCH_DIR=$(mktemp -d); export BENCH_DIR
trap 'rm -rf "$BENCH_DIR"' EXIT
has_epochs=0
for a in "$@"; do case $a in epochs=*) has_epochs=1 ;; esac; done
[ $has_epochs = 1 ] || set -- epochs=20 "$@"
a=$("$NNFT_BIN" "$here/brg_nnft.lua" threads="$THREADS" "$@")
echo "$a"
b=$("$PY" "$here/brg_torch.py" threads="$THREADS" "$@")
echo "$b"
ta=$(echo "$a" | sed 's/.*time \([0-9.]*\) s.*/\1/')
tb=$(echo "$b" | sed 's/.*time \([0-9.]*\) s.*/\1/')
ra=$(echo "$a" | sed 's/.*train \([0-9.]*\) s.*/\1/')
rb=$(echo "$b" | sed 's/.*train \([0-9.]*\) s.*/\1/')
ep=$(echo "$a" | sed 's/.*epochs=\([0-9]*\).*/\1/')
ca=$(echo "$a" | sed 's/.*mse(0) \([^ ]*\).*/\1/')
cb=$(echo "$b" | sed 's/.*mse(0) \([^ ]*\).*/\1/')
echo "$ta $tb $ep $ca $cb $ra $rb" | awk -v th="$THREADS" '{
  printf "threads=%s  epochs=%d  ratio torch/nnft = %.1f  (target >= 20)\n", th, $3, $2/$1;
  printf "training: nnft %.3f s, torch %.3f s (ratio %.1f); Fisher + 25 cutoffs + test MSEs: nnft %.3f s, torch %.3f s (ratio %.1f)\n",
         $6, $7, $7/$6, $1-$6, $2-$7, ($2-$7)/($1-$6);
  ea = ($1-$6) + 1000*$6/$3; eb = ($2-$7) + 1000*$7/$3;
  printf "at 1000 epochs (training scaled linearly): nnft %.0f s, torch %.0f s, ratio %.1f\n", ea, eb, eb/ea;
  d = $4 - $5; if (d < 0) d = -d;
  printf "checksum mse(0): nnft %s torch %s  relative difference %.1e\n", $4, $5, d/$4 }'
