-- Vertex integrals of the [HMS] ReLU cutoff flow: 126 tuples x 21 cutoffs at d = 1, and 15
-- tuples (3 inputs) x 4 cutoffs at d = 2; prints seconds per task (compare couplings_scipy.py).
local nnft = nnft or require "nnft"
local C = nnft.coupling
local HMS = { 7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3, 2e3, 5e3, 7e3, 1e4, 2e4, 4e4,
              6e4, 8e4, 1e5 }
local function time(f) local t = os.clock(); f(); return os.clock() - t end
local relu1 = nnft.mlp{ d_in = 1, width = 20, depth = 1, act = "relu", sigma_b = 0 }
local X1 = nnft.mat{{0.2}, {0.4}, {0.6}, {0.8}, {1.0}, {1.2}}
local t1 = time(function() C.vertex(relu1, X1, nil, HMS, { epsrel = 1e-8 }) end)
local relu2 = nnft.mlp{ d_in = 2, width = 20, depth = 1, act = "relu", sigma_b = 0 }
local X2 = nnft.mat{{0.3, 0.4}, {-0.5, 0.2}, {0.7, -0.6}}
local t2 = time(function() C.vertex(relu2, X2, nil, { 7, 10, 15, 20 }, { epsrel = 1e-6 }) end)
print(("nnft d1_126x21 %.4f"):format(t1))
print(("nnft d2_15x4 %.4f"):format(t2))
