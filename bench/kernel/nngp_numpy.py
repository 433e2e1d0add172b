"""bench/kernel/nngp_numpy.py: numpy's side of benchmark (a) (bench/kernel/nngp_run.sh runs it
beside bench/kernel/nngp.lua): the NNGP recursion of physics.md §2.1 vectorised over the n x n
matrix, the closed forms for relu and erf, and for gelu the 2-D Gauss-Hermite quadrature on the
Cholesky factor of each pair's covariance with the same nodes as nnft (the variable of smaller
variance first), in blocks of rows to bound memory.

    python3 bench/kernel/nngp_numpy.py [n=3000] [n_gelu=1000] [d=64] [depth=5] [quad=16] [reps=3]
                                       [sigma_w=1.5] [sigma_b=0.1]

Prints "RESULT <case> <best seconds> <checksum>" per case like nngp.lua, from the same inputs.
"""
import gc
import sys
import time

import numpy as np
from scipy.special import erfc

opt = dict(n=3000, n_gelu=1000, d=64, depth=5, quad=16, reps=3, sigma_w=1.5, sigma_b=0.1)
for a in sys.argv[1:]:
    k, _, v = a.partition("=")
    if k not in opt or not v:
        sys.exit("nngp_numpy.py: bad argument %r (keys: %s)" % (a, ", ".join(opt)))
    opt[k] = type(opt[k])(float(v)) if isinstance(opt[k], float) else int(float(v))


def splitmix(k):
    with np.errstate(over="ignore"):
        z = k * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 - 0.5


def generated(rows, cols, seed):
    base = np.uint64(seed * 1000003 * 1000003)
    k = np.arange(rows * cols, dtype=np.uint64) + base + np.uint64(1)
    return np.sqrt(12.0) * splitmix(k).reshape((rows, cols), order="F")


def gauss_hermite(q):
    """Probabilists' Gauss-Hermite: E[g(z)] ~ sum w g(z), z ~ N(0, 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(q)
    return z, w / np.sqrt(2.0 * np.pi)


def gelu(x):
    return 0.5 * x * erfc(-x / np.sqrt(2.0))


def v_relu(q1, q2, c):
    d = np.maximum(q1 * q2 - c * c, 0.0)
    sd = np.sqrt(d)
    th = np.arctan2(sd, c)
    return (sd + (np.pi - th) * c) / (2.0 * np.pi)


def v_erf(q1, q2, c):
    r = np.clip(2.0 * c / np.sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)), -1.0, 1.0)
    return (2.0 / np.pi) * np.arcsin(r)


def v_gelu(q1, q2, c, z, w, block=64):
    out = np.empty_like(c)
    for r0 in range(0, c.shape[0], block):
        a = np.broadcast_to(q1[r0:r0 + block], c[r0:r0 + block].shape)
        b = np.broadcast_to(q2, c[r0:r0 + block].shape)
        lo, hi = np.minimum(a, b), np.maximum(a, b)   # smaller variance first, as nnft
        cc = c[r0:r0 + block]
        l11 = np.sqrt(lo)
        l21 = np.where(l11 > 0, cc / np.where(l11 > 0, l11, 1.0), 0.0)
        l22 = np.sqrt(np.maximum(np.where(l11 > 0, hi - l21 * l21, hi), 0.0))
        acc = np.zeros_like(cc)
        for i in range(len(z)):
            v = l21[..., None] * z[i] + l22[..., None] * z   # (block, n, q)
            acc += w[i] * gelu(l11 * z[i]) * (gelu(v) @ w)
        out[r0:r0 + block] = acc
    return out


def nngp(X, act, depth, sw, sb, z, w):
    n, d = X.shape
    K = sb * sb + sw * sw * (X @ X.T) / d
    for _ in range(depth):
        q = np.diag(K).copy()
        q1, q2 = q[:, None], q[None, :]
        if act == "relu":
            V = v_relu(q1, q2, K)
        elif act == "erf":
            V = v_erf(q1, q2, K)
        else:
            V = v_gelu(q1, q2, K, z, w)
        K = sb * sb + sw * sw * V
    return K


def best_of(reps, f):
    best, out = float("inf"), None
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


z, w = gauss_hermite(opt["quad"])
print("INFO numpy %s" % np.__version__, flush=True)
for act in ("relu", "erf", "gelu"):
    n = opt["n_gelu"] if act == "gelu" else opt["n"]
    X = generated(n, opt["d"], 1)
    case = "nngp_%s_n%d_L%d%s" % (act, n, opt["depth"], "_q%d" % opt["quad"] if act == "gelu" else "")
    t, s = best_of(opt["reps"], lambda: nngp(X, act, opt["depth"], opt["sigma_w"], opt["sigma_b"],
                                              z, w).sum())
    print("RESULT %s %.6f %.12e" % (case, t, s), flush=True)
