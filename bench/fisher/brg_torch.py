"""bench/fisher/brg_torch.py: the peer of brg_nnft.lua in PyTorch (float64), following the
published BRG-NNFT training loop (physics.md §7.5): for each member an nn.Sequential
2 -> 10 (identity) -> 10 (ReLU) -> 2000 (ReLU) -> 1 without biases, the first three layers
frozen (requires_grad False), torch.optim.SGD(lr=1e-6) on the readout, per-sample steps in fixed
order with batch 1 and loss nn.MSELoss on the single sample, i.e. (f - y)^2; then the diagonal
readout Fisher on the Fisher inputs, I_i = (1/n_F) sum_a (df(x_a)/dw_i)^2 from one backward pass
per Fisher input; the 25 cumulative cutoffs with the sloppy weights {I_i < Lambda} resampled
from N(0, 1) (one draw per weight, kept once sloppy); the test MSE of every coarse-grained
member. Members with pre-RG test MSE >= 1e3 or NaN are dropped.

Same data and initial parameters as brg_nnft.lua (read from $BENCH_DIR/*.npy, written there by
brg_nnft.lua, not timed); nnft's parameter layout is per layer W (fan_out x fan_in) column-major.
Prints one line in the format of brg_nnft.lua."""
import os, sys, time
import numpy as np
import torch
from torch import nn

args = dict(members=100, epochs=1000, width=2000, n_train=200, n_test=200, fisher_inputs=10,
            lr=1e-6, threads=1, seed=1, mse_max=1e3)
for a in sys.argv[1:]:
    k, v = a.split("=", 1)
    if k not in args:
        raise SystemExit("brg_torch.py: unknown argument " + k)
    args[k] = type(args[k])(float(v)) if isinstance(args[k], (int, float)) else v
torch.set_default_dtype(torch.float64)
torch.set_num_threads(int(args["threads"]))
d = os.environ.get("BENCH_DIR", ".")
load = lambda name: torch.tensor(np.load(os.path.join(d, name + ".npy")))
Xtr, ytr, Xte, yte, Xf = (load(n) for n in ("Xtr", "ytr", "Xte", "yte", "Xf"))
theta0 = np.load(os.path.join(d, "theta0.npy"))          # P x members
W = int(args["width"])
shapes = [(10, 2), (10, 10), (W, 10), (1, W)]
assert theta0.shape[0] == sum(a * b for a, b in shapes)
members = min(int(args["members"]), theta0.shape[1])
cutoffs = [1e-4, 5e-3, 7.5e-3, 1e-2, 5e-2, 7.5e-2, 0.1, 0.5, 0.75, 1, 5, 7.5, 10, 50, 75,
           100, 500, 750, 1e3, 5e3, 7.5e3, 1e4, 5e4, 7.5e4, 1e5]
grid = [0.0] + cutoffs
gen = torch.Generator().manual_seed(int(args["seed"]))


def build(theta):
    model = nn.Sequential(nn.Linear(2, 10, bias=False), nn.Linear(10, 10, bias=False), nn.ReLU(),
                          nn.Linear(10, W, bias=False), nn.ReLU(), nn.Linear(W, 1, bias=False))
    off = 0
    for layer, (fo, fi) in zip([model[0], model[1], model[3], model[5]], shapes):
        w = theta[off:off + fo * fi].reshape(fi, fo).T      # column-major fan_out x fan_in
        off += fo * fi
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(np.ascontiguousarray(w)))
    for layer in (model[0], model[1], model[3]):
        layer.weight.requires_grad_(False)
    return model


def test_mse(model):
    with torch.no_grad():
        return float(((model(Xte) - yte) ** 2).mean())


t0 = time.perf_counter()
sums, kept, t_train = [0.0] * len(grid), 0, 0.0
for m in range(members):
    t1 = time.perf_counter()
    model = build(theta0[:, m])
    opt = torch.optim.SGD([model[5].weight], lr=args["lr"])
    crit = nn.MSELoss()
    for epoch in range(int(args["epochs"])):
        for i in range(Xtr.shape[0]):
            opt.zero_grad()
            loss = crit(model(Xtr[i:i + 1]), ytr[i:i + 1])
            loss.backward()
            opt.step()
    t_train += time.perf_counter() - t1
    pre = test_mse(model)
    if not (pre == pre) or pre >= args["mse_max"]:
        continue
    kept += 1
    # diagonal readout Fisher: per-sample gradients of f, squared, averaged (sigma_eps = 1)
    fdiag = torch.zeros(W)
    for a in range(Xf.shape[0]):
        model.zero_grad()
        model(Xf[a:a + 1]).sum().backward()
        fdiag += model[5].weight.grad.reshape(-1) ** 2
    fdiag /= Xf.shape[0]
    star = model[5].weight.detach().clone()
    draw = torch.randn(star.shape, generator=gen)
    sloppy = torch.zeros(star.shape, dtype=torch.bool)
    for j, lam in enumerate(grid):
        sloppy |= (fdiag < lam).reshape(star.shape)         # strict rule, cumulative
        with torch.no_grad():
            model[5].weight.copy_(torch.where(sloppy, draw, star))
        sums[j] += test_mse(model)
t = time.perf_counter() - t0
print("torch  members=%d epochs=%d  time %.3f s  train %.3f s  kept %d  mse(0) %.12e  mse(1e-4) %.6g  mse(1e5) %.6g"
      % (members, args["epochs"], t, t_train, kept, sums[0] / kept, sums[1] / kept, sums[-1] / kept))
