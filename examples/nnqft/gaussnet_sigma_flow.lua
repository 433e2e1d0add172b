-- The weight variance as an RG scale: the [ELS] experiment (arXiv:2212.11811, physics.md §4.2).
--
-- Gauss-nets (one hidden layer, d = 1, σ_b = 1, σ_W for both layers) over a grid of σ_W and
-- widths N: the [ELS] coupling u4 = 24 λ = −ΔG4 / I4(∞) per sorted 4-tuple (I4 on the whole line,
-- where the Gauss-net vertex converges), averaged over tuples, with the exact finite-N value
-- (nnft.finite's G4_c) beside it; a fit log|u4| = a log σ_W + b per width (expected a = d − 4 = −3
-- while σ_W|x| ≪ 1). On the same plot the LPA "passive" flow (nnft.coupling.passive): start at
-- k0 with u2 = 2σ_W0²/d and the measured u4(σ_W0), integrate the Wetterich/LPA equation to
-- k = 100, and read σ_W(k) = sqrt(d u2(k)/2) back.
--
--   nnft examples/nnqft/gaussnet_sigma_flow.lua                 (about 15 s)
--   nnft examples/nnqft/gaussnet_sigma_flow.lua sigmas=1,1.5,2,2.5,3,3.5,4,4.5,5,5.5,6,6.5,7,7.5,8,8.5,9,9.5,10,20,30,40,50,60,70,80,90,100 widths=5,10,50,100,500,1000 E=1e6
--                                                               (the paper's grid: hours)
--
-- Outputs in out=: sigma_flow.csv (N, sigma_w, u4, u4_err, u4_exact), passive.csv (N, k,
-- sigma_w, u4), u4_sigma.png (log–log, measured with error bars, exact, passive flows),
-- manifest.json.

local nnft = nnft or require "nnft"

local args = nnft.args{
  sigmas = { 1, 1.5, 2, 3, 4, 6, 8, 10 },
  widths = { 10, 100 },
  E = 200000,
  bags = 10,
  seed = 1,
  x = { -0.01, -0.006, -0.002, 0.002, 0.006, 0.01 },
  u6 = 0.0,             -- the starting sextic coupling of the passive flow
  k0 = 1e-3, k1 = 100,  -- the passive flow's range
  out = "out/gaussnet_sigma_flow",
}
if args.bags < 2 or args.E < 2 * args.bags then error("gaussnet_sigma_flow: need bags >= 2, E >= 2 bags", 0) end
if #args.sigmas < 3 then error("gaussnet_sigma_flow: give at least 3 sigmas", 0) end

local C = nnft.coupling
local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }
local rows = {}
for i, v in ipairs(args.x) do rows[i] = { v } end
local X = nnft.mat(rows)
local d = 1

local csv = { N = {}, sigma_w = {}, u4 = {}, u4_err = {}, u4_exact = {} }
local pcsv = { N = {}, k = {}, sigma_w = {}, u4 = {} }
local series, fits = {}, {}
local colors = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#ff7f0e" }
local t0 = os.clock()
for wi, N in ipairs(args.widths) do
  local ys, es, xs_ex = {}, {}, {}
  for si, sw in ipairs(args.sigmas) do
    local arch = nnft.mlp{ d_in = d, width = N, depth = 1, act = "gauss-net", sigma_w = sw,
                           sigma_b = 1 }
    run:record_spec(arch) -- the manifest says which networks produced the outputs
    local K = C.kernel(arch, X)
    local G4 = arch:sample(args.E, { seed = args.seed * 1000003 + wi * 1000 + si })
                   :npoint(X, 4, { bags = args.bags })
    local I4 = C.vertex_closed(arch, X)              -- Λ = ∞ (checked against the cubature in tests)
    local u4, uerr = C.lambda(G4.values - nnft.corr.wick(K, 4).values, G4.errors, I4,
                              { convention = "els" })
    local _, g4c = nnft.finite.g4c(arch, X)
    local ux = C.lambda(g4c, nil, I4, { convention = "els" })
    local m, e, mx = 0, 0, 0
    for t = 1, u4:rows() do
      m, e, mx = m + u4:get(t, 1), e + uerr:get(t, 1), mx + ux:get(t, 1)
    end
    local n = u4:rows()
    m, e, mx = m / n, e / n, mx / n                  -- tuples are correlated: mean error bar
    ys[si], es[si], xs_ex[si] = m, e, mx
    for k, v in pairs{ N = N, sigma_w = sw, u4 = m, u4_err = e, u4_exact = mx } do
      table.insert(csv[k], v)
    end
  end
  local fit = C.loglog(args.sigmas, ys)
  local fitx = C.loglog(args.sigmas, xs_ex)
  fits[#fits + 1] = { N = N, slope = fit.slope, err = fit.slope_err, r2 = fit.r2, exact = fitx.slope }
  local absy = {}
  for i, v in ipairs(ys) do absy[i] = math.abs(v) end
  local absx = {}
  for i, v in ipairs(xs_ex) do absx[i] = math.abs(v) end
  local col = colors[(wi - 1) % #colors + 1]
  series[#series + 1] = { x = args.sigmas, y = absy, yerr = es, color = col,
                          label = ("measured |u4|, N = %d"):format(N) }
  series[#series + 1] = { x = args.sigmas, y = absx, style = "lines", color = col,
                          label = ("exact, N = %d"):format(N) }
  -- the passive LPA flow from the first σ_W with the measured u4
  local ok, p = pcall(C.passive, { d = d, sigma0 = args.sigmas[1], u4 = ys[1], u6 = args.u6,
                                    k0 = args.k0, k1 = args.k1, n = 60 })
  if ok then
    local px, py = {}, {}
    for i = 1, p.k:rows() do
      local s, u = p.sigma_w:get(i, 1), p.u4:get(i, 1)
      if s == s and u ~= 0 then px[#px + 1], py[#py + 1] = s, math.abs(u) end
      for k, v in pairs{ N = N, k = p.k:get(i, 1), sigma_w = s, u4 = u } do table.insert(pcsv[k], v) end
    end
    series[#series + 1] = { x = px, y = py, style = "lines", color = col, width = 0.7,
                            label = ("LPA passive flow, N = %d"):format(N) }
  else
    io.stderr:write("gaussnet_sigma_flow: passive flow stopped: " .. tostring(p) .. "\n")
  end
end

nnft.io.write_csv(run:path("sigma_flow.csv"), csv, {
  columns = { "N", "sigma_w", "u4", "u4_err", "u4_exact" },
  meta = { E = args.E, bags = args.bags, seed = args.seed, convention = "els (u4 = 24 lambda)",
           Lambda = "inf (closed form)" } })
nnft.io.write_csv(run:path("passive.csv"), pcsv, { columns = { "N", "k", "sigma_w", "u4" },
  meta = { d = d, u6 = args.u6, k0 = args.k0, k1 = args.k1 } })
nnft.plot.lines{ file = run:path("u4_sigma.png"), logx = true, logy = true, xlabel = "σ_W",
                 ylabel = "|u4|", key = "outside right top", size = { 1000, 600 },
                 title = ("Gauss-net, d = 1: [ELS] coupling vs sigma_W (E = %d)"):format(args.E),
                 series = series }
run:finish()

print(("gaussnet_sigma_flow: %d sigmas x %d widths, E = %d (%.1f s)"):format(
  #args.sigmas, #args.widths, args.E, os.clock() - t0))
for _, f in ipairs(fits) do
  print(("  N = %4d: slope of log|u4| vs log sigma_W = %.3f +- %.2g (R^2 %.4f); exact %.3f; expected d-4 = %d")
        :format(f.N, f.slope, f.err, f.r2, f.exact, d - 4))
end
print("  outputs in " .. args.out .. " (sigma_flow.csv, passive.csv, u4_sigma.png, manifest.json)")
