-- bench/mat/mat.lua: nnft's side of the nnft.mat benchmark (bench/mat/run.sh runs it beside
-- bench/mat/mat_numpy.py, which does the same work in numpy).
--
--   nnft bench/mat/mat.lua [reps=5] [loop_reps=3] [n_mm=2000] [n_chol=2000] [n_eig=1000]
--                          [n_loop=1000000]
--
-- Prints one line per case: "RESULT <case> <best seconds> <checksum>", best of `reps` wall-clock
-- timings (`loop_reps` for the scripting-loop cases). Inputs are generated bit-identically in
-- both programs (splitmix64 on integers), so the checksums agree up to floating-point rounding.
-- Cases whose nnft function is missing print "SKIP <case> <reason>".
local nnft = require "nnft"
local M = nnft.mat

local opt = { reps = 5, loop_reps = 3, n_mm = 2000, n_chol = 2000, n_eig = 1000, n_loop = 1000000 }
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k or opt[k] == nil or not tonumber(v) then
    io.stderr:write("mat.lua: bad argument '", a, "' (expected key=number with key one of ",
      "reps, loop_reps, n_mm, n_chol, n_eig, n_loop)\n")
    os.exit(2)
  end
  opt[k] = math.tointeger(tonumber(v)) or tonumber(v)
end

-- A monotonic wall clock (BLAS may run threads, so CPU time would overcount).
local clock = nnft._io and nnft._io.clock
if not clock then
  io.stderr:write("mat.lua: no wall clock in this nnft; falling back to os.clock (CPU time)\n")
  clock = os.clock
end

-- Entry k (0-based, column-major) of a generated matrix: splitmix64(seed + k) mapped to
-- [-0.5, 0.5) with 53 bits. Lua integers wrap like uint64 and >> is logical, as in numpy.
local function splitmix(k)
  local z = k * -7046029254386353131 -- 0x9E3779B97F4A7C15
  z = (z ~ (z >> 30)) * -4658895280553007687 -- 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * -7723592293110705685 -- 0x94D049BB133111EB
  z = z ~ (z >> 31)
  return (z >> 11) * 2.0 ^ -53 - 0.5
end

local function generated(rows, cols, seed)
  local base = seed * 1000003 * 1000003
  return M.fromfunction(rows, cols, function(i, j)
    return splitmix(base + (j - 1) * rows + (i - 1) + 1)
  end)
end

-- Symmetric positive definite: XᵀX/n + I (eigenvalues in [1, ~1.34]... well conditioned).
local function spd(n, seed)
  local X = generated(n, n, seed)
  return X:ata() * (1 / n) + M.eye(n)
end

-- Best wall time of `reps` runs of f(); returns it and f's last checksum.
local function best_of(reps, f)
  local best, sum = math.huge, nil
  for _ = 1, reps do
    collectgarbage()
    collectgarbage()
    local t0 = clock()
    sum = f()
    local dt = clock() - t0
    if dt < best then best = dt end
  end
  return best, sum
end

local function report(case, t, sum)
  print(("RESULT %s %.6f %.12e"):format(case, t, sum))
  io.stdout:flush()
end

-- 1. n x n matrix product (BLAS dgemm).
do
  local n = opt.n_mm
  local A, B = generated(n, n, 1), generated(n, n, 2)
  local C
  local t = best_of(opt.reps, function() C = A * B; return 0 end)
  report("matmul_" .. n, t, C:sum())
end

-- 2. Cholesky of an n x n SPD matrix (LAPACK dpotrf).
if nnft.linalg and nnft.linalg.chol then
  local n = opt.n_chol
  local S = spd(n, 3)
  local L
  local t = best_of(opt.reps, function() L = nnft.linalg.chol(S); return 0 end)
  report("chol_" .. n, t, L:sum())
else
  print("SKIP chol_" .. opt.n_chol .. " nnft.linalg.chol is not available")
end

-- 3. Eigendecomposition (values and vectors) of an n x n symmetric matrix.
if nnft.linalg and nnft.linalg.eigh then
  local n = opt.n_eig
  local S = spd(n, 4)
  local w
  local t = best_of(opt.reps, function() w = nnft.linalg.eigh(S); return 0 end)
  report("eigh_" .. n, t, w:sum())
else
  print("SKIP eigh_" .. opt.n_eig .. " nnft.linalg.eigh is not available")
end

-- 4. A scripting-language loop of n_loop elementwise updates through get/set on a 100 x 100
--    matrix: A(i, j) = A(i, j) / 2 + 1, visiting the elements in column-major order.
do
  local N = opt.n_loop
  local A
  local t, sum = best_of(opt.loop_reps, function()
    A = M.zeros(100, 100)
    local get, set = A.get, A.set
    for k = 0, N - 1 do
      local i, j = k % 100 + 1, (k // 100) % 100 + 1
      set(A, i, j, get(A, i, j) * 0.5 + 1)
    end
    return A:sum()
  end)
  report("loop_getset_" .. N, t, sum)
end

-- 5. A scripting-language loop of n_loop small matrix products: X = R X with R a 3 x 3
--    rotation and X 3 x 3 (one new matrix per iteration, as numpy's R @ X).
do
  local N = opt.n_loop
  local c, s = math.cos(0.1), math.sin(0.1)
  local R = M{{c, -s, 0}, {s, c, 0}, {0, 0, 1}}
  local t, sum = best_of(opt.loop_reps, function()
    local X = M.eye(3)
    for _ = 1, N do X = R * X end
    return X:sum()
  end)
  report("loop_3x3_matmul_" .. N, t, sum)
end
