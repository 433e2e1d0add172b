-- n-point functions against width: the [HMS] experiment (arXiv:2008.08601, physics.md §3),
-- measured on network ensembles and predicted exactly.
--
-- For ReLU-, Erf- and Gauss-nets with one hidden layer at d = 1 (the published input sets:
-- ReLU x = 0.2 .. 1.2 step 0.2 with σ_b = 0; Erf x = ±0.2, ±0.6, ±1; Gauss-net 0.01 × those),
-- at each width N this recipe samples E networks, measures the 2-, 4- and 6-point functions over
-- all sorted input tuples (21, 126, 462 of them) in `bags` bags, and computes the [HMS] deviation
-- from the Gaussian process (Wick's theorem on the kernel K):
--     m_n = mean_tuples |G_n − G_n,GP| / G_n,GP,   background = mean_tuples std_bags(G_n)/G_n,GP.
-- Beside each measurement it draws the exact prediction of physics.md §3.4 (nnft.finite):
--     G2 = K exactly at every N                                  → m_2 = 0
--     G4 − G4,GP = G4_c, exactly ∝ 1/N                          → m_4 = mean |G4_c| / G4,GP
--     G6 − G6,GP = G6_c + Σ_15 G4_c G2   (order 1/N, plus 1/N²)  → m_6 likewise
-- ("predicted"), and what a measurement with this E should read given its own error bars
-- ("expected" = the mean of |exact + noise| with the measured noise, a folded normal). The
-- measured m_4, m_6 fall with slope −1 on the log–log plot until they meet the background;
-- m_2 sits on the background at every N.
--
--   nnft examples/nnqft/npoint_vs_width.lua                    (E = 1e5: about a minute)
--   nnft examples/nnqft/npoint_vs_width.lua E=1e6 bags=10      (the paper's noise floor; ~10 min)
--   nnft examples/nnqft/npoint_vs_width.lua acts=erf widths=2,10,100 E=2e4 out=out/quick
--
-- Outputs in out=: npoint_vs_width.csv (act, N, n, m, background, predicted, expected, used),
-- one log–log figure per activation (<act>.png/.svg with its data and gnuplot script), and
-- manifest.json. The fitted slopes of m_4 and m_6 are printed, using the widths where the
-- measurement stands clear of its noise (m > 3 background/sqrt(bags): the background is the
-- spread of one bag, the mean over bags is sqrt(bags) times more precise), with the slope of the
-- exact prediction over the same widths (at small N, G6_c's 1/N² term steepens m_6).

local nnft = nnft or require "nnft"

local args = nnft.args{
  widths = { 2, 3, 4, 5, 10, 20, 50, 100, 500, 1000 },
  E = 100000,          -- networks per width
  bags = 10,           -- the ensemble is split into this many bags for the error bars
  seed = 1,
  acts = { "relu", "erf", "gauss" },
  threads = 0,         -- 0: the sampler's default
  out = "out/npoint_vs_width",
}
if args.E < 2 * args.bags or args.bags < 2 then
  error("npoint_vs_width: need bags >= 2 and E >= 2 bags", 0)
end
for _, w in ipairs(args.widths) do
  if math.type(w) ~= "integer" or w < 1 then error("npoint_vs_width: widths must be positive integers", 0) end
end

-- The published set-ups ([HMS] §4; physics.md §1.2).
local erf_x = { -1, -0.6, -0.2, 0.2, 0.6, 1 }
local setups = {
  relu = { act = "relu", sigma_b = 0.0, x = { 0.2, 0.4, 0.6, 0.8, 1.0, 1.2 }, label = "ReLU-net" },
  erf = { act = "erf", sigma_b = 1.0, x = erf_x, label = "Erf-net" },
  gauss = { act = "gauss-net", sigma_b = 1.0, x = {}, label = "Gauss-net" },
}
for i, v in ipairs(erf_x) do setups.gauss.x[i] = 0.01 * v end
for _, a in ipairs(args.acts) do
  if not setups[a] then
    error(("npoint_vs_width: unknown act '%s' (relu, erf, gauss)"):format(tostring(a)), 0)
  end
end

local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }

-- E|μ + ε| for ε ~ N(0, s²) (the folded normal's mean).
local function erf(x) return nnft.mat{ { x } }:erf():get(1, 1) end
local function folded_mean(mu, s)
  if s <= 0 then return math.abs(mu) end
  local z = mu / s
  return s * math.sqrt(2 / math.pi) * math.exp(-0.5 * z * z) + mu * erf(z / math.sqrt(2))
end

-- Sorted-tuple key (inputs 1..n < 16).
local function key(t)
  local k = 0
  for _, v in ipairs(t) do k = k * 16 + v end
  return k
end

-- Exact deviations G_n − G_n,GP per tuple, n = 2, 4, 6 (physics.md §3.3-3.4).
local function exact_deviations(arch, X, K)
  local t4, g4c = nnft.finite.g4c(arch, X)
  local _, g6c = nnft.finite.g6c(arch, X)
  local t6 = nnft.corr.tuples(X:rows(), 6)
  local g4 = {}
  for r = 1, t4:rows() do
    g4[key{ t4:get(r, 1), t4:get(r, 2), t4:get(r, 3), t4:get(r, 4) }] = g4c:get(r, 1)
  end
  local d6 = {}
  for r = 1, t6:rows() do
    local t = {}
    for q = 1, 6 do t[q] = t6:get(r, q) end
    local s = g6c:get(r, 1)
    for e = 1, 6 do
      for f = e + 1, 6 do
        local rest = {}
        for q = 1, 6 do if q ~= e and q ~= f then rest[#rest + 1] = t[q] end end
        s = s + g4[key(rest)] * K:get(t[e], t[f])
      end
    end
    d6[r] = s
  end
  local d4 = {}
  for r = 1, t4:rows() do d4[r] = g4c:get(r, 1) end
  local d2 = {}
  for r = 1, X:rows() * (X:rows() + 1) // 2 do d2[r] = 0.0 end
  return { [2] = d2, [4] = d4, [6] = d6 }
end

-- Least-squares slope and intercept of log y against log x.
local function loglog_fit(xs, ys)
  local n, sx, sy, sxx, sxy = #xs, 0, 0, 0, 0
  if n < 2 then return nil end
  for i = 1, n do
    local lx, ly = math.log(xs[i]), math.log(ys[i])
    sx, sy, sxx, sxy = sx + lx, sy + ly, sxx + lx * lx, sxy + lx * ly
  end
  local slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
  return slope, (sy - slope * sx) / n
end

local csv = { act = {}, N = {}, n = {}, m = {}, background = {}, predicted = {}, expected = {},
              used = {} }
local summary = {}
local t_start = os.clock()

for ai, actname in ipairs(args.acts) do
  local S = setups[actname]
  local rows = {}
  for i, v in ipairs(S.x) do rows[i] = { v } end
  local X = nnft.mat(rows)
  local res = { [2] = {}, [4] = {}, [6] = {} }
  for wi, N in ipairs(args.widths) do
    local arch = nnft.mlp{ d_in = 1, width = N, depth = 1, act = S.act, sigma_w = 1.0,
                           sigma_b = S.sigma_b }
    run:record_spec(arch) -- the manifest says which networks produced the outputs
    local K = nnft.finite.g2(arch, X)                  -- = the NNGP kernel, exact at every N
    local dev = exact_deviations(arch, X, K)
    local seed = args.seed * 1000003 + ai * 1000 + wi  -- independent ensembles per point
    local sopts = { seed = seed }
    if args.threads > 0 then sopts.threads = args.threads end
    local G = arch:sample(args.E, sopts):npoints(X, { 2, 4, 6 }, { bags = args.bags })
    for _, n in ipairs{ 2, 4, 6 } do
      local P = nnft.corr.wick(K, n)
      local m, bg, used = nnft.corr.deviation(G[n], P)
      local pred, expect, cnt = 0, 0, 0
      for r = 1, P.values:rows() do
        local p = P.values:get(r, 1)
        if p ~= 0 then
          pred = pred + math.abs(dev[n][r]) / math.abs(p)
          expect = expect + folded_mean(dev[n][r], G[n].errors:get(r, 1)) / math.abs(p)
          cnt = cnt + 1
        end
      end
      pred, expect = pred / cnt, expect / cnt
      res[n][wi] = { N = N, m = m, bg = bg, pred = pred, expect = expect }
      for k, v in pairs{ act = actname, N = N, n = n, m = m, background = bg, predicted = pred,
                         expected = expect, used = used } do
        table.insert(csv[k], v)
      end
    end
    io.stderr:write(("  %s N=%d done (%.0f s)\n"):format(actname, N, os.clock() - t_start))
  end

  -- slopes where the measurement is clear of its noise floor, and of the prediction
  local fits = {}
  for _, n in ipairs{ 4, 6 } do
    local xs, ys, px, py = {}, {}, {}, {}
    local floor = 3 / math.sqrt(args.bags) -- the mean's noise: background / sqrt(bags)
    for _, r in ipairs(res[n]) do
      if r.m > floor * r.bg then
        xs[#xs + 1], ys[#ys + 1] = r.N, r.m
        px[#px + 1], py[#py + 1] = r.N, r.pred
      end
    end
    if #px < 2 then -- no usable measurement: the exact slope over all widths
      px, py = {}, {}
      for _, r in ipairs(res[n]) do px[#px + 1], py[#py + 1] = r.N, r.pred end
    end
    fits[n] = { slope = loglog_fit(xs, ys), used = #xs, pslope = loglog_fit(px, py) }
  end
  summary[#summary + 1] = { act = actname, label = S.label, fits = fits, res = res }

  -- the figure: measured m_n, backgrounds, exact predictions
  local series = {}
  local colors = { [2] = "#1f77b4", [4] = "#d62728", [6] = "#2ca02c" }
  for _, n in ipairs{ 2, 4, 6 } do
    local xs, ms, bgs, ps = {}, {}, {}, {}
    for i, r in ipairs(res[n]) do xs[i], ms[i], bgs[i], ps[i] = r.N, r.m, r.bg, r.pred end
    series[#series + 1] = { x = xs, y = ms, style = "linespoints", color = colors[n],
                            label = ("m_%d measured"):format(n) }
    series[#series + 1] = { x = xs, y = bgs, style = "lines", color = colors[n], width = 0.5,
                            label = ("background_%d"):format(n) }
    if n > 2 then
      series[#series + 1] = { x = xs, y = ps, style = "lines", color = colors[n], width = 2.5,
                              label = ("m_%d exact (1/N, §3.4)"):format(n) }
    end
  end
  nnft.plot.lines{ file = run:path(actname .. ".png"), series = series, logx = true, logy = true,
                   key = "outside right top", size = { 1000, 600 }, xlabel = "width N", ylabel = "m_n",
                   title = ("%s, d = 1: deviation from the GP vs width (E = %d)"):format(S.label,
                                                                                   args.E) }
end

nnft.io.write_csv(run:path("npoint_vs_width.csv"), csv, {
  columns = { "act", "N", "n", "m", "background", "predicted", "expected", "used" },
  meta = { E = args.E, bags = args.bags, seed = args.seed,
           predicted = "mean_t |G_n - G_n,GP|/G_n,GP from the exact finite-width formulas",
           expected = "mean_t E|exact + noise|/G_n,GP with the measured error bars" },
})
run:finish()

print(("npoint_vs_width: E = %d networks per width, %d bags, widths %s"):format(
  args.E, args.bags, table.concat(args.widths, ",")))
for _, s in ipairs(summary) do
  local f4, f6 = s.fits[4], s.fits[6]
  local function fmt(x) return x and ("%.2f"):format(x) or "n/a" end
  print(("  %-9s slope m_4 %s (%d widths above the noise), m_6 %s (%d); exact: %s, %s")
        :format(s.label, fmt(f4.slope), f4.used, fmt(f6.slope), f6.used, fmt(f4.pslope),
                fmt(f6.pslope)))
  local r2 = s.res[2][#s.res[2]]
  print(("            m_2 at N = %d: %.2e (background %.2e): Gaussian at every width")
        :format(r2.N, r2.m, r2.bg))
end
print("  outputs in " .. args.out .. " (npoint_vs_width.csv, <act>.png/.svg, manifest.json)")
