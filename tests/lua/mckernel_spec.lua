-- Monte Carlo kernels through Lua (src/lua/l_mckernel.c, docs/api/nngp.md): arch:mc_kernel and
-- arch:mc_kernel_running against the analytic NNGP kernel (arch:kernel()), net:ntk against J Jᵀ,
-- arch:mc_ntk against the analytic NTK, reproducibility, thread invariance, Lua activations and
-- every refusal.
--
-- Statistical checks use fixed seeds. An entry passes when |MC − analytic| <= 4 err (err the bag
-- or seed standard error), and each comparison must be resolved (err below a few per cent of
-- sqrt(K_ii K_jj)), so that a wrong kernel — a missing factor, a wrong angle term — fails. For
-- depth >= 2 the finite-width mean differs from the kernel by O(1/N); at N = 128 that is well
-- below the error bars (checked offline at N = 64 with E = 40000: all entries within 1.4 err).
local nnft = require "nnft"

local function raises(needle, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error containing '" .. needle .. "', got none")
  err = tostring(err)
  assert(err:find(needle, 1, true), ("error %q does not contain %q"):format(err, needle))
end

local X = nnft.mat{{0.9, -0.3, 0.2}, {0.1, 0.8, -0.5}, {-0.6, 0.4, 0.7}, {0.88, -0.25, 0.3}}

-- every entry of A within k * E of B, and E resolved at `res` of sqrt(B_ii B_jj)
local function within(A, E, B, k, res, what)
  local n = A:rows()
  for i = 1, n do
    for j = 1, n do
      local d, e = math.abs(A:get(i, j) - B:get(i, j)), E:get(i, j)
      local scale = math.sqrt(B:get(i, i) * B:get(j, j))
      assert(d <= k * e + 1e-12 * scale,
        ("%s[%d,%d]: MC %.6g vs analytic %.6g, %.2f error bars"):format(what, i, j, A:get(i, j),
          B:get(i, j), d / e))
      assert(e <= res * scale,
        ("%s[%d,%d]: error bar %.3g not resolved (scale %.3g)"):format(what, i, j, e, scale))
    end
  end
end

describe("arch:mc_kernel", function()
  it("returns the symmetric ensemble mean of f(x) f(x') and its bag error", function()
    local arch = nnft.mlp{ d_in = 3, width = 16, depth = 1, act = "relu", sigma_w = 1.2 }
    local K, err = arch:mc_kernel(X, { E = 2000, seed = 4, bags = 8 })
    assert.are.equal(4, K:rows()); assert.are.equal(4, K:cols())
    assert.are.equal(4, err:rows()); assert.are.equal(4, err:cols())
    for i = 1, 4 do
      for j = 1, 4 do
        assert.are.equal(K:get(i, j), K:get(j, i))
        assert.is_true(err:get(i, j) > 0)
      end
    end
    -- the diagonal is the ensemble's E[f(x)^2] as the sampler's outputs give it
    local F = arch:sample(2000, { seed = 4 }):outputs(X)
    local s = 0
    for e = 1, 2000 do s = s + F:get(e, 2) * F:get(e, 3) end
    assert.is_true(math.abs(s / 2000 - K:get(2, 3)) <= 1e-12 * math.abs(K:get(2, 3)))
  end)

  it("is reproducible and independent of the thread count", function()
    local arch = nnft.mlp{ d_in = 3, width = 20, depth = 2, act = "tanh" }
    local A, Ae = arch:mc_kernel(X, { E = 1500, seed = 9, threads = 1 })
    local B, Be = arch:mc_kernel(X, { E = 1500, seed = 9, threads = 2, chunk = 100 })
    assert.are.equal(0, A:maxabsdiff(B))
    assert.are.equal(0, Ae:maxabsdiff(Be))
    local C = arch:mc_kernel(X, { E = 1500, seed = 10 })
    assert.is_true(A:maxabsdiff(C) > 0)
  end)

  it("is exact in expectation at every width for one hidden layer (N = 3)", function()
    for _, act in ipairs{ "relu", "erf", "gelu" } do
      local arch = nnft.mlp{ d_in = 3, width = 3, depth = 1, act = act, sigma_w = 1.6,
                             sigma_b = 0.5 }
      local K = arch:kernel():matrix(X)
      local Kmc, err = arch:mc_kernel(X, { E = 20000, seed = 21, bags = 20 })
      within(Kmc, err, K, 4, 0.03, act .. " N=3")
    end
  end)

  it("converges to the depth-3 recursion for wide networks (relu, erf)", function()
    for _, act in ipairs{ "relu", "erf" } do
      local arch = nnft.mlp{ d_in = 3, width = 128, depth = 3, act = act, sigma_w = 1.5,
                             sigma_b = 0.4 }
      local K = arch:kernel():matrix(X)
      local Kmc, err = arch:mc_kernel(X, { E = 6000, seed = 5, bags = 20 })
      within(Kmc, err, K, 4, 0.05, act .. " depth 3")
    end
  end)

  it("runs a Lua activation (single-threaded) and reports its failure", function()
    local arch = nnft.mlp{ d_in = 3, width = 8, depth = 1, act = function(z) return math.tanh(z) end }
    local ref = nnft.mlp{ d_in = 3, width = 8, depth = 1, act = "tanh" }
    local A = arch:mc_kernel(X, { E = 300, seed = 3 })
    local B = ref:mc_kernel(X, { E = 300, seed = 3 })
    assert.is_true(A:maxabsdiff(B) <= 1e-12)
    local bad = nnft.mlp{ d_in = 3, width = 8, depth = 1, act = function(z) error("boom") end }
    raises("activation function failed", bad.mc_kernel, bad, X, { E = 20, seed = 1 })
  end)

  it("refuses bad input with clear messages", function()
    local arch = nnft.mlp{ d_in = 3, width = 8, depth = 1 }
    raises("columns but the architecture has d_in = 3", arch.mc_kernel, arch,
           nnft.mat{{1, 2}}, { E = 10, seed = 1 })
    raises("X contains NaN", arch.mc_kernel, arch, nnft.mat{{0, 0 / 0, 1}}, { E = 10, seed = 1 })
    raises("seed= is required", arch.mc_kernel, arch, X, { E = 10 })
    raises("E= (the number of networks) is required", arch.mc_kernel, arch, X, { seed = 1 })
    raises("E= and seed= are required", arch.mc_kernel, arch, X)
    raises("unknown option 'bag'", arch.mc_kernel, arch, X, { E = 10, seed = 1, bag = 2 })
    raises("exceeds the number of networks", arch.mc_kernel, arch, X, { E = 5, seed = 1, bags = 6 })
    raises("at least 2 bags", arch.mc_kernel, arch, X, { E = 1, seed = 1 })
    raises("E= must be a positive integer", arch.mc_kernel, arch, X, { E = 2.5, seed = 1 })
    raises("seed must be an integer", arch.mc_kernel, arch, X, { E = 10, seed = -1 })
  end)
end)

describe("arch:mc_kernel_running", function()
  it("gives K_mc on a grid of E with deviations from a reference", function()
    local arch = nnft.mlp{ d_in = 3, width = 4, depth = 1, act = "erf", sigma_w = 1.4,
                           sigma_b = 0.3 }
    local K = arch:kernel():matrix(X)
    local r = arch:mc_kernel_running(X, { grid = { 200, 2000, 20000 }, seed = 8, reference = K })
    assert.are.equal(3, r.E:rows())
    assert.are.equal(20000, r.E:get(3, 1))
    assert.are.equal(3, #r.K); assert.are.equal(3, #r.err)
    -- the last grid point is the plain estimate with that E
    local K3, e3 = arch:mc_kernel(X, { E = 20000, seed = 8, bags = r.bags })
    assert.are.equal(0, K3:maxabsdiff(r.K[3]))
    assert.are.equal(0, e3:maxabsdiff(r.err[3]))
    -- the error bars shrink like 1/sqrt(E): a factor ~10 over the grid
    local shrink = r.rel_err:get(1, 1) / r.rel_err:get(3, 1)
    assert.is_true(shrink > 5 and shrink < 20, "error bar ratio " .. shrink)
    -- deviations are consistent with the error bars (exact kernel at every width)
    for k = 1, 3 do
      assert.is_true(r.mean_z:get(k, 1) < 2.5, "mean |dev|/err " .. r.mean_z:get(k, 1))
      assert.is_true(r.rel_dev:get(k, 1) < 4 * r.rel_err:get(k, 1))
    end
    assert.is_true(r.max_dev:get(3, 1) < r.max_dev:get(1, 1))
  end)

  it("refuses bad grids and references", function()
    local arch = nnft.mlp{ d_in = 3, width = 4, depth = 1 }
    raises("grid= must increase", arch.mc_kernel_running, arch, X, { grid = { 100, 50 }, seed = 1 })
    raises("grid= must be an increasing list", arch.mc_kernel_running, arch, X, { seed = 1 })
    raises("reference= is 2 x 2, expected 4 x 4", arch.mc_kernel_running, arch, X,
           { grid = { 20 }, seed = 1, reference = nnft.mat{{1, 0}, {0, 1}} })
    raises("seed= is required", arch.mc_kernel_running, arch, X, { grid = { 20 } })
  end)
end)

describe("net:ntk", function()
  it("equals J Jᵀ from the Jacobian, in both parameterisations", function()
    for _, param in ipairs{ "ntk", "standard" } do
      local arch = nnft.mlp{ d_in = 3, width = { 7, 5 }, act = { "tanh", "relu" }, param = param,
                             sigma_w = 1.3, sigma_b = 0.2 }
      local net = arch:init{ seed = 2 }
      local J = net:jacobian(X)
      local G = J * J:t()
      local T = net:ntk(X)
      assert.is_true(T:maxabsdiff(G) <= 1e-12 * G:max())
      -- the cross block J_X J_Yᵀ
      local Y = nnft.mat{{0.3, 0.3, 0.3}, {-1, 0, 2}}
      local JY = net:jacobian(Y)
      local C = net:ntk(X, Y)
      assert.are.equal(4, C:rows()); assert.are.equal(2, C:cols())
      assert.is_true(C:maxabsdiff(J * JY:t()) <= 1e-12 * G:max())
    end
  end)

  it("respects frozen layers and is zero when everything is frozen", function()
    local arch = nnft.mlp{ d_in = 3, width = 6, depth = 2, frozen = { 1, 3 } }
    local net = arch:init{ seed = 1 }
    local J = net:jacobian(X)
    assert.is_true(net:ntk(X):maxabsdiff(J * J:t()) <= 1e-12)
    local all = nnft.mlp{ d_in = 3, width = 6, depth = 1, frozen = { 1, 2 } }
    assert.are.equal(0, all:init{ seed = 1 }:ntk(X):maxabsdiff(nnft.mat.zeros(4, 4)))
  end)

  it("refuses inputs of the wrong width", function()
    local net = nnft.mlp{ d_in = 3, width = 6 }:init{ seed = 1 }
    raises("has 2 columns", net.ntk, net, nnft.mat{{1, 2}})
    raises("Y contains NaN", net.ntk, net, X, nnft.mat{{1, 0 / 0, 2}})
  end)
end)

describe("arch:mc_ntk", function()
  it("averages the empirical NTK of wide networks to the analytic NTK", function()
    local arch = nnft.mlp{ d_in = 3, width = 1000, depth = 2, act = "erf", sigma_w = 1.5,
                           sigma_b = 0.3, param = "ntk" }
    local T = arch:kernel{ ntk = true }:matrix(X)
    local M, se = arch:mc_ntk(X, { E = 6, seed = 3 })
    within(M, se, T, 4, 0.06, "erf NTK")
    -- network e is arch:init{seed = seed, stream = e}
    local G1 = arch:init{ seed = 3, stream = 1 }:ntk(X)
    local G2 = arch:init{ seed = 3, stream = 2 }:ntk(X)
    local M2 = arch:mc_ntk(X, { E = 2, seed = 3 })
    assert.is_true(M2:maxabsdiff((G1 + G2) * 0.5) <= 1e-12 * T:max())
  end)

  it("refuses E < 2 and missing options", function()
    local arch = nnft.mlp{ d_in = 3, width = 6 }
    raises(">= 2 for an error bar", arch.mc_ntk, arch, X, { E = 1, seed = 1 })
    raises("seed= is required", arch.mc_ntk, arch, X, { E = 3 })
    raises("unknown option", arch.mc_ntk, arch, X, { E = 3, seed = 1, bags = 2 })
  end)
end)

describe("the deep_kernels recipe", function()
  it("runs with tiny settings and writes the curves, the MC check, figures and the manifest", function()
    local bin = os.getenv("NNFT_BIN")
    if not bin then
      pending("NNFT_BIN is not set")
      return
    end
    local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
    local top = nnft._io.mkdtemp("nnft-mckernel-spec-")
    local dir = top .. "/o"
    local p = io.popen(shq(bin) .. " examples/kernels/deep_kernels.lua acts=relu,gelu depth=2 "
      .. "npts=9 width=16 E=400 bags=10 mc_points=3 quad=8 out=" .. shq(dir) .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.matches("MC vs analytic at depth 2", out, 1, true)
    local k = nnft.io.read_csv(dir .. "/kernels.csv")
    assert.are.equal(2 * 2 * 9, #k.K)          -- 2 activations x 2 depths x 9 angles
    for r = 1, #k.K do
      if k.theta[r] == 0 then assert.is_true(math.abs(k.K_norm[r] - 1) < 1e-12) end
    end
    local mc = nnft.io.read_csv(dir .. "/mc.csv")
    assert.are.equal(2 * 3, #mc.K_mc)
    for _, f in ipairs{ "kernel_vs_depth_relu.png", "kernel_vs_depth_gelu.png",
                        "mc_convergence.png", "convergence.csv", "manifest.json" } do
      assert.is_truthy(io.open(dir .. "/" .. f), f)
    end
    os.execute("rm -rf " .. shq(top))
  end)
end)
