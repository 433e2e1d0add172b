-- The published BRG-NNFT experiment (physics.md §7.5; [HKMS] arXiv:2405.17538): an ensemble of
-- wide networks with frozen random features and a trained readout is coarse-grained by
-- information shells of the readout Fisher, cumulatively over 25 cutoffs Λ; the ensemble-mean
-- test MSE is flat up to a critical Λ_C and then rises steeply as more readout weights are
-- resampled from their prior.
--
-- Network: 2 → 10 (identity) → 10 (ReLU) → W (ReLU) → 1, no biases, all weights N(0, 1) used as
-- drawn (standard parameterisation with sigma_w = sqrt(fan_in)), the first three layers frozen.
-- Data: x ~ N((1,1), I₂), 200 train, 200 test, `fisher_inputs` Fisher inputs, target
-- y = (1 − x0)² − 0.5 (x1 − x0²), no label noise. Training: per-sample SGD, lr 1e-6, fixed order,
-- loss (f − y)². Fisher: the readout Fisher with σ_ε = 1, per-example mean (its diagonal
-- I_i = (1/n_F) Σ_a h_i(x_a)² for basis=diag; the exact eigen-shells from the Gram form for
-- basis=eigen, whose null space is sloppy at every Λ > 0). Members with pre-RG test MSE >= 1e3
-- or NaN are dropped as poorly trained.
--
-- Outputs under out=: mse.csv (Λ, mean test MSE, standard error, mean sloppy count), mse.png
-- (log Λ axis; the Λ = 0 point drawn at 1e-5), outputs.csv (f at one test input, per member
-- and cutoff), hist_<k>.png for a few cutoffs with the Gaussian fit in the title, manifest.json.
--
--   nnft examples/brg/bayes_nn_ft.lua members=50 epochs=1000
--   nnft examples/brg/bayes_nn_ft.lua fisher_inputs=200            -- the plateau appears
--   nnft examples/brg/bayes_nn_ft.lua basis=eigen action=zero

local nnft = nnft or require "nnft"

local args = nnft.args{
  members = 16,        -- ensemble size (the paper: 100s)
  epochs = 300,        -- SGD epochs (the paper: 1000)
  lr = 1e-6,
  width = 2000,        -- width of the last hidden layer
  n_train = 200,
  n_test = 200,
  fisher_inputs = 10,  -- Fisher inputs (10 in the paper; 200 shows the plateau)
  basis = "diag",      -- diag (the published numerics) | eigen (exact shells via the Gram form)
  action = "resample", -- resample (from N(0,1), the published numerics) | zero | marginalise
  strict = true,       -- sloppy = {λ < Λ} (true) or {λ <= Λ}
  mse_max = 1e3,       -- drop members with pre-RG test MSE >= this (or NaN)
  test_index = 1,      -- the test input whose output histograms are drawn
  seed = 1,
  threads = 0,         -- training threads (0: all)
  plot = true,
  out = "out/bayes_nn_ft",
}

local cutoffs = { 1e-4, 5e-3, 7.5e-3, 1e-2, 5e-2, 7.5e-2, 0.1, 0.5, 0.75, 1, 5, 7.5, 10, 50, 75,
                  100, 500, 750, 1e3, 5e3, 7.5e3, 1e4, 5e4, 7.5e4, 1e5 }
local grid = { 0 }
for _, c in ipairs(cutoffs) do grid[#grid + 1] = c end

if args.members < 1 or args.fisher_inputs < 1 then
  error("bayes_nn_ft: members and fisher_inputs must be >= 1", 0)
end

-- data: x ~ N((1,1), I₂) from three independent streams of the seed
local rng = nnft.rng(args.seed)
local function inputs(stream, n)
  return rng:stream(stream):normal(n, 2, { mean = 1 })
end
local function target(X)
  return nnft.mat.fromfunction(X:rows(), 1, function(i)
    local x0, x1 = X:get(i, 1), X:get(i, 2)
    return (1 - x0) ^ 2 - 0.5 * (x1 - x0 * x0)
  end)
end
local Xtr, Xte, Xf = inputs(1, args.n_train), inputs(2, args.n_test), inputs(3, args.fisher_inputs)
local ytr, yte = target(Xtr), target(Xte)
local xstar = Xte:block(args.test_index, 1, 1, 2)

local W = args.width
local arch = nnft.mlp{ d_in = 2, width = { 10, 10, W }, act = { "linear", "relu", "relu" },
                       bias = false, sigma_w = { math.sqrt(2), math.sqrt(10), math.sqrt(10), math.sqrt(W) },
                       frozen = { 1, 2, 3 } }
local nets = arch:init_many{ count = args.members, seed = args.seed }
local t0 = os.clock()
local _, hists = nnft.train_ensemble(nets, { X = Xtr, y = ytr, optimizer = "sgd", lr = args.lr,
                                             epochs = args.epochs, order = "fixed", seed = args.seed,
                                             threads = args.threads > 0 and args.threads or nil })
local t_train = os.clock() - t0

-- the flow (nnft.brg.flow, docs/api/brg.md): per member the readout Fisher on the Fisher inputs and
-- the cumulative schedule over the grid; members with pre-RG test MSE >= mse_max (or NaN, or a
-- diverged training) dropped; per Λ the mean test MSE and the outputs at x*
local res = nnft.brg.flow(nets, grid, { X = Xf, form = args.basis == "eigen" and "gram" or "diag", sigma = 1 },
                          { X_test = Xte, y_test = yte, X_probe = xstar, basis = args.basis,
                            action = args.action, strict = args.strict, seed = args.seed,
                            mse_max = args.mse_max, histories = hists })
local kept, dropped = res.members, res.dropped
local nk = #kept
local outs = {}     -- outs[j] = list of f(x*) over kept members
for j = 1, #grid do outs[j] = res[j].outputs:col(1):totable(true) end

print(string.format("bayes_nn_ft: %d members (%d dropped), width %d, %d epochs (%.1f s training), "
  .. "%d Fisher inputs, basis=%s action=%s%s", nk, dropped, W, args.epochs, t_train,
  args.fisher_inputs, args.basis, args.action, args.strict and "" or " (non-strict)"))
print("        Λ      mean test MSE   ± s.e.      mean sloppy / P")
local col = { lambda = {}, mse = {}, se = {}, sloppy = {} }
local P = W
for j, c in ipairs(grid) do
  local r = res[j]
  col.lambda[j], col.mse[j], col.se[j], col.sloppy[j] = c, r.mse, r.se, r.sloppy
  print(string.format("  %9.3g   %12.5g   %10.3g   %8.1f / %d", c, r.mse, r.se, r.sloppy, P))
end

local run = nnft.io.run{ out = args.out, args = args, seed = args.seed }
run:record_spec(arch) -- the manifest says which network produced the outputs
nnft.io.write_csv(run:path("mse.csv"), col, { columns = { "lambda", "mse", "se", "sloppy" },
  meta = { arch = tostring(arch), members = nk, dropped = dropped } })
local ocol, onames = { lambda = {}, member = {}, f = {} }, { "lambda", "member", "f" }
for j, c in ipairs(grid) do
  for k, v in ipairs(outs[j]) do
    local r = #ocol.f + 1
    ocol.lambda[r], ocol.member[r], ocol.f[r] = c, kept[k], v
  end
end
nnft.io.write_csv(run:path("outputs.csv"), ocol, { columns = onames,
  meta = { x_test = string.format("(%g, %g)", xstar:get(1, 1), xstar:get(1, 2)) } })

if args.plot then
  local ok, err = pcall(function()
    local xs, ys, es = {}, {}, {}
    for j = 2, #grid do xs[j - 1], ys[j - 1], es[j - 1] = grid[j], col.mse[j], col.se[j] end
    nnft.plot.lines{ file = run:path("mse.png"), logx = true, logy = true, xlabel = "cutoff Λ",
      ylabel = "ensemble-mean test MSE", title = "BRG-NNFT: information-shell coarse graining",
      xrange = { cutoffs[1] / 100, cutoffs[#cutoffs] * 10 },
      series = { { x = xs, y = ys, yerr = es, style = "linespoints", label = "after coarse graining" },
                 { x = { cutoffs[1] / 10 }, y = { col.mse[1] }, yerr = { col.se[1] },
                   style = "errorbars", label = "Λ = 0 (trained; drawn at 1e-5)" } } }
    for _, j in ipairs{ 1, 8, 14, 20, #grid } do
      local m, sd = res[j].mean[1], res[j].sd[1]
      nnft.plot.hist{ file = run:path(string.format("hist_%02d.png", j)), data = outs[j],
        density = true, bins = math.max(5, math.min(50, math.ceil(2 * nk ^ (1 / 3)))), xlabel = "f(x*)",
        title = string.format("Λ = %g: Gaussian fit mean %.4g, sd %.4g (%d members)", grid[j], m, sd, nk) }
    end
  end)
  if not ok then print("  (plots skipped: " .. tostring(err) .. ")") end
end
run:finish()
print("  outputs in " .. args.out)
