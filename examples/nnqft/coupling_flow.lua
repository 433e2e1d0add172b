-- The quartic coupling of a ReLU-net and its flow with the input-space cutoff: the [HMS]
-- experiment (arXiv:2008.08601 §5, physics.md §4.1), measured and predicted exactly.
--
-- A ReLU-net (one hidden layer, σ_W = 1, σ_b = 0, d = 1) at width N on the inputs
-- x = 0.2 .. 1.2: the ensemble's ΔG4 = G4 − G4_GP per sorted 4-tuple (126 of them), the coupling
--     λ(Λ) = −ΔG4 / (24 I4(Λ)),  I4(Λ) = ∫_{−Λ}^{Λ} dx Π_a K_w(x_a, x)      ([HMS] convention)
-- on the published cutoff grid Λ = 7 .. 1e5, its β = Λ dλ/dΛ and a log–log slope (expected
-- −(d+4) = −5), its spread over tuples (locality), the exact finite-N λ (nnft.finite's G4_c in
-- place of the measured ΔG4), and the O(λ) six-point prediction ΔG6 = −24 λ Σ_15 I4 K compared
-- with the measured G6 through G6_GP/G6 and (G6_GP + ΔG6)/G6 as functions of Λ.
--
--   nnft examples/nnqft/coupling_flow.lua                   (E = 1e5, N = 20: well under a minute)
--   nnft examples/nnqft/coupling_flow.lua E=1e6 bags=10     (the paper's ensemble size)
--
-- Outputs in out=: coupling_flow.csv (per cutoff: Λ, mean λ and its error, exact λ, β, spread,
-- six-point ratios), lambda.png (|λ(Λ)| with error bars and the exact line, log–log),
-- sixpoint.png (the two ratios against Λ), manifest.json.

local nnft = nnft or require "nnft"

local args = nnft.args{
  N = 20,
  E = 100000,
  bags = 10,
  seed = 1,
  x = { 0.2, 0.4, 0.6, 0.8, 1.0, 1.2 },
  cutoffs = { 7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3, 2e3, 5e3, 7e3, 1e4, 2e4, 4e4,
              6e4, 8e4, 1e5 },
  out = "out/coupling_flow",
}
if args.bags < 2 or args.E < 2 * args.bags then error("coupling_flow: need bags >= 2, E >= 2 bags", 0) end
if #args.cutoffs < 3 then error("coupling_flow: give at least 3 cutoffs", 0) end
for _, v in ipairs(args.x) do
  if v <= 0 then error("coupling_flow: inputs must be > 0 (ReLU without bias, d = 1)", 0) end
end

local C = nnft.coupling
local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }
local rows = {}
for i, v in ipairs(args.x) do rows[i] = { v } end
local X = nnft.mat(rows)
local arch = nnft.mlp{ d_in = 1, width = args.N, depth = 1, act = "relu", sigma_w = 1, sigma_b = 0 }
run:record_spec(arch) -- the manifest says which networks produced the outputs

local t0 = os.clock()
local G = arch:sample(args.E, { seed = args.seed }):npoints(X, { 4, 6 }, { bags = args.bags })
local K = C.kernel(arch, X)                         -- = G2 exactly at every N
local W4, W6 = nnft.corr.wick(K, 4), nnft.corr.wick(K, 6)
local dG4 = G[4].values - W4.values
local _, g4c = nnft.finite.g4c(arch, X)
local I4, _ = C.vertex(arch, X, nil, args.cutoffs)   -- 126 x ncut, one pass over the shells
local lam, lerr = C.lambda(dG4, G[4].errors, I4)
local lex = C.lambda(g4c, nil, I4)
local flow = C.flow(args.cutoffs, I4, lam)
local flow_ex = C.flow(args.cutoffs, I4, lex)

local csv = { Lambda = {}, lambda = {}, lambda_err = {}, lambda_exact = {}, beta = {},
              rel_spread = {}, chi2_dof = {}, ratio_gp = {}, ratio_corrected = {} }
local absl, abse, absx, rg, rc = {}, {}, {}, {}, {}
local nt = I4:rows()
for c, L in ipairs(args.cutoffs) do
  local loc = C.locality(lam:col(c), lerr:col(c))
  local lx = C.locality(lex:col(c))
  local dG6, r1, r2 = C.six_point(loc.wmean, I4:col(c), K, { G6 = G[6].values, G6_GP = W6.values })
  local m1, m2 = 0, 0
  for t = 1, r1:rows() do m1, m2 = m1 + r1:get(t, 1), m2 + r2:get(t, 1) end
  m1, m2 = m1 / r1:rows(), m2 / r1:rows()
  local beta = 0
  for t = 1, nt do beta = beta + flow.beta:get(t, c) end
  -- the tuples share one ensemble, so their errors are correlated: quote the mean per-tuple
  -- error bar, not the (far too small) error of an average over independent tuples
  local e = 0
  for t = 1, nt do e = e + lerr:get(t, c) end
  local row = { Lambda = L, lambda = loc.wmean, lambda_err = e / nt, lambda_exact = lx.mean,
                beta = beta / nt, rel_spread = loc.rel_spread, chi2_dof = loc.chi2 / loc.dof,
                ratio_gp = m1, ratio_corrected = m2 }
  for k, v in pairs(row) do table.insert(csv[k], v) end
  absl[c], abse[c], absx[c], rg[c], rc[c] = math.abs(loc.wmean), e / nt, math.abs(lx.mean), m1, m2
  _ = dG6
end
local fit = C.loglog(args.cutoffs, absl)

nnft.io.write_csv(run:path("coupling_flow.csv"), csv, {
  columns = { "Lambda", "lambda", "lambda_err", "lambda_exact", "beta", "rel_spread", "chi2_dof",
              "ratio_gp", "ratio_corrected" },
  meta = { N = args.N, E = args.E, bags = args.bags, seed = args.seed, convention = "hms",
           lambda = "inverse-variance mean over tuples of -dG4/(24 I4(Lambda))",
           lambda_err = "mean per-tuple error bar (tuples are correlated)",
           slope = fit.slope, slope_err = fit.slope_err, r2 = fit.r2 },
})
nnft.plot.lines{ file = run:path("lambda.png"), logx = true, logy = true, xlabel = "cutoff Λ",
                 ylabel = "|λ(Λ)|", key = "top right",
                 title = ("ReLU-net N = %d, d = 1: quartic coupling vs cutoff (E = %d)"):format(args.N, args.E),
                 series = { { x = args.cutoffs, y = absl, yerr = abse, label = "measured" },
                            { x = args.cutoffs, y = absx, style = "lines", label = "exact finite-N" } } }
nnft.plot.lines{ file = run:path("sixpoint.png"), logx = true, xlabel = "cutoff Λ",
                 ylabel = "mean ratio over 6-tuples", key = "bottom right",
                 title = "six-point function: free theory and O(λ) correction",
                 series = { { x = args.cutoffs, y = rg, style = "linespoints", label = "G6_GP / G6" },
                            { x = args.cutoffs, y = rc, style = "linespoints",
                              label = "(G6_GP + ΔG6) / G6" } } }
run:finish()

print(("coupling_flow: ReLU-net N = %d, E = %d, %d tuples x %d cutoffs (%.1f s)"):format(
  args.N, args.E, nt, #args.cutoffs, os.clock() - t0))
print(("  lambda(Lambda=%g) = %.4g +- %.2g (exact %.4g), spread over tuples %.2g"):format(
  args.cutoffs[1], csv.lambda[1], csv.lambda_err[1], csv.lambda_exact[1], csv.rel_spread[1]))
print(("  log-log slope %.4f +- %.2g (R^2 = %.6f); expected -(d+4) = -5; exact-lambda slope %.4f"):format(
  fit.slope, fit.slope_err, fit.r2, flow_ex.slope))
print(("  six-point: G6_GP/G6 = %.4f, (G6_GP + dG6)/G6 = %.4f at Lambda = %g"):format(
  rg[1], rc[1], args.cutoffs[1]))
print("  outputs in " .. args.out .. " (coupling_flow.csv, lambda.png, sixpoint.png, manifest.json)")
