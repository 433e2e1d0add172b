-- bench/kernel/gp_bench.lua: benchmark (b) — GP regression with a fixed kernel: fit on n points
-- and predict the mean and standard deviation at m new points (RBF kernel, ℓ = 1, noise σ²),
-- the work of scikit-learn's GaussianProcessRegressor(optimizer=None).fit + predict(return_std=True)
-- in gp_sklearn.py. Same inputs in both (splitmix64), printed checksum
-- Σ mean + Σ sd + log p(y|X). Run through gp_run.sh (same thread count for both).
local nnft = nnft or require "nnft"

local opt = { n = 4000, m = 1000, d = 8, reps = 3, noise = 1e-2, lengthscale = 1.0 }
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k or opt[k] == nil or not tonumber(v) then
    io.stderr:write("gp_bench.lua: bad argument '", a, "' (keys: n, m, d, reps, noise, lengthscale)\n")
    os.exit(2)
  end
  opt[k] = math.tointeger(tonumber(v)) or tonumber(v)
end

-- splitmix64(seed-offset + k) mapped to [-0.5, 0.5), column-major, as in gp_sklearn.py
local function splitmix(k)
  local z = k * -7046029254386353131
  z = (z ~ (z >> 30)) * -4658895280553007687
  z = (z ~ (z >> 27)) * -7723592293110705685
  z = z ~ (z >> 31)
  return (z >> 11) * 2.0 ^ -53 - 0.5
end
local function generated(rows, cols, seed)
  local base = seed * 1000003 * 1000003
  return nnft.mat.fromfunction(rows, cols, function(i, j)
    return splitmix(base + (j - 1) * rows + (i - 1) + 1)
  end)
end

local X, Xs = generated(opt.n, opt.d, 1), generated(opt.m, opt.d, 2)
-- a smooth target plus noise
local y = nnft.mat.fromfunction(opt.n, 1, function(i)
  return math.sin(3 * X:get(i, 1)) + X:get(i, 2) * X:get(i, 3) + 0.1 * splitmix(7 * 1000003 + i)
end)
local kern = nnft.kernel.rbf{ lengthscale = opt.lengthscale }

local clock = nnft._io and nnft._io.clock or os.clock
local best, chk = math.huge, nil
for _ = 1, opt.reps do
  collectgarbage()
  collectgarbage()
  local t = clock()
  local gp = nnft.gp.fit(kern, X, y, { noise = opt.noise })
  local mean, var = gp:predict(Xs, { var = true })
  local sd = var:sqrt()
  local dt = clock() - t
  chk = mean:sum() + sd:sum() + gp:logml()
  gp:release()
  if dt < best then best = dt end
end
print(("nnft     GP fit+predict n=%d m=%d d=%d: %.3f s  checksum %.12e  (blas %s)"):format(
  opt.n, opt.m, opt.d, best, chk, nnft.sys.info().blas or "?"))
