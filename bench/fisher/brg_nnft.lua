-- bench/fisher/brg_nnft.lua: the work of examples/brg/bayes_nn_ft.lua (physics.md §7.5) with an
-- ensemble of `members` networks, timed end to end: draw the networks, train the readouts by
-- per-sample SGD (lr 1e-6, fixed order, batch 1), the diagonal readout Fisher on the Fisher
-- inputs, the 25 cumulative cutoffs with resampling from N(0, 1), the test MSE of every
-- coarse-grained member. The same calls as the recipe (arch:init_many, nnft.train_ensemble,
-- nnft.fisher form="diag", nnft.shell.schedule basis="diag", Net:loss, composed by nnft.brg.flow).
--
-- The data (generated as the recipe does) and the initial parameters of every member are written
-- to $BENCH_DIR as .npy (outside the timed region) so that bench/fisher/brg_torch.py trains the
-- same networks on the same data: the ensemble-mean test MSE of the trained members (Λ = 0) is
-- the checksum and must agree to rounding; after resampling the draws differ (each program its
-- own generator), so the coarse-grained MSEs agree only statistically.
--
-- Prints one line: time (and the training part of it), members kept, the Λ = 0 checksum, and the mean MSE at Λ = 1e-4 and 1e5.
local nnft = nnft or require "nnft"
local args = nnft.args{ members = 100, epochs = 1000, width = 2000, n_train = 200, n_test = 200,
                        fisher_inputs = 10, lr = 1e-6, threads = 1, seed = 1, mse_max = 1e3 }
local core = require "nnft.core"
local wall = core._io.clock
local dir = os.getenv("BENCH_DIR") or "."

local cutoffs = { 1e-4, 5e-3, 7.5e-3, 1e-2, 5e-2, 7.5e-2, 0.1, 0.5, 0.75, 1, 5, 7.5, 10, 50, 75,
                  100, 500, 750, 1e3, 5e3, 7.5e3, 1e4, 5e4, 7.5e4, 1e5 }
local grid = { 0 }
for _, c in ipairs(cutoffs) do grid[#grid + 1] = c end

-- data exactly as the recipe draws it
local rng = nnft.rng(args.seed)
local function inputs(stream, n) return rng:stream(stream):normal(n, 2, { mean = 1 }) end
local function target(X)
  return nnft.mat.fromfunction(X:rows(), 1, function(i)
    local x0, x1 = X:get(i, 1), X:get(i, 2)
    return (1 - x0) ^ 2 - 0.5 * (x1 - x0 * x0)
  end)
end
local Xtr, Xte, Xf = inputs(1, args.n_train), inputs(2, args.n_test), inputs(3, args.fisher_inputs)
local ytr, yte = target(Xtr), target(Xte)
local W = args.width
local arch = nnft.mlp{ d_in = 2, width = { 10, 10, W }, act = { "linear", "relu", "relu" },
                       bias = false, sigma_w = { math.sqrt(2), math.sqrt(10), math.sqrt(10), math.sqrt(W) },
                       frozen = { 1, 2, 3 } }

-- the peer's inputs (not timed)
do
  local init = arch:init_many{ count = args.members, seed = args.seed }
  local cols = {}
  for i, net in ipairs(init) do cols[i] = net:params() end
  nnft.io.write_npy(dir .. "/theta0.npy", nnft.mat.hcat(table.unpack(cols)))  -- P x members
  for name, m in pairs{ Xtr = Xtr, ytr = ytr, Xte = Xte, yte = yte, Xf = Xf } do
    nnft.io.write_npy(dir .. "/" .. name .. ".npy", m)
  end
end
collectgarbage()

local t0 = wall()
local nets = arch:init_many{ count = args.members, seed = args.seed }
local _, hists = nnft.train_ensemble(nets, { X = Xtr, y = ytr, optimizer = "sgd", lr = args.lr,
                                             epochs = args.epochs, order = "fixed", seed = args.seed,
                                             threads = args.threads })
local t_train = wall() - t0
-- the recipe's coarse graining, through the library (nnft.brg.flow: per-member diagonal Fisher,
-- cumulative resampling schedule, outlier mask, test MSE per Λ)
local res = nnft.brg.flow(nets, grid, { X = Xf, form = "diag", sigma = 1 },
                          { X_test = Xte, y_test = yte, basis = "diag", action = "resample",
                            seed = args.seed, mse_max = args.mse_max, histories = hists })
local t = wall() - t0
local kept = #res.members
print(string.format("nnft   members=%d epochs=%d  time %.3f s  train %.3f s  kept %d  mse(0) %.12e  mse(1e-4) %.6g  mse(1e5) %.6g",
  args.members, args.epochs, t, t_train, kept, res[1].mse, res[2].mse, res[#grid].mse))
