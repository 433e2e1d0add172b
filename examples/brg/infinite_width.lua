-- The Bayesian RG at infinite width (physics.md §7.3; [HKMS] arXiv:2405.17538): for a readout on
-- infinitely many frozen random features the non-zero readout-Fisher eigenvalues are
-- λ_n = (T/σ_ε²) κ_n, with κ_n the Mercer eigenvalues of the NNGP kernel on the data measure
-- (κ_n = eig(K(X,X))/n), so the information-shell coarse graining is a truncation of the kernel
-- spectrum: the kept modes are κ_n ≥ Λσ_ε²/T, and the renormalised Gaussian action has
--
--   μ_Λ(x)     = Σ_kept  κ_n/(κ_n + σ_ε²/T) y_n e_n(x)
--   Σ_Λ(x,x')  = Σ_kept  κ_n σ_ε²/(σ_ε² + T κ_n) e_n(x) e_n(x')  +  Σ_reset κ_n e_n(x) e_n(x')
--
-- (the second sum: sloppy modes reset to their prior; "drop" omits it, a flat sloppy prior).
--
-- Data: the handwritten digits (data/digits.csv, pixels / 16), a random subset of n training
-- points (the data measure and the Fisher inputs) and n_test held-out points. Targets: one-vs-rest
-- ±1 for the ten classes (ten outputs; the MSE is averaged over points and outputs, the error is
-- the argmax class). With T = n (the default) μ_0 is exactly the GP posterior mean with noise
-- σ_ε² (checked against nnft.gp.fit); for T ≠ n it is the GP with noise n σ_ε²/T on the n points.
-- Modes are extended to the held-out points by Nyström (docs/api/mercer.md). Σ_Λ is reported by its
-- mean diagonal on the held-out points; the part of K(x,x) outside the span of the n modes (the
-- Nyström residual, the same at every Λ) is reported separately.
--
-- Finite width, for comparison: the same architecture (NTK parameterisation, so the readout
-- Jacobian is [σ_w h/√N, σ_b] and J Jᵀ = K_emp, the empirical NNGP kernel) with hidden width N,
-- the hidden layers frozen, the readout solved in closed form (the posterior mean
-- θ = Jᵀ(J Jᵀ + nσ_ε²/T)⁻¹ Y, i.e. trained to convergence with the Gaussian prior of its
-- initialisation). Its readout Fisher nnft.fisher(net, X, {form="gram"}) has eigenvalues
-- eig(K_emp)/(n σ_ε²); T times them is compared with (T/σ_ε²) κ_n on one plot, and the same
-- eigen-shell truncation (kept: T·λ_F ≥ Λ) gives the finite network's μ_Λ.
--
-- Outputs under out=: brg.csv (Λ, kept modes, test MSE, test error, mean posterior variance for
-- reset and drop, for the kernel and for the finite net), spectrum.csv (mode, κ_n, (T/σ_ε²) κ_n,
-- T·λ_F of the finite net), mse.png, kept.png, spectrum.png (+ .svg, .csv, .gp), manifest.json.
--
--   nnft examples/brg/infinite_width.lua                         -- relu, depth 3, n = 500: ~30 s
--   nnft examples/brg/infinite_width.lua act=erf depth=5 width=4000
--   nnft examples/brg/infinite_width.lua T=5000 sigma_eps=0.3

local nnft = nnft or require "nnft"

local args = nnft.args{
  data = "data/digits.csv", -- p0..p63, label (data/README.md)
  act = "relu",             -- hidden activation (any nnft.mlp activation with a kernel)
  depth = 3,                -- hidden layers
  sigma_w = 1.4142135623730951,
  sigma_b = 0.1,
  n = 500,                  -- training points = data measure = Fisher inputs
  n_test = 500,             -- held-out points
  width = 2000,             -- hidden width N of the finite random-feature network (0: skip it)
  sigma_eps = 0.1,          -- noise σ_ε of the Gaussian likelihood (targets are ±1)
  T = 0,                    -- number of data in the likelihood (0: T = n)
  per_decade = 4,           -- Λ grid points per decade
  seed = 1,
  plot = true,
  out = "out/infinite_width",
}
local function fail(msg) error("infinite_width: " .. msg, 0) end
local n, nte, N = args.n, args.n_test, args.width
local T = args.T > 0 and args.T or n
local s2 = args.sigma_eps ^ 2
if n < 2 or nte < 1 or N < 0 or args.depth < 1 or args.sigma_eps <= 0 or args.per_decade < 1 then
  fail("need n >= 2, n_test >= 1, width >= 0, depth >= 1, sigma_eps > 0, per_decade >= 1")
end
local core = require "nnft.core"
local wall = core._io.clock
local t_start = wall()

-- ---- data ----
local D = nnft.io.read_csv(args.data, { mat = true })
local ND = D:rows()
if D:cols() ~= 65 then fail(("%s has %d columns, expected 64 pixels and a label"):format(args.data, D:cols())) end
if n + nte > ND then fail(("n + n_test = %d exceeds the %d images"):format(n + nte, ND)) end
local idx = nnft.rng(args.seed):stream(1):permutation(ND)
local function take(first, count)
  local X = nnft.mat.fromfunction(count, 64, function(i, j) return D:get(idx[first + i - 1], j) / 16 end)
  local lab, Y = {}, nnft.mat.fromfunction(count, 10, function(i, c)
    return math.floor(D:get(idx[first + i - 1], 65) + 0.5) == c - 1 and 1 or -1
  end)
  for i = 1, count do lab[i] = math.floor(D:get(idx[first + i - 1], 65) + 0.5) end
  return X, Y, lab
end
local Xte, Yte, labte = take(1, nte)
local X, Y = take(nte + 1, n)

local function mse(M) return (M - Yte):square():mean() end
local function class_error(M)
  local wrong = 0
  for i = 1, M:rows() do
    local best, arg = -math.huge, 0
    for c = 1, 10 do
      local v = M:get(i, c)
      if v > best then best, arg = v, c - 1 end
    end
    if arg ~= labte[i] then wrong = wrong + 1 end
  end
  return wrong / M:rows()
end

-- ---- architecture: one spec for the kernel and the finite network ----
local frozen = {}
for l = 1, args.depth do frozen[l] = l end
local arch = nnft.mlp{ d_in = 64, width = math.max(N, 1), depth = args.depth, act = args.act,
                       sigma_w = args.sigma_w, sigma_b = args.sigma_b, param = "ntk", frozen = frozen }
local kern = arch:kernel()

-- ---- BRG of a set of modes: kept counts, μ_Λ, Σ_Λ on the held-out points (nnft.brg.infinite_width) ----
-- E: the modes extended to the held-out points (nte x m).
local function brg_curve(modes, E, grid)
  local o = { T = T, sigma = args.sigma_eps, cutoffs = grid, phi_at = E }
  local reset = nnft.brg.infinite_width(modes, Y, o)
  o.reset = "drop"
  local drop = nnft.brg.infinite_width(modes, Y, o)
  local res = { kept = {}, mse = {}, err = {}, var_reset = {}, var_drop = {} }
  for j in ipairs(grid) do
    local r = reset[j]
    res.kept[j], res.mse[j], res.err[j] = r.kept, mse(r.mean_at), class_error(r.mean_at)
    res.var_reset[j], res.var_drop[j] = r.var_at:mean(), drop[j].var_at:mean()
  end
  return res
end

-- ---- infinite width: Mercer modes of the NNGP kernel on the data measure ----
local t0 = wall()
local modes = kern:mercer(X)
local kap_m = modes:values()
local kappa = {}
for k = 1, n do kappa[k] = kap_m:get(k, 1) end
local Einf = modes:extend(Xte)
local kdiag = kern:diag(Xte)
local resid = (kdiag - Einf:emul(Einf) * kap_m):mean()   -- K(x,x) − Σ_n κ_n e_n(x)², averaged
local t_inf = wall() - t0

-- Λ grid: 0, then per_decade points per decade from below the smallest positive mode to above λ_1
local lam1 = T * kappa[1] / s2
if not (lam1 > 0) then fail("the kernel matrix has no positive eigenvalue") end
local lmin = lam1
for k = 1, n do
  local l = T * kappa[k] / s2
  if l > lam1 * 1e-13 and l < lmin then lmin = l end
end
local lo, hi = math.floor(math.log(lmin, 10)), math.ceil(math.log(lam1, 10) + 1e-9) + 1
local grid = { 0 }
for i = 0, (hi - lo) * args.per_decade do grid[#grid + 1] = 10 ^ (lo + i / args.per_decade) end

local inf = brg_curve(modes, Einf, grid)

-- cross-check: with T = n the Λ = 0 mean is the GP posterior mean with noise σ_ε²
local gp_check
if T == n then
  local gp = nnft.gp.fit(kern, X, Y, { noise = s2 })
  gp_check = mse(gp:predict(Xte))
  gp:release()
end

-- ---- finite width: random features, readout Fisher, closed-form readout ----
local fin, fisher_fin, readout_check, t_fin
if N > 0 then
  t0 = wall()
  local net = arch:init{ seed = args.seed }
  local F = nnft.fisher(net, X, { form = "gram", sigma = args.sigma_eps })
  local lamF = F:eigen{ vectors = false }
  fisher_fin = {}
  for k = 1, lamF:rows() do fisher_fin[k] = T * lamF:get(k, 1) end
  local G = F:gram()                       -- J Jᵀ = K_emp(X, X)
  F:release()
  local J = net:jacobian(X)                -- n x (N + 1): [σ_w h/√N, σ_b]
  local Jte = net:jacobian(Xte)
  local fmodes = nnft.mercer_matrix(G)
  local kf = fmodes:values()
  local kapf = {}
  for k = 1, kf:rows() do kapf[k] = kf:get(k, 1) end
  local Efin = fmodes:extend(Jte * J:t())
  fin = brg_curve(fmodes, Efin, grid)
  -- the readout trained to convergence (posterior mean) for the first class, put into the net
  local A = nnft.linalg.solve_spd(G + nnft.mat.eye(n) * (n * s2 / T), Y)
  local theta = J:t() * A:col(1)
  net:set_params(theta, { trainable = true })
  local Sfull = nnft.mat.fromfunction(#kapf, 1, function(k)
    local kk = kapf[k]
    return kk > 0 and kk / (kk + s2 / T) or 0
  end)
  local mu1 = Efin * fmodes:project(Y:col(1)):emul(Sfull)
  readout_check = (net:forward(Xte) - mu1):abs():max()
  t_fin = wall() - t0
end

-- ---- outputs ----
local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }
run:record_spec(arch) -- the manifest says which network produced the outputs
local cols = { lambda = grid, kept = inf.kept, mse = inf.mse, error = inf.err,
               var_reset = inf.var_reset, var_drop = inf.var_drop }
local names = { "lambda", "kept", "mse", "error", "var_reset", "var_drop" }
if fin then
  cols.kept_fin, cols.mse_fin, cols.error_fin = fin.kept, fin.mse, fin.err
  cols.var_reset_fin, cols.var_drop_fin = fin.var_reset, fin.var_drop
  for _, c in ipairs{ "kept_fin", "mse_fin", "error_fin", "var_reset_fin", "var_drop_fin" } do
    names[#names + 1] = c
  end
end
local meta = { arch = tostring(arch), n = n, n_test = nte, T = T, sigma_eps = args.sigma_eps,
               targets = "one-vs-rest +-1, ten outputs; mse averaged over points and outputs",
               kept = "kappa_n >= Lambda sigma_eps^2 / T", nystrom_residual = resid }
nnft.io.write_csv(run:path("brg.csv"), cols, { columns = names, meta = meta })
local sp = { mode = {}, kappa = {}, fisher_inf = {}, fisher_fin = {} }
for k = 1, n do
  sp.mode[k], sp.kappa[k], sp.fisher_inf[k] = k, kappa[k], T * kappa[k] / s2
  sp.fisher_fin[k] = fisher_fin and fisher_fin[k] or 0 / 0
end
nnft.io.write_csv(run:path("spectrum.csv"), sp, { columns = { "mode", "kappa", "fisher_inf", "fisher_fin" },
  meta = { note = "fisher_fin = T * eigenvalues of nnft.fisher(net, X, {form='gram'}); nan beyond its rank" } })

if args.plot then
  local ok, perr = pcall(function()
    local L0 = grid[2] / 10
    local function shifted(t)
      local xs, ys = {}, {}
      for j = 1, #grid do xs[j], ys[j] = j == 1 and L0 or grid[j], t[j] end
      return xs, ys
    end
    local xs, ys = shifted(inf.mse)
    local series = { { x = xs, y = ys, style = "linespoints", label = "NNGP kernel (infinite width)" } }
    if fin then
      local xf, yf = shifted(fin.mse)
      series[#series + 1] = { x = xf, y = yf, style = "linespoints", label = ("random features, N = %d"):format(N) }
    end
    nnft.plot.lines{ file = run:path("mse.png"), logx = true, xlabel = ("cutoff Λ (Λ = 0 drawn at %g)"):format(L0),
      ylabel = "test MSE of μ_Λ (one-vs-rest ±1)", key = "top left", series = series,
      title = ("BRG at infinite width: %s depth %d, n = T = %d, σ_ε = %g"):format(args.act, args.depth, n, args.sigma_eps) }
    local xk, yk = shifted(inf.kept)
    local ks = { { x = xk, y = yk, style = "linespoints", label = "NNGP modes kept (κ_n ≥ Λσ_ε²/T)" } }
    if fin then
      local xf, yf = shifted(fin.kept)
      ks[#ks + 1] = { x = xf, y = yf, style = "linespoints", label = ("finite net, Fisher eigen-shells (N = %d)"):format(N) }
    end
    nnft.plot.lines{ file = run:path("kept.png"), logx = true, xlabel = "cutoff Λ", ylabel = "kept modes",
      key = "top right", series = ks, title = "number of kept modes vs Λ" }
    local mx, my = {}, {}
    for k = 1, n do if kappa[k] > 0 then mx[#mx + 1], my[#my + 1] = k, T * kappa[k] / s2 end end
    local ss = { { x = mx, y = my, style = "lines", label = "(T/σ_ε²) κ_n, NNGP Mercer" } }
    if fisher_fin then
      local fx, fy = {}, {}
      for k, v in ipairs(fisher_fin) do fx[k], fy[k] = k, v end
      ss[#ss + 1] = { x = fx, y = fy, style = "points", label = ("T λ_n, readout Fisher of a net with N = %d"):format(N) }
    end
    nnft.plot.lines{ file = run:path("spectrum.png"), logx = true, logy = true, xlabel = "mode n",
      ylabel = "Fisher eigenvalue", key = "top right", series = ss,
      title = "readout Fisher spectrum vs the NNGP Mercer spectrum" }
  end)
  if not ok then print("  (plots skipped: " .. tostring(perr) .. ")") end
end
run:finish()

-- ---- summary ----
print(("infinite_width: %s, %d train / %d test digits, T = %d, σ_ε = %g; targets one-vs-rest ±1 (10 outputs)")
  :format(tostring(arch), n, nte, T, args.sigma_eps))
local k10, k100 = math.min(10, n), math.min(100, n)
print(("  NNGP Mercer modes: κ_1 = %.5g, κ_%d = %.4g, κ_%d = %.4g; λ_1 = (T/σ_ε²) κ_1 = %.5g; Nyström residual %.3g")
  :format(kappa[1], k10, kappa[k10], k100, kappa[k100], lam1, resid))
if gp_check then
  print(("  Λ = 0 test MSE %.6f = GP posterior mean (nnft.gp.fit) %.6f"):format(inf.mse[1], gp_check))
end
if fisher_fin then
  local parts = {}
  for _, k in ipairs{ 1, 2, 5, 10, 50 } do
    if k <= n and fisher_fin[k] then
      parts[#parts + 1] = ("n=%d: %.4g vs %.4g"):format(k, fisher_fin[k], T * kappa[k] / s2)
    end
  end
  print(("  finite net N = %d: T·λ_F vs (T/σ_ε²)κ_n  %s"):format(N, table.concat(parts, ", ")))
  print(("  closed-form readout in the net reproduces μ_0 (class 0) to %.2g"):format(readout_check))
end
print("          Λ   kept      MSE   error   var(reset)  var(drop)" .. (fin and "  | kept_N    MSE_N  error_N" or ""))
for j, L in ipairs(grid) do
  local line = ("  %9.3g  %5d  %7.4f  %5.1f%%  %10.4g  %9.4g"):format(L, inf.kept[j], inf.mse[j],
    100 * inf.err[j], inf.var_reset[j], inf.var_drop[j])
  if fin then line = line .. ("  | %6d  %7.4f  %5.1f%%"):format(fin.kept[j], fin.mse[j], 100 * fin.err[j]) end
  print(line)
end
print(("  kernel modes %.1f s%s, total %.1f s; outputs in %s"):format(t_inf,
  t_fin and (", finite net %.1f s"):format(t_fin) or "", wall() - t_start, args.out))
