-- bench/kernel/mercer_bench.lua: benchmark (c) — the top k = 100 Mercer eigenpairs of an
-- n = 4000 kernel matrix (RBF, ℓ = 1, on n points in d = 8), nnft.mercer_matrix(K, {k = 100})
-- (LAPACK dsyevr with an index range: only k eigenvectors), against numpy's eigh of the full
-- matrix in mercer_numpy.py. The kernel matrix is built outside the timed region in both.
-- Same inputs (splitmix64); checksum Σ λ_k + Σ |φ| (sign-independent). Run through mercer_run.sh.
local nnft = nnft or require "nnft"

local opt = { n = 4000, k = 100, d = 8, reps = 3, lengthscale = 1.0 }
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k or opt[k] == nil or not tonumber(v) then
    io.stderr:write("mercer_bench.lua: bad argument '", a, "' (keys: n, k, d, reps, lengthscale)\n")
    os.exit(2)
  end
  opt[k] = math.tointeger(tonumber(v)) or tonumber(v)
end

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

local X = generated(opt.n, opt.d, 1)
local K = nnft.kernel.rbf{ lengthscale = opt.lengthscale }:matrix(X)

local clock = nnft._io and nnft._io.clock or os.clock
local best, chk = math.huge, nil
for _ = 1, opt.reps do
  collectgarbage()
  collectgarbage()
  local t = clock()
  local modes = nnft.mercer_matrix(K, { k = opt.k })
  local dt = clock() - t
  chk = modes:values():sum() + modes:functions():abs():sum()
  modes:release()
  if dt < best then best = dt end
end
print(("nnft     top-%d Mercer modes n=%d: %.3f s  checksum %.12e  (blas %s)"):format(
  opt.k, opt.n, best, chk, nnft.sys.info().blas or "?"))
