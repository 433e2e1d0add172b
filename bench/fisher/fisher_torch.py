"""bench/fisher/fisher_torch.py: the peer of fisher.lua in PyTorch (float64): per-example
Jacobian with functorch (vmap + jacrev over the parameters), G = J Jᵀ, eigenvalues by
torch.linalg.eigvalsh of G/n. Same architecture (tanh MLP d-w-w-1, standard parameterisation:
parameters used as drawn), the same parameters (theta.npy written by fisher.lua) and inputs."""
import sys, time
import numpy as np
import torch
from functorch import vmap, jacrev

args = dict(d=64, width=512, n=1000, reps=3)
for a in sys.argv[1:]:
    k, v = a.split("=")
    args[k] = int(v)
d, w, n = args["d"], args["width"], args["n"]
torch.set_default_dtype(torch.float64)
theta = np.load((sys.argv and __import__("os").environ.get("BENCH_DIR", ".")) + "/theta.npy").reshape(-1)
# nnft layout: per layer W (fan_out x fan_in, column-major) then b
shapes = [(w, d), (w, w), (1, w)]
params, off = [], 0
for fo, fi in shapes:
    W = theta[off:off + fo * fi].reshape(fi, fo).T.copy(); off += fo * fi
    b = theta[off:off + fo].copy(); off += fo
    params += [torch.tensor(W), torch.tensor(b)]
assert off == theta.size
i = np.arange(1, n + 1)[:, None]; j = np.arange(1, d + 1)[None, :]
X = torch.tensor(np.sin(0.37 * i + 0.11 * j))

def f(ps, x):
    W1, b1, W2, b2, W3, b3 = ps
    h = torch.tanh(W1 @ x + b1)
    h = torch.tanh(W2 @ h + b2)
    return (W3 @ h + b3)[0]

best = float("inf")
for _ in range(args["reps"]):
    t0 = time.perf_counter()
    jac = vmap(jacrev(f), in_dims=(None, 0))(tuple(params), X)
    J = torch.cat([g.reshape(n, -1) for g in jac], dim=1)
    G = J @ J.T
    lam = torch.linalg.eigvalsh(G / n).flip(0)
    t = time.perf_counter() - t0
    best = min(best, t)
    del jac, J, G
P = sum(p.numel() for p in params)
print("torch P=%d n=%d  time %.3f s  top %.10e  trace %.10e" % (P, n, best, lam[0].item(), lam.sum().item()))
