-- The free theory of the NN–QFT correspondence, built from nnft's foundation.
--
-- At infinite width a one-hidden-layer ReLU network is a Gaussian field whose propagator is the
-- NNGP kernel (physics.md §2.3):
--   K(x,x') = σ_b² + (σ_w²/2π) sqrt(k(x,x) k(x',x')) [sin θ + (π − θ) cos θ],
--   k(x,x') = σ_b² + σ_w² x x',  θ = atan2(sqrt(k k' − k(x,x')²), k(x,x'))   (d = 1).
-- This recipe samples that field (Cholesky with the jitter policy of §5.1, Philox normals),
-- measures its two-point function and the four-point function at (x_i, x_i, x_j, x_j), and checks
-- them against K and against Wick's theorem G4 = K_ii K_jj + 2 K_ij² within error bars. It also
-- draws a few field configurations on a fine grid and the Mercer spectrum of K on the grid.
--
--   nnft examples/foundation/gp_propagator.lua samples=40000 n=8 seed=42 out=out/gp_propagator

local nnft = nnft or require "nnft"

local args = nnft.args{
  n = 8,            -- input points on [-xmax, xmax]
  xmax = 2.0,
  samples = 40000,  -- field configurations for the correlators
  sigma_w = 1.0,
  sigma_b = 1.0,
  draws = 5,        -- configurations drawn on the fine grid
  fine = 200,       -- points of the fine grid
  seed = 42,
  out = "out/gp_propagator",
}
if args.n < 2 or args.samples < 100 or args.fine < 2 then
  error("gp_propagator: need n >= 2, samples >= 100 and fine >= 2", 0)
end

local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }
local rng = nnft.rng(args.seed)

-- The ReLU NNGP kernel between the points of two column vectors.
local function relu_kernel(x, y)
  local sw2, sb2 = args.sigma_w ^ 2, args.sigma_b ^ 2
  return nnft.mat.fromfunction(x:rows(), y:rows(), function(i, j)
    local a, b = x:get(i, 1), y:get(j, 1)
    local kaa, kbb, kab = sb2 + sw2 * a * a, sb2 + sw2 * b * b, sb2 + sw2 * a * b
    local theta = math.atan(math.sqrt(math.max(kaa * kbb - kab * kab, 0)), kab)
    return sb2 + sw2 / (2 * math.pi) * math.sqrt(kaa * kbb)
                 * (math.sin(theta) + (math.pi - theta) * math.cos(theta))
  end)
end

-- 1. Field configurations at the n inputs: f = L z with K = L Lᵀ, z ~ N(0, I).
local X = nnft.mat.linspace(-args.xmax, args.xmax, args.n)
local K = relu_kernel(X, X)
local L, jitter = nnft.linalg.chol(K, { jitter = true })
local F = L * rng:stream(1):normal(args.n, args.samples)   -- n x S, column s = one configuration
local S = args.samples

-- 2. Two-point function and its error bar: Var(f_i f_j) = E[f_i² f_j²] − G_ij².
local G2 = F:aat() / S
local F2 = F:square()
local M22 = F2:aat() / S                                    -- E[f_i² f_j²]
local err2 = ((M22 - G2:square()) / S):sqrt()

-- 3. Four-point function at (i, i, j, j): E[f_i² f_j²] vs Wick, error from E[f_i⁴ f_j⁴].
local M44 = F2:square():aat() / S
local err4 = ((M44 - M22:square()) / S):sqrt()
local wick = nnft.mat.fromfunction(args.n, args.n, function(i, j)
  return K:get(i, i) * K:get(j, j) + 2 * K:get(i, j) ^ 2
end)

-- 4. Compare over the sorted pairs i <= j ([HMS] deviation metric and its noise floor, §3.1).
local cols = { i = {}, j = {}, x_i = {}, x_j = {}, K = {}, G2 = {}, err2 = {}, z2 = {},
               wick4 = {}, G4 = {}, err4 = {}, z4 = {} }
local m2, bg2, m4, bg4, within2, within4, npairs = 0, 0, 0, 0, 0, 0, 0
for i = 1, args.n do
  for j = i, args.n do
    local k, g, e = K:get(i, j), G2:get(i, j), err2:get(i, j)
    local w, g4, e4 = wick:get(i, j), M22:get(i, j), err4:get(i, j)
    local z2, z4 = (g - k) / e, (g4 - w) / e4
    npairs = npairs + 1
    m2, bg2 = m2 + math.abs(g - k) / k, bg2 + e / k
    m4, bg4 = m4 + math.abs(g4 - w) / w, bg4 + e4 / w
    if math.abs(z2) < 2 then within2 = within2 + 1 end
    if math.abs(z4) < 2 then within4 = within4 + 1 end
    local row = { i = i, j = j, x_i = X:get(i, 1), x_j = X:get(j, 1), K = k, G2 = g, err2 = e,
                  z2 = z2, wick4 = w, G4 = g4, err4 = e4, z4 = z4 }
    for name, v in pairs(row) do table.insert(cols[name], v) end
  end
end
m2, bg2, m4, bg4 = m2 / npairs, bg2 / npairs, m4 / npairs, bg4 / npairs

nnft.io.write_csv(run:path("correlators.csv"), cols, {
  columns = { "i", "j", "x_i", "x_j", "K", "G2", "err2", "z2", "wick4", "G4", "err4", "z4" },
  meta = { samples = S, jitter = jitter, m2 = m2, background2 = bg2, m4 = m4, background4 = bg4 },
})

-- 5. Figures: G2(x_i, x_j) against K along three rows; draws on a fine grid; Mercer spectrum.
local series = {}
for _, i in ipairs{ 1, (args.n + 1) // 2, args.n } do
  local xs, ks, gs, es = {}, {}, {}, {}
  for j = 1, args.n do
    xs[j], ks[j], gs[j], es[j] = X:get(j, 1), K:get(i, j), G2:get(i, j), err2:get(i, j)
  end
  local label = string.format("x' = %.2f", X:get(i, 1))
  table.insert(series, { x = xs, y = gs, yerr = es, style = "errorbars", label = "measured, " .. label })
  table.insert(series, { x = xs, y = ks, style = "lines", label = "kernel, " .. label })
end
nnft.plot.lines{ file = run:path("two_point.png"), series = series, key = "top left",
                 title = "ReLU NNGP field: G_2(x, x') vs the kernel", xlabel = "x", ylabel = "G_2(x, x')" }

local Xf = nnft.mat.linspace(-args.xmax, args.xmax, args.fine)
local Lf, jitter_fine = nnft.linalg.chol(relu_kernel(Xf, Xf), { jitter = true })
local draws = Lf * rng:stream(2):normal(args.fine, args.draws)
local dseries = {}
for d = 1, args.draws do
  dseries[d] = { x = Xf, y = draws:col(d), style = "lines", label = "draw " .. d }
end
nnft.plot.lines{ file = run:path("draws.png"), series = dseries, key = false,
                 title = string.format("field configurations (jitter %.1e)", jitter_fine),
                 xlabel = "x", ylabel = "f(x)" }

local lambda = nnft.linalg.eigh(relu_kernel(Xf, Xf) / args.fine, { vectors = false })
local ks, ls = {}, {}
for k = 1, math.min(40, args.fine) do
  ks[k], ls[k] = k, math.max(lambda:get(k, 1), 1e-300)
end
nnft.plot.lines{ file = run:path("spectrum.png"), series = { { x = ks, y = ls, style = "linespoints" } },
                 logy = true, key = false, title = "Mercer spectrum of K on the grid",
                 xlabel = "mode k", ylabel = "lambda_k" }

run:finish()

print(string.format("gp_propagator: %d points, %d configurations, jitter %.1e", args.n, S, jitter))
print(string.format("  two-point : m2 = %.4f  (noise floor %.4f), %d/%d pairs within 2 sigma",
                    m2, bg2, within2, npairs))
print(string.format("  four-point: m4 = %.4f  (noise floor %.4f), %d/%d pairs within 2 sigma of Wick",
                    m4, bg4, within4, npairs))
print("  outputs in " .. args.out .. " (correlators.csv, two_point/draws/spectrum .png/.svg, manifest.json)")
