-- bench/ensemble/ensemble.lua: nnft's side of the ensemble benchmark (bench/ensemble/run.sh runs
-- it beside bench/ensemble/ensemble_numpy.py, which does the same work in numpy and PyTorch).
--
--   nnft bench/ensemble/ensemble.lua [E=100000] [width=1000] [bags=10] [threads=1] [reps=1]
--
-- E one-hidden-layer ReLU networks (d = 1, sigma_w = 1, sigma_b = 0) at the 6 inputs 0.2 .. 1.2,
-- G2, G4 and G6 over all sorted tuples (21 + 126 + 462) in one streamed pass with `bags` bags.
-- Prints "RESULT nnft_t<threads> <best seconds> <G2(1.2,1.2)> <its error>".
local nnft = require "nnft"

local opt = { E = 100000, width = 1000, bags = 10, threads = 1, reps = 1 }
for _, a in ipairs(arg or {}) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k or opt[k] == nil or not tonumber(v) then
    io.stderr:write("ensemble.lua: bad argument '", a, "' (keys: E, width, bags, threads, reps)\n")
    os.exit(2)
  end
  opt[k] = math.tointeger(tonumber(v)) or tonumber(v)
end

local clock = nnft._io and nnft._io.clock or os.clock
local X = nnft.mat{ { 0.2 }, { 0.4 }, { 0.6 }, { 0.8 }, { 1.0 }, { 1.2 } }
local arch = nnft.mlp{ d_in = 1, width = opt.width, depth = 1, act = "relu", sigma_w = 1, sigma_b = 0 }

local best, G
for rep = 1, opt.reps do
  local ens = arch:sample(opt.E, { seed = 41 + rep, bags = opt.bags, threads = opt.threads })
  collectgarbage()
  local t0 = clock()
  G = ens:npoints(X, { 2, 4, 6 })
  local t = clock() - t0
  best = best and math.min(best, t) or t
end
local v, e = G[2]:value(6, 6)
print(("RESULT nnft_t%d %.6f %.6f %.6f"):format(opt.threads, best, v, e))
