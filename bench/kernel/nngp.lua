-- bench/kernel/nngp.lua: nnft's side of benchmark (a) — the NNGP kernel matrix K(X, X) of an
-- MLP of depth `depth` (d_in = d, σ_w, σ_b) at n points, for relu and erf (closed forms) and gelu
-- (2-D Gauss–Hermite quadrature with `quad` nodes per dimension, at n_gelu points).
-- bench/kernel/nngp_numpy.py does the same recursion in numpy with the same nodes.
--
--   nnft bench/kernel/nngp.lua [n=3000] [n_gelu=1000] [d=64] [depth=5] [quad=16] [reps=3]
--                              [sigma_w=1.5] [sigma_b=0.1]
--
-- Prints "RESULT <case> <best seconds> <checksum>" per case (checksum: the sum of K's entries)
-- and "INFO ..." lines. Inputs: splitmix64 on integers mapped to [-0.5, 0.5) times sqrt(12)
-- (unit variance entries), generated bit-identically in both programs.
local nnft = nnft or require "nnft"

local opt = { n = 3000, n_gelu = 1000, d = 64, depth = 5, quad = 16, reps = 3, sigma_w = 1.5,
              sigma_b = 0.1 }
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k or opt[k] == nil or not tonumber(v) then
    io.stderr:write("nngp.lua: bad argument '", a, "' (keys: n, n_gelu, d, depth, quad, reps, ",
                    "sigma_w, sigma_b)\n")
    os.exit(2)
  end
  opt[k] = math.tointeger(tonumber(v)) or tonumber(v)
end

local clock = nnft._io and nnft._io.clock or os.clock

local function splitmix(k)
  local z = k * -7046029254386353131 -- 0x9E3779B97F4A7C15
  z = (z ~ (z >> 30)) * -4658895280553007687 -- 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * -7723592293110705685 -- 0x94D049BB133111EB
  z = z ~ (z >> 31)
  return (z >> 11) * 2.0 ^ -53 - 0.5
end

local function generated(rows, cols, seed)
  local base = seed * 1000003 * 1000003
  local s12 = math.sqrt(12)
  return nnft.mat.fromfunction(rows, cols, function(i, j)
    return s12 * splitmix(base + (j - 1) * rows + (i - 1) + 1)
  end)
end

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

print(("INFO nnft threads=%s"):format(os.getenv("OMP_NUM_THREADS") or "default"))
for _, act in ipairs{ "relu", "erf", "gelu" } do
  local n = act == "gelu" and opt.n_gelu or opt.n
  local X = generated(n, opt.d, 1)
  local arch = nnft.mlp{ d_in = opt.d, width = 1, depth = opt.depth, act = act,
                         sigma_w = opt.sigma_w, sigma_b = opt.sigma_b }
  local k = arch:kernel{ quad_order = opt.quad }
  local case = ("nngp_%s_n%d_L%d%s"):format(act, n, opt.depth, act == "gelu" and "_q" .. opt.quad or "")
  local t, sum = best_of(opt.reps, function()
    local K = k:matrix(X)
    return K:sum()
  end)
  print(("RESULT %s %.6f %.12e"):format(case, t, sum))
  io.stdout:flush()
end
