"""bench/ensemble/ensemble_numpy.py: the numpy (and PyTorch) side of the ensemble benchmark
(bench/ensemble/run.sh runs it beside bench/ensemble/ensemble.lua, which does the same work in
nnft).

    python3 bench/ensemble/ensemble_numpy.py [lib=numpy|torch] [E=100000] [width=1000]
                                             [bags=10] [chunk=250] [threads=1] [reps=1]

The work, identical to nnft's: E independently initialised one-hidden-layer ReLU networks
f(x) = sum_i W1_i relu(W0_i x), W0 ~ N(0, sw^2/d), W1 ~ N(0, sw^2/N), sw = 1, no biases
(sigma_b = 0), d = 1, at the 6 inputs 0.2, 0.4, ..., 1.2; then the correlators
G_k(x_i1..x_ik) = mean over networks of prod_j f(x_ij) over all sorted index tuples for k = 2, 4, 6
(21 + 126 + 462 tuples), with 10 bags (the spread of the bag means gives the error bars).
Networks are processed in chunks of `chunk` (a divisor of the bag size), fully vectorised: the
parameters of a chunk are drawn in bulk, the hidden layer is one broadcast (chunk x N x 6) and
the readout one batched contraction; the tuple products are fancy-indexed column products.

Prints "RESULT <lib>_t<threads> <best seconds> <G2(1.2,1.2)> <its error>" and "INFO" lines.
"""
import gc
import itertools
import sys
import time

opt = dict(lib="numpy", E=100000, width=1000, bags=10, chunk=250, threads=1, reps=1)
for a in sys.argv[1:]:
    k, _, v = a.partition("=")
    if k not in opt or not v:
        sys.exit("ensemble_numpy.py: bad argument %r (keys: %s)" % (a, ", ".join(opt)))
    opt[k] = v if k == "lib" else int(float(v))

E, N, B, C = opt["E"], opt["width"], opt["bags"], opt["chunk"]
if E % B or (E // B) % C:
    sys.exit("ensemble_numpy.py: chunk must divide the bag size E/bags = %d" % (E // B))

import numpy as np

x = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2])
n, d, sw = len(x), 1, 1.0
orders = (2, 4, 6)
tuples = {k: np.array(list(itertools.combinations_with_replacement(range(n), k)))
          for k in orders}


def run_numpy(seed):
    rng = np.random.default_rng(seed)
    sums = {k: np.zeros((B, len(tuples[k]))) for k in orders}
    per_bag = E // B
    for b in range(B):
        for _ in range(per_bag // C):
            W0 = rng.standard_normal((C, N)) * (sw / np.sqrt(d))
            W1 = rng.standard_normal((C, N)) * (sw / np.sqrt(N))
            h = np.maximum(W0[:, :, None] * x[None, None, :], 0.0)     # C x N x n
            f = np.matmul(W1[:, None, :], h)[:, 0, :]                   # C x n
            for k in orders:
                T = tuples[k]
                p = f[:, T[:, 0]]
                for j in range(1, k):
                    p = p * f[:, T[:, j]]
                sums[k][b] += p.sum(axis=0)
    return {k: sums[k] / per_bag for k in orders}


def run_torch(seed):
    import torch
    torch.set_num_threads(opt["threads"])
    g = torch.Generator().manual_seed(seed)
    xt = torch.tensor(x, dtype=torch.float64)
    T = {k: torch.tensor(tuples[k]) for k in orders}
    sums = {k: torch.zeros((B, len(tuples[k])), dtype=torch.float64) for k in orders}
    per_bag = E // B
    with torch.no_grad():
        for b in range(B):
            for _ in range(per_bag // C):
                W0 = torch.randn((C, N), generator=g, dtype=torch.float64) * (sw / d ** 0.5)
                W1 = torch.randn((C, N), generator=g, dtype=torch.float64) * (sw / N ** 0.5)
                h = torch.relu(W0[:, :, None] * xt[None, None, :])      # C x N x n
                f = torch.bmm(W1[:, None, :], h)[:, 0, :]                 # C x n
                for k in orders:
                    p = f[:, T[k][:, 0]]
                    for j in range(1, k):
                        p = p * f[:, T[k][:, j]]
                    sums[k][b] += p.sum(dim=0)
    return {k: (sums[k] / per_bag).numpy() for k in orders}


if opt["lib"] == "torch":
    try:
        import torch
    except ImportError:
        print("SKIP torch_t%d torch is not installed (apt-get install python3-torch)"
              % opt["threads"])
        sys.exit(0)
    print("INFO torch %s, %d intra-op threads" % (torch.__version__, opt["threads"]))
    run = run_torch
else:
    print("INFO numpy %s" % np.__version__)
    run = run_numpy

best = None
for rep in range(opt["reps"]):
    gc.collect()
    t0 = time.perf_counter()
    G = run(42 + rep)
    t = time.perf_counter() - t0
    best = t if best is None else min(best, t)
bm = G[2][:, -1]  # G2(x6, x6) per bag
print("RESULT %s_t%d %.6f %.6f %.6f" % (opt["lib"], opt["threads"], best, bm.mean(),
                                        bm.std(ddof=1) / np.sqrt(B)))
