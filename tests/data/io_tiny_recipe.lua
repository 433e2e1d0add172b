-- A tiny recipe for tests/lua/io_spec.lua (reproduce): writes a CSV and an NPY through a Run.
local nnft = require "nnft"
local args = nnft.args{ n = 5, scale = 0.5, label = "sin", out = "io_tiny_out" }
local run = nnft.io.run{ out = args.out, args = args, seed = 1 }
local x, y = {}, {}
for i = 1, args.n do
  x[i] = i * args.scale
  y[i] = math.sin(x[i])
end
nnft.io.write_csv(run:path("sin.csv"), { x = x, y = y }, { meta = { n = args.n, label = args.label } })
nnft.io.write_npy(run:path("x.npy"), nnft.mat(x))
run:finish()
print("wrote " .. args.out)
