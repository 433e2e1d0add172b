"""bench/kernel/gp_sklearn.py: the scikit-learn peer of gp_bench.lua (same inputs, same work).

GaussianProcessRegressor(kernel=RBF(1.0), alpha=noise, optimizer=None): fit, then
predict(Xs, return_std=True). Note that fit() with optimizer=None still evaluates the log
marginal likelihood (a kernel matrix and a Cholesky factorisation) before building its own
factor, so it does two factorisations; a direct scipy version of the same work (one factor)
is timed as well for reference and printed on a second line.
"""
import gc
import sys
import time

import numpy as np
import scipy.linalg as sla
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF

opt = dict(n=4000, m=1000, d=8, reps=3, noise=1e-2, lengthscale=1.0)
for a in sys.argv[1:]:
    k, _, v = a.partition("=")
    opt[k] = type(opt[k])(float(v)) if k in opt else sys.exit("gp_sklearn.py: bad argument " + a)


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


n, m, d = int(opt["n"]), int(opt["m"]), int(opt["d"])
X, Xs = generated(n, d, 1), generated(m, d, 2)
y = np.sin(3 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * splitmix(
    np.uint64(7 * 1000003) + np.arange(1, n + 1, dtype=np.uint64))


def sklearn_work():
    gpr = GaussianProcessRegressor(kernel=RBF(opt["lengthscale"]), alpha=opt["noise"],
                                   optimizer=None)
    gpr.fit(X, y)
    mean, sd = gpr.predict(Xs, return_std=True)
    return mean.sum() + sd.sum() + gpr.log_marginal_likelihood_value_


def scipy_work():
    kern = RBF(opt["lengthscale"])
    K = kern(X)
    K[np.diag_indices_from(K)] += opt["noise"]
    L = sla.cholesky(K, lower=True, check_finite=False)
    alpha = sla.cho_solve((L, True), y, check_finite=False)
    Ks = kern(Xs, X)
    mean = Ks @ alpha
    V = sla.solve_triangular(L, Ks.T, lower=True, check_finite=False)
    var = np.maximum(1.0 - np.einsum("ij,ij->j", V, V), 0)
    lml = -0.5 * y @ alpha - np.log(np.diag(L)).sum() - 0.5 * n * np.log(2 * np.pi)
    return mean.sum() + np.sqrt(var).sum() + lml


def best_of(f):
    best, chk = float("inf"), None
    for _ in range(int(opt["reps"])):
        gc.collect()
        t = time.perf_counter()
        chk = f()
        best = min(best, time.perf_counter() - t)
    return best, chk


try:
    from threadpoolctl import threadpool_info
    blas = ", ".join("%s %s" % (i.get("internal_api"), i.get("architecture")) for i in threadpool_info())
except Exception:
    blas = "numpy " + np.__version__
t, c = best_of(sklearn_work)
print("sklearn  GP fit+predict n=%d m=%d d=%d: %.3f s  checksum %.12e  (%s)" % (n, m, d, t, c, blas))
t, c = best_of(scipy_work)
print("scipy    GP fit+predict n=%d m=%d d=%d: %.3f s  checksum %.12e  (one factor, reference)" % (n, m, d, t, c))
