-- A free scalar field built out of neurons: the generalised cos-net (physics.md §1.3, §2.4, [H21],
-- [HKMS]).
--
--   φ(x) = Σ_{i=1..N} a_i A(b_i) cos(b_i·x + c_i),   a_i ~ N(0, σ_a²/N),  c_i ~ U[−π, π],
--   b_i uniform in the ball |b| <= R,  A(b) = C / sqrt(|b|² + m²),  C² = 2 vol(B_R)/(σ_a² (2π)^d)
--
-- Its two-point function is, exactly and at every width N, the free propagator with a sharp
-- momentum cutoff R:  G2(x, y) = ∫_{|p|<=R} d^dp/(2π)^d e^{ip·(x−y)}/(p² + m²)  (nnft.freeprop),
-- which tends to e^{−m r}/(2m) (d = 1) or e^{−m r}/(4π r) (d = 3) as R → ∞. At finite N the field
-- is not free: its connected 4-point function is exactly (physics.md §3.4, docs/api/finite.md)
--   G4_c = (σ_a⁴/N) [ (3/8) Σ_3 g4(x1 ± x2 ± x3 ± x4) − (1/4) Σ_3 g2 g2 ],
-- where g2 is the propagator and g4(v) = E_b[A⁴ cos(b·v)] the *squared* propagator kernel
-- ∫ d^dp e^{ipv}/(p²+m²)² (nnft.freeprop with power = 2). This recipe samples the ensemble at a few
-- widths and compares: measured G2 with the cutoff propagator, and measured G4_c with the exact
-- prediction (z-scores from bagged error bars; χ²/dof = mean z² over tuples, which ignores the
-- strong correlations between tuples, so it scatters more than a true χ²), showing N·G4_c
-- collapsing onto one curve.
--
--   nnft examples/nnqft/cosnet_free_field.lua                         (d = 1, about 10 s)
--   nnft examples/nnqft/cosnet_free_field.lua d=3 R=6 m=0.5 xmax=2 E=4e5
--
-- Outputs in out=: two_point.csv, four_point.csv, propagator.png (G2 vs the cutoff and continuum
-- propagators), four_point.png (N·G4_c measured vs exact), spectrum.png (the momentum-space
-- propagator), each with its data and gnuplot script; manifest.json.

local nnft = nnft or require "nnft"

local args = nnft.args{
  d = 1,
  R = 10.0,            -- UV cutoff: frequencies uniform in the ball |b| <= R
  m = 1.0,             -- mass
  sigma_a = 1.0,
  widths = { 2, 10, 100 },
  E = 1000000,         -- networks per width
  bags = 20,
  n = 6,               -- input points x_i = (i−1) xmax/(n−1) along the first axis
  xmax = 3.0,
  seed = 7,
  out = "out/cosnet_free_field",
}
if args.d < 1 or args.d > 3 then error("cosnet_free_field: d must be 1, 2 or 3", 0) end
if args.n < 2 or args.n > 12 then error("cosnet_free_field: n must be between 2 and 12", 0) end
if args.bags < 2 or args.E < 2 * args.bags then
  error("cosnet_free_field: need bags >= 2 and E >= 2 bags", 0)
end
if not (args.m > 0) then
  error("cosnet_free_field: the 4-point function needs m > 0 (E[A^4] diverges at b = 0 for m = 0)", 0)
end

local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }

-- Inputs along the first axis.
local rows = {}
for i = 1, args.n do
  rows[i] = {}
  for c = 1, args.d do rows[i][c] = 0.0 end
  rows[i][1] = (i - 1) * args.xmax / (args.n - 1)
end
local X = nnft.mat(rows)
local fp = { d = args.d, R = args.R, m = args.m }

-- The continuum (R = ∞) propagator where it has a closed form.
local function continuum(r)
  if args.d == 1 then return math.exp(-args.m * r) / (2 * args.m) end
  if args.d == 3 and r > 0 then return math.exp(-args.m * r) / (4 * math.pi * r) end
  return nil
end

local two = { N = {}, i = {}, j = {}, r = {}, exact = {}, measured = {}, err = {}, z = {} }
local four = { N = {}, t = {}, i1 = {}, i2 = {}, i3 = {}, i4 = {}, exact = {}, measured = {},
               err = {}, z = {} }
local prop_series, four_series, summary = {}, {}, {}
local colors = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b" }
local Kcheck

for wi, N in ipairs(args.widths) do
  local arch = nnft.cosnet{ d_in = args.d, width = N, radius = args.R, mass = args.m,
                            sigma_a = args.sigma_a }
  run:record_spec(arch) -- the manifest says which networks produced the outputs
  local K = nnft.finite.g2(arch, X)                 -- exact: the cutoff propagator
  local t4, g4c = nnft.finite.g4c(arch, X)          -- exact, ∝ 1/N
  if not Kcheck then                                -- K is freeprop(|x_i − x_j|)
    local worst = 0
    for i = 1, args.n do
      for j = 1, args.n do
        local r = math.abs(X:get(i, 1) - X:get(j, 1))
        worst = math.max(worst, math.abs(K:get(i, j) - nnft.freeprop(r, fp)))
      end
    end
    Kcheck = worst
  end
  local G = arch:sample(args.E, { seed = args.seed * 7919 + wi }):npoints(X, { 2, 4 },
                                                                          { bags = args.bags })
  local C4 = nnft.corr.connected(G[2], G[4])        -- measured G4_c with bag error bars

  -- two-point function per sorted pair
  local zmax2, chi2, cnt2 = 0, 0, 0
  local xs, ys, es = {}, {}, {}
  for r = 1, G[2].tuples:rows() do
    local i, j = G[2].tuples:get(r, 1), G[2].tuples:get(r, 2)
    local ex, me, er = K:get(i, j), G[2].values:get(r, 1), G[2].errors:get(r, 1)
    local z = (me - ex) / er
    zmax2, chi2, cnt2 = math.max(zmax2, math.abs(z)), chi2 + z * z, cnt2 + 1
    local dist = math.abs(X:get(i, 1) - X:get(j, 1))
    for k, v in pairs{ N = N, i = i, j = j, r = dist, exact = ex, measured = me, err = er, z = z } do
      table.insert(two[k], v)
    end
    if i == 1 then xs[#xs + 1], ys[#ys + 1], es[#es + 1] = dist, me, er end
  end
  prop_series[#prop_series + 1] = { x = xs, y = ys, yerr = es, style = "errorbars",
                                    color = colors[(wi - 1) % #colors + 1],
                                    label = ("measured G_2(0, r), N = %d"):format(N) }

  -- connected four-point function per sorted 4-tuple
  local zmax4, chi4, cnt4 = 0, 0, 0
  local ti, yN, eN, exN = {}, {}, {}, {}
  for r = 1, t4:rows() do
    local ex, me, er = g4c:get(r, 1), C4.values:get(r, 1), C4.errors:get(r, 1)
    local z = (me - ex) / er
    zmax4, chi4, cnt4 = math.max(zmax4, math.abs(z)), chi4 + z * z, cnt4 + 1
    for k, v in pairs{ N = N, t = r, i1 = t4:get(r, 1), i2 = t4:get(r, 2), i3 = t4:get(r, 3),
                       i4 = t4:get(r, 4), exact = ex, measured = me, err = er, z = z } do
      table.insert(four[k], v)
    end
    ti[r], yN[r], eN[r], exN[r] = r, N * me, N * er, N * ex
  end
  four_series[#four_series + 1] = { x = ti, y = yN, yerr = eN, style = "errorbars",
                                    color = colors[(wi - 1) % #colors + 1],
                                    label = ("N G_4c measured, N = %d"):format(N) }
  if wi == #args.widths then
    four_series[#four_series + 1] = { x = ti, y = exN, style = "lines", color = "black", width = 2,
                                      label = "N G_4c exact (same for every N)" }
  end
  summary[#summary + 1] = { N = N, zmax2 = zmax2, chi2 = chi2 / cnt2, zmax4 = zmax4,
                            chi4 = chi4 / cnt4, rel = (function()
                              local s, c = 0, 0
                              for r = 1, t4:rows() do
                                s = s + math.abs(g4c:get(r, 1)) / C4.errors:get(r, 1)
                                c = c + 1
                              end
                              return s / c
                            end)() }
end

-- the propagator on a fine grid: cutoff (exact G2) and continuum
local rf = nnft.mat.linspace(0, args.xmax, 121)
local Gf = nnft.freeprop(rf, fp)
table.insert(prop_series, 1, { x = rf, y = Gf, style = "lines", color = "black", width = 2,
                               label = ("cutoff propagator, R = %g (exact G_2)"):format(args.R) })
local cx, cy = {}, {}
for k = 1, rf:rows() do
  local v = continuum(rf:get(k, 1))
  if v then cx[#cx + 1], cy[#cy + 1] = rf:get(k, 1), v end
end
if #cx > 0 then
  table.insert(prop_series, 2, { x = cx, y = cy, style = "lines", color = "gray",
                                 label = "continuum R = ∞" })
end
nnft.plot.lines{ file = run:path("propagator.png"), series = prop_series, key = "top right",
                 title = ("generalised cos-net, d = %d, m = %g: two-point function"):format(args.d,
                                                                                         args.m),
                 xlabel = "r = |x - y|", ylabel = "G_2(r)" }
nnft.plot.lines{ file = run:path("four_point.png"), series = four_series, key = "top right",
                 title = "N G_4c(x_i1..x_i4): measured at each width vs exact",
                 xlabel = "sorted 4-tuple (lexicographic)", ylabel = "N G_4c" }
local pk = nnft.mat.linspace(0, 1.5 * args.R, 301)
local Gp = nnft.freeprop(pk, { d = args.d, R = args.R, m = args.m, space = "momentum" })
local free = {}
for k = 1, pk:rows() do free[k] = 1 / (pk:get(k, 1) ^ 2 + args.m ^ 2) end
nnft.plot.lines{ file = run:path("spectrum.png"), logy = true, key = "top right",
                 series = { { x = pk, y = Gp, style = "lines", width = 2,
                              label = "cos-net spectrum (cutoff R)" },
                            { x = pk, y = free, style = "lines", color = "gray",
                              label = "1/(p^2 + m^2)" } },
                 title = "power spectrum of the generalised cos-net", xlabel = "|p|",
                 ylabel = "G~(p)" }

nnft.io.write_csv(run:path("two_point.csv"), two, {
  columns = { "N", "i", "j", "r", "exact", "measured", "err", "z" },
  meta = { d = args.d, R = args.R, m = args.m, E = args.E, bags = args.bags,
           exact = "nnft.finite.g2 = nnft.freeprop(r)" } })
nnft.io.write_csv(run:path("four_point.csv"), four, {
  columns = { "N", "t", "i1", "i2", "i3", "i4", "exact", "measured", "err", "z" },
  meta = { d = args.d, R = args.R, m = args.m, E = args.E, bags = args.bags,
           exact = "nnft.finite.g4c", measured = "nnft.corr.connected(G2, G4)" } })
run:finish()

print(("cosnet_free_field: d = %d, R = %g, m = %g, %d points on [0, %g], E = %d, %d bags")
      :format(args.d, args.R, args.m, args.n, args.xmax, args.E, args.bags))
print(("  exact G2 = cutoff propagator to %.1e"):format(Kcheck))
for _, s in ipairs(summary) do
  print(("  N = %-5d G2: max |z| %.2f, chi2/dof %.2f   G4_c: max |z| %.2f, chi2/dof %.2f, "
         .. "mean |exact|/err %.1f"):format(s.N, s.zmax2, s.chi2, s.zmax4, s.chi4, s.rel))
end
print("  outputs in " .. args.out .. " (two_point.csv, four_point.csv, propagator/four_point/"
      .. "spectrum .png/.svg, manifest.json)")
