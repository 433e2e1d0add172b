"""bench/wilsonian/peer.py: the numpy/scipy peer of bench.lua (same inputs, same work)."""
import sys, time
import numpy as np
import scipy.linalg as sla

args = dict(data="data/digits.csv", n=1000, test=500, noise=1e-2, reps=3)
for a in sys.argv[1:]:
    k, v = a.split("=", 1)
    args[k] = type(args[k])(v) if not isinstance(args[k], str) else v
n, T, s2 = args["n"], args["test"], args["noise"]
N = n + T
with open(args["data"]) as f:  # skip the "#" metadata lines, then the column-name line
    rows = [l for l in f if not l.startswith("#")][1:]
raw = np.loadtxt(rows, delimiter=",")[:N]
X = raw[:, :64] / 16.0
y = np.where(raw[:, 64] % 2 == 0, 1.0, -1.0)[:, None]
kappas = [2, 5, 10, 20, 50, 100, 200, 300, 400, 600]
sizes = [25, 50, 100, 200, 400, 700, 1000]
sw2, sb2 = 2.0, 0.01


def nngp_relu(X, depth=2):
    K = sb2 + sw2 * (X @ X.T) / X.shape[1]
    for _ in range(depth):
        d = np.sqrt(np.diag(K))
        c = np.clip(K / np.outer(d, d), -1, 1)
        th = np.arccos(c)
        K = sb2 + sw2 / (2 * np.pi) * np.outer(d, d) * (np.sin(th) + (np.pi - th) * np.cos(th))
    return K


def stop(lam, s2, eta):
    tail = np.concatenate([np.cumsum(lam[::-1])[::-1][1:], [0.0]])
    ok = np.nonzero(eta * lam >= s2 + tail)[0]
    return ok[-1] + 1 if ok.size else 0


def work():
    K = nngp_relu(X)
    Ktr, Kst = K[:n, :n], K[n:, :n]
    ytr = y[:n]
    lam, U = sla.eigh(Ktr / n, driver="evr")
    lam, U = lam[::-1], U[:, ::-1]
    phi = U * np.sqrt(n)
    inv = np.where(lam > 1e-13 * lam[0], 1 / (n * np.where(lam > 0, lam, 1)), 0)
    phis = (Kst @ phi) * inv[None, :]
    lamc = np.maximum(lam, 0)
    yk = phi.T @ ytr[:, 0] / n
    tail = np.concatenate([np.cumsum(lamc[::-1])[::-1][1:], [0.0]])
    ridge = s2 + tail
    stops = [stop(lamc, s2, e) for e in (10, 100, 1000, 1e4, 1e5)]
    acc = np.cumsum((lamc[None, :] * phi ** 2)[:, ::-1], axis=1)[:, ::-1]
    lr = s2 + np.concatenate([acc[:, 1:], np.zeros((n, 1))], axis=1)
    C = np.zeros((n, len(kappas)))
    for j, k in enumerate(kappas):
        C[:k, j] = lamc[:k] * yk[:k] / (lamc[:k] + ridge[k - 1] / n)
    red = phis @ C
    c = phi - phi.mean(0)
    m2, m4 = (c ** 2).mean(0), (c ** 4).mean(0)
    kurt = m4 / m2 ** 2 - 3
    mse = []
    for s in sizes:
        a = sla.solve(K[:s, :s] + s2 * np.eye(s), y[:s], assume_a="pos")
        r = K[N - T:, :s] @ a - y[N - T:]
        mse.append((r ** 2).mean())
    return ridge.sum() + sum(stops) + lr.sum() / n + red.sum() + kurt.sum() + sum(mse)


best = float("inf")
for _ in range(args["reps"]):
    t = time.perf_counter()
    chk = work()
    best = min(best, time.perf_counter() - t)
print("numpy digits wilsonian analysis n=%d test=%d: %.3f s  checksum %.10e" % (n, T, best, chk))
