-- bench/wilsonian/bench.lua: the digits Wilsonian analysis (docs/wilsonian.md) in nnft; the
-- peer is bench/wilsonian/peer.py (numpy/scipy). Same inputs (the first n + test images, in file
-- order), same work, printed checksums. Timed: kernel matrix, Mercer modes (nnft.mercer_matrix:
-- eigendecomposition of K/n), Nyström (Modes:extend), flow, stopping points, local ridge for
-- every κ, reduced GP for 10 cutoffs, Gaussianity, learning curve.
local nnft = nnft or require "nnft"
local args = nnft.args{ data = "data/digits.csv", n = 1000, test = 500, noise = 1e-2, reps = 3 }
local D = nnft.io.read_csv(args.data, { mat = true }) -- 64 pixels, then the label
local n, T = args.n, args.test
local N = n + T
local X, y = nnft.mat(N, 64), nnft.mat(N, 1)
for i = 1, N do
  for j = 1, 64 do X:set(i, j, D:get(i, j) / 16) end
  y:set(i, 1, D:get(i, 65) % 2 == 0 and 1 or -1)
end
local arch = nnft.mlp{ d_in = 64, width = 1, depth = 2, act = "relu", sigma_w = math.sqrt(2),
                       sigma_b = 0.1 }
local kappas = { 2, 5, 10, 20, 50, 100, 200, 300, 400, 600 }
local sizes = { 25, 50, 100, 200, 400, 700, 1000 }

local function work()
  local K = arch:kernel():matrix(X)
  local Ktr, Kst = K:block(1, 1, n, n), K:block(n + 1, 1, T, n)
  local ytr = y:block(1, 1, n, 1)
  -- Mercer modes of K/n from the kernel matrix already computed (the peer evaluates the kernel
  -- once too), Nyström extension to the test points
  local modes = nnft.mercer_matrix(Ktr)
  local phis = modes:extend(Kst)
  local flow = nnft.rg.wilson(modes, { noise = args.noise, y = ytr })
  local stops = nnft.rg.stop(modes, { noise = args.noise, n = { 10, 100, 1000, 1e4, 1e5 } })
  local lr = nnft.rg.local_ridge(modes, { noise = args.noise })
  local red = nnft.rg.reduced(modes, { noise = args.noise, y = ytr, kappa = kappas, phi = phis })
  local g = nnft.rg.gaussianity(modes)
  local lc = nnft.rg.learning_curve(K, y, { sizes = sizes, noise = args.noise, test = T })
  return flow.ridge:sum() + stops:sum() + lr:sum() / n + red:sum() + g.kurtosis:sum()
    + lc.mse:sum()
end

local clock = nnft._io and nnft._io.clock or os.clock -- monotonic wall clock
local best, chk = math.huge, nil
for _ = 1, args.reps do
  collectgarbage()
  local t = clock()
  chk = work()
  local dt = clock() - t
  if dt < best then best = dt end
end
print(("nnft  digits wilsonian analysis n=%d test=%d: %.3f s  checksum %.10e"):format(n, T, best, chk))
