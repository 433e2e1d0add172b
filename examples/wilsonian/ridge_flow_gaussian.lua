-- The Wilsonian ridge flow where everything is exact: the RBF kernel on Gaussian inputs
-- (physics.md §5.2, §6; [HJMR]).
--
-- For k(x,x') = exp(−(x−x')²/(2ℓ²)) and the data measure x ~ N(0, s²) the Mercer spectrum is
-- geometric, λ_k = sqrt(2a/A) B^(k−1) (a = 1/(4s²), b = 1/(2ℓ²), c = sqrt(a² + 2ab), A = a + b + c,
-- B = b/A), so the Gaussian-feature flow σ²(κ) = σ² + Σ_{k>κ} λ_k has the closed form
-- σ² + sqrt(2a/A) B^κ/(1 − B), and the stopping point ηλ_κ* = σ²(κ*) is
-- κ* = floor(1 + log(σ² / (c0 (η − B/(1−B)))) / log B) with c0 = sqrt(2a/A).
-- The recipe
--   1. samples n inputs, takes the Mercer modes of K/n (kernel:mercer) and compares the
--      empirical spectrum with the exact one;
--   2. runs nnft.rg.wilson on both and compares σ²(κ) with the closed form;
--   3. gives the stopping point κ*(η) from nnft.rg.stop and from the closed form: more data, more
--      learnable modes — the data set the IR scale;
--   4. measures the Gaussianity (excess kurtosis) of the empirical modes: for Gaussian inputs the
--      eigenfunctions are Hermite functions, so even low modes are not Gaussian variables.
--
--   nnft examples/wilsonian/ridge_flow_gaussian.lua n=800 lengthscale=0.5 noise=1e-3 out=out/rfg
-- Outputs under out=: spectrum.csv, flow.csv, stop.csv, gaussianity.csv, and the figures
-- <name>_fig.png/.svg with their plotted data and gnuplot script (<name>_fig.csv, .gp).

local nnft = nnft or require "nnft"

local args = nnft.args{
  n = 800,            -- sampled inputs for the empirical spectrum
  s = 1.0,            -- input standard deviation
  lengthscale = 0.5,  -- RBF lengthscale ℓ
  noise = 1e-3,       -- σ²
  kmax = 40,          -- modes shown
  seed = 1,
  out = "out/wilsonian_ridge_flow_gaussian",
}
if args.n < 10 or args.kmax < 2 or args.kmax > args.n then
  error("ridge_flow_gaussian: need n >= 10 and 2 <= kmax <= n", 0)
end

local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }

-- exact spectrum (physics.md §5.2)
local a, b = 1 / (4 * args.s ^ 2), 1 / (2 * args.lengthscale ^ 2)
local c = math.sqrt(a * a + 2 * a * b)
local A = a + b + c
local B = b / A
local c0 = math.sqrt(2 * a / A)
local Kx = 600 -- long enough that B^Kx is far below round-off
local exact = {}
for k = 1, Kx do exact[k] = c0 * B ^ (k - 1) end
local lam_exact = nnft.mat(exact)

-- empirical spectrum on n Gaussian inputs
local X = nnft.rng(args.seed):normal(args.n, 1) * args.s
local kernel = nnft.kernel.rbf{ lengthscale = args.lengthscale }
run:record_spec(kernel) -- the manifest says which kernel produced the outputs
local modes = kernel:mercer(X) -- all n modes of K/n
local lam = modes:values()

-- 1. spectra
local ks, le, lm = {}, {}, {}
for k = 1, args.kmax do ks[k], le[k], lm[k] = k, exact[k], math.max(lam:get(k, 1), 1e-300) end
nnft.io.write_csv(run:path("spectrum.csv"), { k = ks, exact = le, empirical = lm },
  { columns = { "k", "exact", "empirical" }, meta = { lengthscale = args.lengthscale, s = args.s } })
nnft.plot.lines{ file = run:path("spectrum_fig.png"), logy = true, xlabel = "mode k",
  ylabel = "lambda_k", title = "RBF on N(0,s^2): Mercer spectrum",
  series = { { x = ks, y = le, label = "exact sqrt(2a/A) B^{k-1}" },
             { x = ks, y = lm, style = "points", label = "eigenvalues of K/n" } } }

-- 2. the flow against its closed form
local fe = nnft.rg.wilson(lam_exact, { noise = args.noise, n = args.n })
local fm = nnft.rg.wilson(modes, { noise = args.noise })
local closed, rexact, remp, worst = {}, {}, {}, 0
for k = 1, args.kmax do
  closed[k] = args.noise + c0 * B ^ k / (1 - B)
  rexact[k] = fe.ridge:get(k, 1)
  remp[k] = fm.ridge:get(k, 1)
  worst = math.max(worst, math.abs(rexact[k] - closed[k]) / closed[k])
end
nnft.io.write_csv(run:path("flow.csv"), { kappa = ks, closed = closed, flow_exact = rexact,
  flow_empirical = remp }, { columns = { "kappa", "closed", "flow_exact", "flow_empirical" },
  meta = { noise = args.noise } })
nnft.plot.lines{ file = run:path("flow_fig.png"), logy = true, xlabel = "cutoff kappa",
  ylabel = "sigma^2(kappa)", title = "Wilsonian ridge flow (Gaussian features)",
  series = { { x = ks, y = closed, label = "closed form" },
             { x = ks, y = rexact, style = "points", label = "nnft.rg.wilson, exact spectrum" },
             { x = ks, y = remp, style = "points", label = "nnft.rg.wilson, empirical K/n" } } }

-- 3. the stopping point as a function of the dataset size
local etas, kst, kcl = {}, {}, {}
for i = 0, 16 do
  local eta = 10 ^ (1 + i * 0.3125)
  etas[#etas + 1] = eta
  kst[#kst + 1] = nnft.rg.stop(lam_exact, { noise = args.noise, n = eta })
  local x = 1 + math.log(args.noise / (c0 * (eta - B / (1 - B)))) / math.log(B)
  kcl[#kcl + 1] = x < 1 and 0 or math.floor(x)
end
nnft.io.write_csv(run:path("stop.csv"), { eta = etas, kappa_star = kst, closed = kcl },
  { columns = { "eta", "kappa_star", "closed" } })
nnft.plot.lines{ file = run:path("stop_fig.png"), logx = true, xlabel = "dataset size eta",
  ylabel = "kappa*", title = "stopping point: data set the IR scale",
  series = { { x = etas, y = kcl, label = "closed form" },
             { x = etas, y = kst, style = "points", label = "nnft.rg.stop" } } }

-- 4. Gaussianity of the empirical modes
local g = nnft.rg.gaussianity(modes)
local ku = {}
for k = 1, args.kmax do ku[k] = g.kurtosis:get(k, 1) end
nnft.io.write_csv(run:path("gaussianity.csv"), { k = ks, kurtosis = ku },
  { columns = { "k", "kurtosis" } })

local mism = 0
for i = 1, #etas do if kst[i] ~= kcl[i] then mism = mism + 1 end end
print(("RBF ell=%g on N(0,%g^2): B = %.4f, lambda_1 = %.4f"):format(args.lengthscale, args.s, B, c0))
print(("flow vs closed form: max relative difference %.2e over kappa = 1..%d"):format(worst,
  args.kmax))
print(("empirical flow at kappa = 5: %.5g (exact %.5g); stopping point at eta = n = %d: %d")
  :format(remp[5], rexact[5], args.n, fm.stop))
print(("stopping point vs eta: %d of %d sizes differ from the closed form; kappa*(10) = %d, "
  .. "kappa*(1e6) = %d"):format(mism, #etas, kst[1], kst[#kst]))
run:finish()
