"""bench/mat/mat_numpy.py: numpy's side of the nnft.mat benchmark (bench/mat/run.sh runs it
beside bench/mat/mat.lua, which does the same work in nnft).

    python3 bench/mat/mat_numpy.py [reps=5] [loop_reps=3] [n_mm=2000] [n_chol=2000] [n_eig=1000]
                                   [n_loop=1000000]

Prints "RESULT <case> <best seconds> <checksum>" per case, like mat.lua, from the same
bit-identical inputs (splitmix64 on uint64), and "INFO ..." lines naming the BLAS in use.
"""
import gc
import sys
import time

import numpy as np

opt = dict(reps=5, loop_reps=3, n_mm=2000, n_chol=2000, n_eig=1000, n_loop=1000000)
for a in sys.argv[1:]:
    k, _, v = a.partition("=")
    if k not in opt or not v:
        sys.exit("mat_numpy.py: bad argument %r (expected key=number, key one of %s)"
                 % (a, ", ".join(opt)))
    opt[k] = int(float(v))


def splitmix(k):
    """uint64 array k -> float64 in [-0.5, 0.5), the same as mat.lua's splitmix."""
    with np.errstate(over="ignore"):
        z = k * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 - 0.5


def generated(rows, cols, seed):
    base = np.uint64(seed * 1000003 * 1000003)
    k = np.arange(rows * cols, dtype=np.uint64) + base + np.uint64(1)  # column-major index + 1
    return np.asfortranarray(splitmix(k).reshape((rows, cols), order="F"))


def spd(n, seed):
    x = generated(n, n, seed)
    return x.T @ x * (1.0 / n) + np.eye(n)


def best_of(reps, f):
    best, out = float("inf"), None
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        out = f()
        dt = time.perf_counter() - t0
        best = min(best, dt)
    return best, out


def report(case, t, checksum):
    print("RESULT %s %.6f %.12e" % (case, t, checksum), flush=True)


try:
    import threadpoolctl
    for info in threadpoolctl.threadpool_info():
        print("INFO numpy %s %s %s kernel=%s threads=%s" % (
            info.get("internal_api"), info.get("version"), info.get("filepath"),
            info.get("architecture"), info.get("num_threads")))
except ImportError:
    print("INFO numpy %s (install python3-threadpoolctl to see its BLAS kernel)" % np.__version__)

# 1. matrix product
n = opt["n_mm"]
A, B = generated(n, n, 1), generated(n, n, 2)
t, C = best_of(opt["reps"], lambda: A @ B)
report("matmul_%d" % n, t, C.sum())

# 2. Cholesky
n = opt["n_chol"]
S = spd(n, 3)
t, L = best_of(opt["reps"], lambda: np.linalg.cholesky(S))
report("chol_%d" % n, t, L.sum())

# 3. symmetric eigendecomposition, values and vectors
n = opt["n_eig"]
S = spd(n, 4)
t, (w, V) = best_of(opt["reps"], lambda: np.linalg.eigh(S))
report("eigh_%d" % n, t, w.sum())

# 4. loop of element updates through indexing
N = opt["n_loop"]


def getset():
    a = np.zeros((100, 100))
    for k in range(N):
        i, j = k % 100, (k // 100) % 100
        a[i, j] = a[i, j] * 0.5 + 1
    return a.sum()


t, s = best_of(opt["loop_reps"], getset)
report("loop_getset_%d" % N, t, s)

# 5. loop of 3x3 products
c, s_ = np.cos(0.1), np.sin(0.1)
R = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])


def small():
    x = np.eye(3)
    for _ in range(N):
        x = R @ x
    return x.sum()


t, s = best_of(opt["loop_reps"], small)
report("loop_3x3_matmul_%d" % N, t, s)
