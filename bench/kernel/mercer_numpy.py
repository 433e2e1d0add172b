"""bench/kernel/mercer_numpy.py: the numpy peer of mercer_bench.lua — numpy.linalg.eigh of the
full n x n matrix K/n (LAPACK dsyevd: all n eigenpairs), then the top k, scaled as Mercer modes
(λ = eigenvalues of K/n, φ = √n U). A second line times scipy.linalg.eigh with
subset_by_index and driver="evr" (the algorithm nnft uses) for reference."""
import gc
import sys
import time

import numpy as np
import scipy.linalg as sla
from sklearn.gaussian_process.kernels import RBF

opt = dict(n=4000, k=100, d=8, reps=3, lengthscale=1.0)
for a in sys.argv[1:]:
    key, _, v = a.partition("=")
    opt[key] = type(opt[key])(float(v)) if key in opt else sys.exit("mercer_numpy.py: bad argument " + a)


def splitmix(k):
    with np.errstate(over="ignore"):
        z = k * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 - 0.5


def generated(rows, cols, seed):
    base = np.uint64(seed * 1000003 * 1000003)
    k = base + np.arange(1, rows * cols + 1, dtype=np.uint64)
    return splitmix(k).reshape(cols, rows).T.copy()


n, k, d = int(opt["n"]), int(opt["k"]), int(opt["d"])
X = generated(n, d, 1)
K = RBF(opt["lengthscale"])(X)


def numpy_work():
    w, U = np.linalg.eigh(K / n)
    lam, phi = w[::-1][:k], U[:, ::-1][:, :k] * np.sqrt(n)
    return lam.sum() + np.abs(phi).sum()


def scipy_work():
    w, U = sla.eigh(K / n, subset_by_index=(n - k, n - 1), driver="evr", check_finite=False)
    lam, phi = w[::-1], U[:, ::-1] * np.sqrt(n)
    return lam.sum() + np.abs(phi).sum()


def best_of(f):
    best, chk = float("inf"), None
    for _ in range(int(opt["reps"])):
        gc.collect()
        t = time.perf_counter()
        chk = f()
        best = min(best, time.perf_counter() - t)
    return best, chk


t, c = best_of(numpy_work)
print("numpy    top-%d Mercer modes n=%d: %.3f s  checksum %.12e  (full eigh, numpy %s)" % (k, n, t, c, np.__version__))
t, c = best_of(scipy_work)
print("scipy    top-%d Mercer modes n=%d: %.3f s  checksum %.12e  (dsyevr subset, reference)" % (k, n, t, c))
