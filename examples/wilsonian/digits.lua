-- Wilsonian RG of NNGP regression on real data [HJMR] (physics.md §6): the handwritten digits
-- (1797 images of 8 x 8 pixels), classification treated as regression (y = +1 for the digits in
-- `positive`, −1 otherwise), with the NNGP kernel of an MLP whose architecture is given as
-- arguments.
--
--   1. Mercer modes of the kernel on the training set (kernel:mercer: eigenvalues of K/n,
--      φ = √n U), Nyström extension to the test points (Modes:extend); power-law fit
--      λ_k ∝ k^−(1+α) over [kfit_min, kfit_max].
--   2. Mode analysis: learnability L_k = nλ_k/(σ² + nλ_k), target power y_k², EK prediction.
--   3. The ridge flow σ²(κ) = σ² + Σ_{k>κ} λ_k, its stopping point, and the spread over the
--      training points of the input-dependent ridge σ²(x; κ) = σ² + Σ_{k>κ} λ_k φ_k(x)².
--   4. Validation: the reduced GP (modes ≤ κ) with the renormalised ridge, with the bare ridge and
--      with the input-dependent ridge vs the full GP's test predictions, as a function of κ.
--   5. Gaussianity of low vs high modes (excess kurtosis, 3σ tail weight, joint histograms).
--   6. Learning curve: measured GP test MSE vs n, the EK prediction, and the exponent α/(1+α).
--
--   nnft examples/wilsonian/digits.lua n=1000 test=500 depth=2 act=relu noise=1e-2 out=out/wd
-- Outputs under out=: the data as CSV (modes, flow, stop, reduced, gaussianity, hist2d_*,
-- learning_curve) and each figure as <name>_fig.png/.svg with its own data and gnuplot script
-- (<name>_fig.csv, .gp: nnft.plot writes them beside the picture, so figures get their own stem).

local nnft = nnft or require "nnft"

local args = nnft.args{
  data = "data/digits.csv",    -- p0..p63, label (data/README.md)
  n = 1000,                    -- training points (the Mercer measure)
  test = 500,                  -- held-out points
  depth = 2,                   -- hidden layers of the MLP whose NNGP kernel is used
  act = "relu",
  sigma_w = 1.4142135623730951,
  sigma_b = 0.1,
  noise = 1e-2,                -- σ² (ridge)
  positive = { 0, 2, 4, 6, 8 }, -- digits with y = +1
  kfit_min = 5,
  kfit_max = 200,
  kappas = { 2, 5, 10, 20, 50, 100, 200, 300, 400, 600 }, -- cutoffs for the reduced GP
  eta = 250,                   -- training points (a sample of the n-point measure) for step 4
  sizes = { 25, 50, 100, 200, 400, 700, 1000 }, -- learning-curve training sizes (<= n)
  seed = 7,
  out = "out/wilsonian_digits",
}

local function fail(msg) error("digits: " .. msg, 0) end

-- ---- data ----
local D = nnft.io.read_csv(args.data, { mat = true }) -- 1797 x 65: 64 pixels, then the label
local ND = D:rows()
if D:cols() ~= 65 then
  fail(("%s has %d columns, expected 64 pixels and a label"):format(args.data, D:cols()))
end
local N = args.n + args.test
if N > ND then fail(("n + test = %d exceeds the %d images"):format(N, ND)) end
for _, k in ipairs(args.kappas) do
  if k < 1 or k > args.n then fail("kappas must lie in 1..n") end
end
if args.eta < 2 or args.eta > args.n then fail("need 2 <= eta <= n") end
for _, s in ipairs(args.sizes) do
  if s < 2 or s > args.n then fail("sizes must lie in 2..n") end
end
if args.kfit_min < 1 or args.kfit_max > args.n or args.kfit_min >= args.kfit_max then
  fail("need 1 <= kfit_min < kfit_max <= n")
end

local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }
local t0 = os.clock()

local pos = {}
for _, d in ipairs(args.positive) do pos[d] = true end
local perm = nnft.rng(args.seed):permutation(ND) -- shuffle: first n train, then test
local X = nnft.mat(N, 64)
local y = nnft.mat(N, 1)
for i = 1, N do
  local r = perm[i]
  for j = 1, 64 do X:set(i, j, D:get(r, j) / 16) end
  y:set(i, 1, pos[math.tointeger(D:get(r, 65))] and 1 or -1)
end
local n, T = args.n, args.test

-- ---- kernel and modes ----
local arch = nnft.mlp{ d_in = 64, width = 1, depth = args.depth, act = args.act,
                       sigma_w = args.sigma_w, sigma_b = args.sigma_b }
run:record_spec(arch) -- the manifest says which networks produced the outputs
local kern = arch:kernel()
local K = kern:matrix(X)                               -- N x N (train first, then test)
local Ktr = K:block(1, 1, n, n)
local Kst = K:block(n + 1, 1, T, n)
local ytr, yte = y:block(1, 1, n, 1), y:block(n + 1, 1, T, 1)
-- Mercer modes on the training points (eigenvalues of K/n, φ = √n U) and their Nyström
-- extension φ_k(x*) = K(x*, X) φ_k / (n λ_k) to the test points
local modes = kern:mercer(X:block(1, 1, n, 64))
local phis = modes:extend(X:block(n + 1, 1, T, 64))
local lam, phi = modes:values(), modes:functions()
local kmax_pos = n
while lam:get(kmax_pos, 1) <= 0 do kmax_pos = kmax_pos - 1 end

-- 1. spectrum and power law
local fit = nnft.rg.fit_power(lam, { kmin = args.kfit_min, kmax = math.min(args.kfit_max, kmax_pos) })
-- 2. mode analysis
local a = nnft.rg.modes(modes, { noise = args.noise, y = ytr })
local ks, lk, Lk, y2, fitl = {}, {}, {}, {}, {}
for k = 1, n do
  ks[k] = k
  lk[k] = math.max(lam:get(k, 1), 1e-300)
  Lk[k] = a.learn:get(k, 1)
  y2[k] = math.max(a.yk:get(k, 1) ^ 2, 1e-300)
  fitl[k] = math.exp(fit.logc) * k ^ (-(1 + fit.alpha))
end
nnft.io.write_csv(run:path("modes.csv"), { k = ks, lambda = lk, learnability = Lk, yk2 = y2,
  powerlaw = fitl }, { columns = { "k", "lambda", "learnability", "yk2", "powerlaw" },
  meta = { alpha = fit.alpha, r2 = fit.r2, kfit_min = fit.kmin, kfit_max = fit.kmax } })
nnft.plot.lines{ file = run:path("spectrum_fig.png"), logx = true, logy = true, xlabel = "mode k",
  ylabel = "lambda_k, y_k^2", title = ("NNGP (%s, depth %d) on digits"):format(args.act, args.depth),
  series = { { x = ks, y = lk, label = "lambda_k" },
             { x = ks, y = fitl, label = ("fit alpha = %.3f"):format(fit.alpha) },
             { x = ks, y = y2, style = "points", label = "y_k^2" } } }

-- 3. the flow
local flow = nnft.rg.wilson(modes, { noise = args.noise, y = ytr })
local flow_t = nnft.rg.wilson(modes, { noise = args.noise, y = ytr, include_target = true })
local lr = nnft.rg.local_ridge(modes, { noise = args.noise })   -- n x n: every κ
local rmean, rsd = lr:mean(1), lr:var(1):sqrt()
local rid, ridt, rm, rs = {}, {}, {}, {}
for k = 1, n do
  rid[k], ridt[k] = flow.ridge:get(k, 1), flow_t.ridge:get(k, 1)
  rm[k], rs[k] = rmean:get(1, k), rsd:get(1, k)
end
nnft.io.write_csv(run:path("flow.csv"), { kappa = ks, ridge = rid, ridge_target = ridt,
  local_mean = rm, local_sd = rs, learn = Lk },
  { columns = { "kappa", "ridge", "ridge_target", "local_mean", "local_sd", "learn" },
    meta = { stop = flow.stop, stop_target = flow_t.stop, noise = args.noise } })
nnft.plot.lines{ file = run:path("flow_fig.png"), logx = true, logy = true, xlabel = "cutoff kappa",
  ylabel = "sigma^2(kappa)", title = ("ridge flow; stop kappa* = %d"):format(flow.stop),
  series = { { x = ks, y = rid, label = "sigma^2 + sum_{k>kappa} lambda_k" },
             { x = ks, y = ridt, label = "... + sum_{k>kappa} y_k^2" },
             { x = ks, y = rs, label = "sd over x of sigma^2(x; kappa)" } } }

-- stopping point vs η
local etas, kst = {}, {}
for i = 0, 12 do etas[i + 1] = 10 ^ (i * 0.5) end
local kss = nnft.rg.stop(modes, { noise = args.noise, n = etas })
for i = 1, #etas do kst[i] = kss:get(i, 1) end
nnft.io.write_csv(run:path("stop.csv"), { eta = etas, kappa_star = kst },
  { columns = { "eta", "kappa_star" } })

-- 4. reduced vs full GP on the test points. The flow integrates out modes of the *measure*
-- (here the n-point pool) for a training set that is a sample of it: train on the first `eta`
-- pool points. (Trained on the whole pool, the modes are exactly orthogonal on the training set
-- and the high modes drop out of the low ones' equations: there the bare ridge is exact.)
local eta = args.eta
local Ptr = phi:block(1, 1, eta, n)
local ysub = ytr:block(1, 1, eta, 1)
local gp = Kst:block(1, 1, T, eta)
  * nnft.linalg.solve_spd(Ktr:block(1, 1, eta, eta) + nnft.mat.eye(eta) * args.noise, ysub)
local full = nnft.rg.reduced(modes, { noise = args.noise, y = ysub, kappa = kmax_pos,
  phi_train = Ptr, phi = phis, ridge = "bare" })
local nyst_err = (full - gp):abs():max()
local kap = {}
for _, k in ipairs(args.kappas) do if k <= kmax_pos then kap[#kap + 1] = k end end
local function reduced(ridge)
  return nnft.rg.reduced(modes, { noise = args.noise, y = ysub, kappa = kap, phi_train = Ptr,
    phi = phis, ridge = ridge })
end
local red, bare, loc = reduced("flow"), reduced("bare"), reduced("local")
local function rms(m) return math.sqrt(m:emul(m):mean()) end
local scale = rms(gp)
local kk, dflow, dbare, dloc, mflow, mfull = {}, {}, {}, {}, {}, rms(gp - yte) ^ 2
for j, k in ipairs(kap) do
  kk[j] = k
  dflow[j] = rms(red:col(j) - gp) / scale
  dbare[j] = rms(bare:col(j) - gp) / scale
  dloc[j] = rms(loc:col(j) - gp) / scale
  mflow[j] = rms(red:col(j) - yte) ^ 2
end
local stop_eta = nnft.rg.stop(modes, { noise = args.noise, n = eta })
nnft.io.write_csv(run:path("reduced.csv"), { kappa = kk, diff_flow = dflow, diff_bare = dbare,
  diff_local = dloc, mse_flow = mflow },
  { columns = { "kappa", "diff_flow", "diff_bare", "diff_local", "mse_flow" },
    meta = { mse_full = mfull, eta = eta, stop = stop_eta } })
nnft.plot.lines{ file = run:path("reduced_fig.png"), logx = true, logy = true, xlabel = "cutoff kappa",
  ylabel = "rms(reduced - full) / rms(full)",
  title = ("reduced vs full GP, %d training points; kappa*(eta) = %d"):format(eta, stop_eta),
  series = { { x = kk, y = dflow, style = "linespoints", label = "ridge sigma^2(kappa)" },
             { x = kk, y = dbare, style = "linespoints", label = "bare ridge sigma^2" },
             { x = kk, y = dloc, style = "linespoints", label = "input-dependent ridge" } } }

-- 5. Gaussianity
local g = nnft.rg.gaussianity(modes)
local ku, tw = {}, {}
for k = 1, n do ku[k], tw[k] = g.kurtosis:get(k, 1), g.tail:get(k, 1) end
nnft.io.write_csv(run:path("gaussianity.csv"), { k = ks, kurtosis = ku, tail3 = tw },
  { columns = { "k", "kurtosis", "tail3" } })
nnft.plot.lines{ file = run:path("gaussianity_fig.png"), logx = true, xlabel = "mode k",
  ylabel = "excess kurtosis of phi_k", title = "Gaussianity of the modes over the data",
  series = { { x = ks, y = ku, style = "points", label = "excess kurtosis" } } }
local hlow = nnft.rg.hist2d(modes, 1, 2, { bins = 24 })
local hhi = nnft.rg.hist2d(modes, math.min(flow.stop + 1, n - 1), math.min(flow.stop + 2, n), { bins = 24 })
nnft.io.write_csv(run:path("hist2d_low.csv"), hlow)
nnft.io.write_csv(run:path("hist2d_high.csv"), hhi)
local function median_range(lo, hi)
  local t = {}
  for k = lo, hi do t[#t + 1] = ku[k] end
  table.sort(t)
  return t[(#t + 1) // 2]
end
local klo_hi = math.max(2, math.min(flow.stop, n))

-- 6. learning curve
local lc = nnft.rg.learning_curve(K, y, { sizes = args.sizes, noise = args.noise, test = T })
-- EK prediction: modes of the whole data set (train + test points) as the measure μ, η = n
-- (from the kernel matrix already at hand: nnft.mercer_matrix, the same modes as kern:mercer(X))
local popmodes = nnft.mercer_matrix(K)
local ek = {}
for i, s in ipairs(args.sizes) do
  ek[i] = nnft.rg.modes(popmodes, { noise = args.noise, y = y, n = s }).total.bias2
end
local lcn, lcm = {}, {}
for i = 1, #args.sizes do lcn[i], lcm[i] = lc.n:get(i, 1), lc.mse:get(i, 1) end
-- measured exponent: least squares of log mse on log n
local sx, sy, sxx, sxy, m = 0, 0, 0, 0, #lcn
for i = 1, m do
  local lx, ly = math.log(lcn[i]), math.log(lcm[i])
  sx, sy, sxx, sxy = sx + lx, sy + ly, sxx + lx * lx, sxy + lx * ly
end
local slope = (m * sxy - sx * sy) / (m * sxx - sx * sx)
nnft.io.write_csv(run:path("learning_curve.csv"), { n = lcn, mse = lcm, ek = ek },
  { columns = { "n", "mse", "ek" }, meta = { predicted_exponent = fit.exponent,
    measured_exponent = -slope } })
nnft.plot.lines{ file = run:path("learning_curve_fig.png"), logx = true, logy = true,
  xlabel = "training points n", ylabel = "test MSE", title = "learning curve",
  series = { { x = lcn, y = lcm, style = "linespoints", label = "GP, measured" },
             { x = lcn, y = ek, style = "linespoints", label = "EK prediction" } } }

print(("digits: n = %d train, %d test; NNGP %s depth %d (sigma_w = %.3g, sigma_b = %.3g), noise = %g")
  :format(n, T, args.act, args.depth, args.sigma_w, args.sigma_b, args.noise))
print(("spectrum: alpha = %.3f (R^2 = %.3f over k = %d..%d): predicted learning-curve exponent %.3f")
  :format(fit.alpha, fit.r2, fit.kmin, fit.kmax, fit.exponent))
print(("learning curve: measured exponent %.3f; test MSE %.4f at n = %d (EK predicts %.4f)")
  :format(-slope, lcm[m], lcn[m], ek[m]))
print(("flow: stopping point kappa* = %d (with the target tail as noise: %d); learned modes "
  .. "sum L_k = %.1f"):format(flow.stop, flow_t.stop, a.total.learned))
print(("reduced vs full GP trained on %d points (kappa*(%d) = %d), rms(reduced - full)/rms(full):")
  :format(eta, eta, stop_eta))
for j, k in ipairs(kap) do
  print(("  kappa = %4d: %.3g (flow ridge)  %.3g (bare ridge)  %.3g (input-dependent ridge)")
    :format(k, dflow[j], dbare[j], dloc[j]))
end
print(("Gaussianity: median excess kurtosis %.2f for modes 1..%d, %.2f for modes %d..%d")
  :format(median_range(1, klo_hi), klo_hi, median_range(klo_hi + 1, n), klo_hi + 1, n))
print(("Nystrom check: full GP via the modes vs direct solve, max |diff| = %.2e; %.1f s")
  :format(nyst_err, os.clock() - t0))
run:finish()
