-- GP regression on real images: the handwritten digits (1797 images of 8 x 8 pixels, data/),
-- classification treated as regression as in [HJMR] (physics.md §5.1, §6): one-vs-rest targets
-- y_c = +1 for class c and −1 otherwise, one GP with 10 outputs (one Cholesky factor, ten
-- right-hand sides), and the predicted class the argmax of the 10 posterior means.
--
-- Test error against the training-set size for three kernels on the same splits:
--   NNGP  the infinite-width kernel of an MLP (act, depth, sigma_w, sigma_b from the arguments),
--   NTK   the neural tangent kernel of the same MLP (NTK parameterisation),
--   RBF   exp(−|x − x'|²/(2 ℓ²)) with ℓ = lengthscale.
-- Pixels are scaled to [0, 1]. Each size is repeated `reps` times on independent random splits
-- (one held-out test set per repetition); the error bars are the standard error over repetitions.
-- Writes error.csv (size, kernel, error, stderr), the figure error_vs_n.png/.svg (log-log; its data
-- and gnuplot script beside it) and the run manifest.
--
--   nnft examples/kernels/gp_digits.lua depth=3 lengthscale=2 noise=1e-2 out=out/gp_digits

local nnft = nnft or require "nnft"

local args = nnft.args{
  data = "data/digits.csv", -- p0..p63, label (see data/README.md)
  sizes = { 50, 100, 200, 400, 800, 1200 }, -- training-set sizes (+ test <= 1797)
  test = 500,                -- held-out points per repetition
  reps = 3,                  -- independent splits per size
  act = "relu",              -- MLP activation for the NNGP / NTK kernels
  depth = 2,                 -- hidden layers
  sigma_w = 1.4142135623730951,
  sigma_b = 0.1,
  lengthscale = 2.5,         -- RBF lengthscale (pixels in [0, 1], 64 of them)
  noise = 1e-2,              -- σ² added to K(X, X), in units of the targets ±1
  seed = 1,
  out = "out/gp_digits",
}
local function fail(msg) error("gp_digits: " .. msg, 0) end
if type(args.sizes) ~= "table" or #args.sizes == 0 then fail("sizes must be a list of sizes") end
if args.reps < 1 or args.test < 1 then fail("reps and test must be positive") end

-- ---- data ----
local D = nnft.io.read_csv(args.data, { mat = true })
local N = D:rows()
if D:cols() ~= 65 then fail(("%s has %d columns, expected 64 pixels and a label"):format(args.data, D:cols())) end
local maxn = 0
for _, n in ipairs(args.sizes) do maxn = math.max(maxn, n) end
if maxn + args.test > N then
  fail(("largest size %d plus test=%d exceeds the %d images"):format(maxn, args.test, N))
end
local pixels = D:block(1, 1, N, 64) / 16
local labels = {}
for i = 1, N do labels[i] = math.floor(D:get(i, 65) + 0.5) end

-- rows idx[first..last] of the pixels, and their one-vs-rest targets
local function take(idx, first, last)
  local n = last - first + 1
  local X = nnft.mat.fromfunction(n, 64, function(i, j) return pixels:get(idx[first + i - 1], j) end)
  local Y = nnft.mat.fromfunction(n, 10, function(i, c)
    return labels[idx[first + i - 1]] == c - 1 and 1 or -1
  end)
  return X, Y
end

local function error_rate(M, idx, first)
  local wrong = 0
  for i = 1, M:rows() do
    local best, arg = -math.huge, 0
    for c = 1, 10 do
      local v = M:get(i, c)
      if v > best then best, arg = v, c - 1 end
    end
    if arg ~= labels[idx[first + i - 1]] then wrong = wrong + 1 end
  end
  return wrong / M:rows()
end

-- ---- kernels ----
local arch = nnft.mlp{ d_in = 64, width = 512, depth = args.depth, act = args.act,
                       sigma_w = args.sigma_w, sigma_b = args.sigma_b, param = "ntk" }
local kernels = {
  { name = "NNGP", label = ("NNGP %s depth %d"):format(args.act, args.depth), k = arch:kernel() },
  { name = "NTK", label = ("NTK %s depth %d"):format(args.act, args.depth), k = arch:ntk_kernel() },
  { name = "RBF", label = ("RBF l=%g"):format(args.lengthscale),
    k = nnft.kernel.rbf{ lengthscale = args.lengthscale } },
}

-- ---- experiment ----
local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }
run:record_spec(arch) -- the manifest says which network produced the outputs
local rng = nnft.rng(args.seed)
local err = {}                     -- err[kernel][size index][rep]
for ki = 1, #kernels do err[ki] = {} end
local jitters = 0
for r = 1, args.reps do
  local idx = rng:stream(r):permutation(N)
  local Xt = take(idx, 1, args.test)
  for si, n in ipairs(args.sizes) do
    local X, Y = take(idx, args.test + 1, args.test + n)
    for ki, kk in ipairs(kernels) do
      local gp = nnft.gp.fit(kk.k, X, Y, { noise = args.noise })
      if gp:jitter() > 0 then jitters = jitters + 1 end
      err[ki][si] = err[ki][si] or {}
      err[ki][si][r] = error_rate(gp:predict(Xt), idx, 1)
    end
  end
end

-- ---- outputs ----
local cols = { size = {}, kernel = {}, error = {}, stderr = {} }
local series = {}
for ki, kk in ipairs(kernels) do
  local ys, es = {}, {}
  for si, n in ipairs(args.sizes) do
    local e, m, v = err[ki][si], 0, 0
    for r = 1, args.reps do m = m + e[r] / args.reps end
    for r = 1, args.reps do v = v + (e[r] - m) ^ 2 end
    local se = args.reps > 1 and math.sqrt(v / (args.reps - 1) / args.reps) or 0
    ys[si], es[si] = m, se
    local row = #cols.size + 1
    cols.size[row], cols.kernel[row], cols.error[row], cols.stderr[row] = n, kk.name, m, se
  end
  kk.mean = ys
  series[ki] = { x = args.sizes, y = ys, yerr = es, label = kk.label, style = "linespoints" }
end
nnft.io.write_csv(run:path("error.csv"), cols, { columns = { "size", "kernel", "error", "stderr" },
  meta = { test = args.test, reps = args.reps, noise = args.noise, depth = args.depth,
           act = args.act, lengthscale = args.lengthscale } })
nnft.plot.lines{ file = run:path("error_vs_n.png"), logx = true, logy = true,
  xlabel = "training set size n", ylabel = "test error (argmax of 10 GP means)",
  title = "GP regression on the digits, one-vs-rest targets", key = "top right", series = series }

print(("digits: %d images, test %d, %d repetition(s), noise %g%s"):format(N, args.test, args.reps,
  args.noise, jitters > 0 and (", jitter needed in %d fits"):format(jitters) or ""))
local head = { ("%-22s"):format("n") }
for _, n in ipairs(args.sizes) do head[#head + 1] = ("%7d"):format(n) end
print(table.concat(head, " "))
for _, kk in ipairs(kernels) do
  local line = { ("%-22s"):format(kk.label) }
  for si = 1, #args.sizes do line[#line + 1] = ("%6.1f%%"):format(100 * kk.mean[si]) end
  print(table.concat(line, " "))
end
run:finish()
