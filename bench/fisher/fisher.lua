-- bench/fisher/fisher.lua: Fisher spectrum of an MLP d-w-w-1 on n inputs through the Gram form
-- (nnft.fisher, form="gram": G = J Jᵀ layer by layer, eigenvalues of G/(n σ²)), the work that
-- bench/fisher/fisher_torch.py does with functorch (vmap + jacrev, then J Jᵀ and eigh).
-- Prints: best wall time, the top eigenvalue and the trace (checksums).
local nnft = nnft or require "nnft"
local args = nnft.args{ d = 64, width = 512, n = 1000, reps = 3, seed = 1, vectors = 0 }
local arch = nnft.mlp{ d_in = args.d, width = args.width, depth = 2, act = "tanh", sigma_b = 0.1 }
local net = arch:init{ seed = args.seed }
-- inputs: deterministic, identical in the peer (x_ij = sin(0.37 i + 0.11 j))
local X = nnft.mat.fromfunction(args.n, args.d, function(i, j) return math.sin(0.37 * i + 0.11 * j) end)
-- the same parameters for the peer: written once as .npy
local dir = os.getenv("BENCH_DIR") or "."
nnft.io.write_npy(dir .. "/theta.npy", net:params())
local core = require "nnft.core"
local wall = core._io.clock -- monotonic wall clock (seconds)
local best, lam = math.huge
for _ = 1, args.reps do
  local t0 = wall()
  local F = nnft.fisher(net, X, { form = "gram" })
  lam = F:eigen{ vectors = args.vectors > 0, count = args.vectors > 0 and args.vectors or nil }
  if args.vectors > 0 then lam = F:eigen{ vectors = false } end
  local t = wall() - t0
  if t < best then best = t end
  F:release()
end
local tr = 0
for i = 1, lam:rows() do tr = tr + lam:get(i, 1) end
print(string.format("nnft  P=%d n=%d  time %.3f s  top %.10e  trace %.10e", net:nparams(), args.n, best, lam:get(1, 1), tr))
