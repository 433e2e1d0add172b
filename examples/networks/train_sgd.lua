-- Train one network on a 1-d function with per-sample SGD (or GD / Adam) and print the loss curve.
--
-- A one-hidden-layer network f(x) (nnft.mlp, physics.md §1.1) is fitted to y = target(x) on n
-- points of [-xmax, xmax] by minimising the mean squared error. With the defaults this is the
-- training protocol of the BRG experiment (physics.md §7.5): batch 1, fixed order, loss (f − y)².
-- The recipe prints the training MSE every `record` epochs and the test MSE on a fine grid, and
-- writes loss.csv (epoch, train MSE) and fit.csv (x, target, f before, f after) under out=.
--
--   nnft examples/networks/train_sgd.lua width=200 act=tanh lr=0.01 epochs=300 order=shuffled

local nnft = nnft or require "nnft"

local targets = {
  sin = function(x) return math.sin(2 * x) end,
  gauss = function(x) return math.exp(-2 * x * x) end,
  abs = function(x) return math.abs(x) end,
  cubic = function(x) return x * x * x - x end,
}

local args = nnft.args{
  width = 100,         -- hidden width
  act = "tanh",        -- activation (any nnft.mlp name)
  param = "standard",  -- "standard" or "ntk"
  target = "sin",      -- sin | gauss | abs | cubic
  n = 20,              -- training points
  xmax = 1.5,
  optimizer = "sgd",   -- sgd | gd | adam
  lr = 0.01,
  epochs = 200,
  order = "fixed",     -- fixed | shuffled
  record = 20,         -- epochs between loss records
  seed = 1,
  out = "out/train_sgd",
}
local target = targets[args.target]
if not target then
  error("train_sgd: target must be one of sin, gauss, abs, cubic, got '" .. args.target .. "'", 0)
end
if args.n < 1 then error("train_sgd: need n >= 1", 0) end

local X = nnft.mat.linspace(-args.xmax, args.xmax, args.n)
local y = X:map(target)
local Xf = nnft.mat.linspace(-args.xmax, args.xmax, 200)
local yf = Xf:map(target)

local arch = nnft.mlp{ d_in = 1, width = args.width, act = args.act, param = args.param }
local net = arch:init{ seed = args.seed }
local f0 = net:forward(Xf)
local test0 = net:loss(Xf, yf)
local _, hist = net:train{ X = X, y = y, optimizer = args.optimizer, lr = args.lr,
                           epochs = args.epochs, order = args.order, seed = args.seed,
                           record = args.record }
local f1 = net:forward(Xf)

print(string.format("train_sgd: %s, %d points of %s, %s lr=%g, %d epochs (%s order)",
                    tostring(arch), args.n, args.target, args.optimizer, args.lr, args.epochs,
                    args.order))
print("  epoch   train MSE")
for k, e in ipairs(hist.epoch) do
  print(string.format("  %5d   %.6e", e, hist.loss[k]))
end
print(string.format("  test MSE on 200 points: %.6e before, %.6e after", test0, net:loss(Xf, yf)))

-- Results on disk when nnft.io is available (it is in a full build).
local ok, io_mod = pcall(function() return nnft.io end)
if ok and io_mod then
  local run = io_mod.run{ out = args.out, args = args, seed = args.seed }
  run:record_spec(arch) -- the manifest says which network produced the outputs
  io_mod.write_csv(run:path("loss.csv"), { epoch = hist.epoch, loss = hist.loss },
                   { columns = { "epoch", "loss" }, meta = { arch = tostring(arch) } })
  io_mod.write_csv(run:path("fit.csv"), { x = Xf, target = yf, f_init = f0, f_trained = f1 },
                   { columns = { "x", "target", "f_init", "f_trained" } })
  run:finish()
  print("  outputs in " .. args.out .. " (loss.csv, fit.csv, manifest.json)")
end
