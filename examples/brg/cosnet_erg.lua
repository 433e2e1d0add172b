-- Information shells are momentum shells (physics.md §7.4; [HKMS] arXiv:2405.17538): for the
-- generalised (free-scalar) cos-net in d = 1 with a trained-readout Fisher, the readout Fisher is
-- diagonal in the neuron basis with
--     λ(b) = vol(B_R) / (N σ_ε² (2π)^d (|b|² + m²))          (per-example Fisher, T = 1)
-- so the sloppy set {λ < Λ} is the momentum shell {|b| > R_Λ}, R_Λ² = vol(B_R)/(N σ_ε² (2π)^d Λ) − m²,
-- and removing it leaves the free theory with cutoff R_Λ: Wilson's momentum-shell ERG.
--
-- The recipe (1) compares the readout Fisher of one network (diagonal and exact Gram-form
-- eigenvalues) with λ(b); (2) for a grid of Λ, checks that the information shell equals the
-- momentum shell neuron by neuron, over an ensemble; (3) coarse-grains an ensemble of cos-nets at
-- one Λ (action=zero: the sloppy readout weights removed) and compares its two-point function
-- G(r) with the free propagator of cutoff R_Λ, (1/π)∫_0^{R_Λ} cos(pr)/(p² + m²) dp, and with the
-- original cutoff R. The readout uses the NTK parameterisation (a ~ N(0,1), multiplied by
-- σ_a/√N), the one for which λ(b) holds as written.
--
-- Outputs under out=: fisher.csv (b, λ diag, λ(b)), shells.csv, g2.csv, g2.png, manifest.json.
--
--   nnft examples/brg/cosnet_erg.lua width=200 members=2000 cutoff=0.05

local nnft = nnft or require "nnft"

local args = nnft.args{
  width = 100,       -- N neurons
  radius = 5,        -- UV cutoff R
  mass = 1,          -- m
  box = 100,         -- Fisher inputs on a grid over [-box, box] (>> 1/Δb)
  n_inputs = 400,    -- Fisher inputs (spacing must resolve frequencies up to R: n >= 2 box R/π)
  members = 4000,    -- ensemble size for the shells and G(r)
  cutoff = 0.0,      -- Λ for step (3); 0: the Λ with R_Λ = R/2
  seed = 1,
  plot = true,
  out = "out/cosnet_erg",
}
local N, R, m, sigma = args.width, args.radius, args.mass, 1.0
if args.n_inputs < 2 * args.box * R / math.pi then
  print(string.format("cosnet_erg: warning: n_inputs = %d < 2 box R/π = %.0f: the input grid aliases high frequencies",
                      args.n_inputs, 2 * args.box * R / math.pi))
end
-- λ(b) and R_Λ of physics.md §7.4 (nnft.brg, docs/api/brg.md); T = 1: the per-example Fisher
local cos = { R = R, m = m, N = N, d = 1, sigma = sigma }
local function lambda_of_b(b) return nnft.brg.fisher_of_momentum(b, cos) end
local function R_of_lambda(L) return nnft.brg.cosnet_cutoff(L, cos) end

local arch = nnft.cosnet{ d_in = 1, width = N, radius = R, mass = m, frozen = { 1 }, param = "ntk" }
local Xf = nnft.mat.linspace(-args.box, args.box, args.n_inputs)

-- (1) one network: diagonal and exact eigenvalues vs λ(b)
local net = arch:init{ seed = args.seed }
local p = net:params()
local F = nnft.fisher(net, Xf, { form = "gram", sigma = sigma })
local lam = F:eigen{ vectors = false }
local d = F:diag()
local bs, ld, lth = {}, {}, {}
for i = 1, N do bs[i], ld[i], lth[i] = p:get(i, 1), d:get(i, 1), lambda_of_b(p:get(i, 1)) end
local sorted_th = {}
for i = 1, N do sorted_th[i] = lth[i] end
table.sort(sorted_th, function(a, b) return a > b end)
local rel_d, rel_e = {}, {}
for i = 1, N do
  rel_d[i] = math.abs(ld[i] / lth[i] - 1)
  if i <= lam:rows() then rel_e[#rel_e + 1] = math.abs(lam:get(i, 1) / sorted_th[i] - 1) end
end
local function median(t) local c = {} for i, v in ipairs(t) do c[i] = v end table.sort(c) return c[(#c + 1) // 2] end
print(string.format("cosnet_erg: N = %d, R = %g, m = %g, %d Fisher inputs on [-%g, %g]", N, R, m,
                    args.n_inputs, args.box, args.box))
print(string.format("  (1) readout Fisher vs λ(b) = vol(B_R)/(N σ² 2π (b² + m²)): median relative error "
                    .. "%.3g (diagonal), %.3g (exact eigenvalues vs sorted λ(b): b and -b, and neighbours closer "
                    .. "than 1/box, are nearly degenerate and mix)", median(rel_d), median(rel_e)))

-- (2) information shell = momentum shell, over the ensemble
local nets = arch:init_many{ count = args.members, seed = args.seed + 1 }
local grid = { lambda_of_b(0.9 * R), lambda_of_b(0.75 * R), lambda_of_b(0.5 * R), lambda_of_b(0.25 * R) }
local mism, total = {}, {}
for j = 1, #grid do mism[j], total[j] = 0, 0 end
local Fs = {}
for e, n2 in ipairs(nets) do
  local Fe = nnft.fisher(n2, Xf, { form = "diag", sigma = sigma })
  Fs[e] = Fe
  local pe, de = n2:params(), Fe:diag()
  for j, L in ipairs(grid) do
    local RL = R_of_lambda(L)
    for i = 1, N do
      local info_shell = de:get(i, 1) < L
      local mom_shell = math.abs(pe:get(i, 1)) > RL
      if info_shell ~= mom_shell then mism[j] = mism[j] + 1 end
      total[j] = total[j] + 1
    end
  end
end
print("  (2) information shell {λ < Λ} vs momentum shell {|b| > R_Λ}, neuron by neuron:")
for j, L in ipairs(grid) do
  print(string.format("      Λ = %.4g  R_Λ = %.3f  mismatched neurons %d of %d", L, R_of_lambda(L), mism[j], total[j]))
end

-- (3) coarse-grained ensemble two-point function vs the propagator with cutoff R_Λ
local L = args.cutoff > 0 and args.cutoff or lambda_of_b(R / 2)
local RL = R_of_lambda(L)
local rs = nnft.mat.linspace(0, 3, 13)
local Xr = rs
local X0 = nnft.mat.zeros(1, 1)
local acc, acc2 = {}, {}
for k = 1, rs:rows() do acc[k], acc2[k] = 0, 0 end
for e, n2 in ipairs(nets) do
  local cg = nnft.shell.coarse_grain(n2, Fs[e], L, { basis = "diag", action = "zero" })
  local f0 = cg:forward(X0):get(1, 1)
  local fr = cg:forward(Xr)
  for k = 1, rs:rows() do
    local v = f0 * fr:get(k, 1)
    acc[k], acc2[k] = acc[k] + v, acc2[k] + v * v
  end
  cg:release()
end
local function prop(r, cut) -- (1/π) ∫_0^cut cos(pr)/(p² + m²) dp, Simpson
  local n = 2000
  local h = cut / n
  local s = 0
  for i = 0, n do
    local q = i * h
    local w = (i == 0 or i == n) and 1 or (i % 2 == 1 and 4 or 2)
    s = s + w * math.cos(q * r) / (q * q + m * m)
  end
  return s * h / 3 / math.pi
end
local E = #nets
local col = { r = {}, G = {}, err = {}, G_RL = {}, G_R = {} }
print(string.format("  (3) coarse-grained at Λ = %.4g (R_Λ = %.3f): ensemble G(r) vs the free propagator", L, RL))
print("         r      G(r) ensemble     ± err     cutoff R_Λ    cutoff R")
local chi2 = 0
for k = 1, rs:rows() do
  local r = rs:get(k, 1)
  local mean = acc[k] / E
  local err = math.sqrt(math.max(acc2[k] / E - mean * mean, 0) / (E - 1))
  col.r[k], col.G[k], col.err[k], col.G_RL[k], col.G_R[k] = r, mean, err, prop(r, RL), prop(r, R)
  chi2 = chi2 + ((mean - col.G_RL[k]) / err) ^ 2
  print(string.format("  %8.3f   %12.5f   %9.5f   %12.5f   %10.5f", r, mean, err, col.G_RL[k], col.G_R[k]))
end
print(string.format("      χ² against cutoff R_Λ: %.1f for %d points (the points share their networks, so "
                    .. "they are correlated: read it as a rough guide)", chi2, rs:rows()))

local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }
run:record_spec(arch) -- the manifest says which network produced the outputs
nnft.io.write_csv(run:path("fisher.csv"), { b = bs, lambda_diag = ld, lambda_b = lth },
                  { columns = { "b", "lambda_diag", "lambda_b" } })
nnft.io.write_csv(run:path("g2.csv"), col, { columns = { "r", "G", "err", "G_RL", "G_R" },
                  meta = { cutoff = L, R_Lambda = RL } })
if args.plot then
  local ok, err = pcall(nnft.plot.lines, { file = run:path("g2.png"), xlabel = "r", ylabel = "G(r)",
    title = string.format("coarse-grained cos-net ensemble, Λ = %.3g", L),
    series = { { x = col.r, y = col.G, yerr = col.err, label = "ensemble after BRG" },
               { x = col.r, y = col.G_RL, style = "lines", label = string.format("free propagator, cutoff R_Λ = %.2f", RL) },
               { x = col.r, y = col.G_R, style = "lines", label = string.format("free propagator, cutoff R = %g", R) } } })
  if not ok then print("  (plot skipped: " .. tostring(err) .. ")") end
end
run:finish()
print("  outputs in " .. args.out)
