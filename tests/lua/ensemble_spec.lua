-- arch:sample, the Ensemble methods and nnft.corr through the binding: shapes and tuple order,
-- agreement with direct computations from the outputs, thread and chunk invariance, the
-- closed-form ReLU kernel and the exact finite-width G4_c within error bars, Wick, connected
-- parts, the deviation metric, histograms, and the errors a caller gets for bad input.
local nnft = require "nnft"
local U = require "spec_util"
local errmsg = U.errmsg

local X6 = nnft.mat{ { 0.2 }, { 0.4 }, { 0.6 }, { 0.8 }, { 1.0 }, { 1.2 } }
local relu = nnft.mlp{ d_in = 1, width = 20, depth = 1, act = "relu", sigma_w = 1, sigma_b = 0 }

-- K_ReLU of physics.md §2.3 for d = 1, σ_b = 0: θ = 0 for same-sign inputs, so
-- K = (σ_w²/2π) k π with k = σ_w² x x', i.e. σ_w⁴ x x' / 2.
local function k_relu(x, y, sw) return sw ^ 4 * x * y / 2 end

describe("arch:sample", function()
  it("is lazy and records E, seed and defaults", function()
    local ens = relu:sample(1e9, { seed = 1 }) -- no work happens here
    assert.are.equal(1e9, #ens)
    local info = ens:info()
    assert.are.equal(1000000000, info.E)
    assert.are.equal(1, info.seed)
    assert.are.equal(10, info.bags)
    assert.are.equal(256, info.chunk)
    assert.matches("Ensemble%(E=1000000000, seed=1", tostring(ens))
    assert.are.equal(relu, ens:arch())
    assert.are.equal(3, relu:sample(3, { seed = 0 }):info().bags) -- bags = min(10, E)
  end)

  it("refuses a bad E, seed, bags or an unknown option", function()
    assert.matches("E %(the number of networks%) must be a positive integer, got 0",
      errmsg(relu.sample, relu, 0, { seed = 1 }))
    assert.matches("positive integer, got %-3", errmsg(relu.sample, relu, -3, { seed = 1 }))
    assert.matches("positive integer, got 2.5", errmsg(relu.sample, relu, 2.5, { seed = 1 }))
    assert.matches("positive integer, got string", errmsg(relu.sample, relu, "10", { seed = 1 }))
    assert.matches("seed= is required", errmsg(relu.sample, relu, 10))
    assert.matches("seed= is required", errmsg(relu.sample, relu, 10, { bags = 2 }))
    assert.matches("seed must be an integer", errmsg(relu.sample, relu, 10, { seed = -1 }))
    assert.matches("seed must be an integer", errmsg(relu.sample, relu, 10, { seed = 0.5 }))
    assert.matches("bags = 11 exceeds the ensemble size E = 10",
      errmsg(relu.sample, relu, 10, { seed = 1, bags = 11 }))
    assert.matches("unknown option 'sed'", errmsg(relu.sample, relu, 10, { sed = 1 }))
    assert.matches("chunk= must be a positive integer",
      errmsg(relu.sample, relu, 10, { seed = 1, chunk = 0 }))
  end)
end)

describe("Ensemble:outputs", function()
  it("gives E x n outputs, windows of it, and the same numbers for any threads and chunk", function()
    local ens = relu:sample(300, { seed = 7 })
    local F = ens:outputs(X6)
    assert.are.same({ 300, 6 }, { F:rows(), F:cols() })
    local W = ens:outputs(X6, { first = 101, count = 50, threads = 2, chunk = 7 })
    assert.are.equal(0, W:maxabsdiff(F:block(101, 1, 50, 6)))
    assert.are.equal(0, ens:outputs(X6, { threads = 1, chunk = 1000 }):maxabsdiff(F))
    -- ReLU with σ_b = 0 at positive inputs: f(x) = x f(1)
    assert.is_true(math.abs(F:get(9, 4) - 4 * F:get(9, 1)) < 1e-12)
    -- another seed, other networks
    assert.is_true(relu:sample(300, { seed = 8 }):outputs(X6):maxabsdiff(F) > 0.1)
    -- a table of rows works as X
    assert.are.equal(0, ens:outputs({ { 0.2 }, { 0.4 } }, { count = 3 }):maxabsdiff(F:block(1, 1, 3, 2)))
  end)

  it("refuses bad inputs and windows", function()
    local ens = relu:sample(10, { seed = 1 })
    assert.matches("X has 2 columns but the architecture has d_in = 1",
      errmsg(ens.outputs, ens, nnft.mat{ { 1, 2 } }))
    assert.matches("X contains NaN or Inf", errmsg(ens.outputs, ens, nnft.mat{ { 0 / 0 } }))
    assert.matches("X contains NaN or Inf", errmsg(ens.outputs, ens, nnft.mat{ { math.huge } }))
    assert.matches("first = 11 is beyond", errmsg(ens.outputs, ens, X6, { first = 11 }))
    assert.matches("runs past", errmsg(ens.outputs, ens, X6, { first = 5, count = 7 }))
    assert.matches("unknown option 'bags'", errmsg(ens.outputs, ens, X6, { bags = 2 }))
    assert.matches("cannot allocate", errmsg(function()
      relu:sample(2^40, { seed = 1 }):outputs(X6)
    end))
  end)
end)

describe("Ensemble:npoint", function()
  local ens = relu:sample(2000, { seed = 3, bags = 8 })

  it("returns sorted tuples in lexicographic order and the means of the products", function()
    local G = ens:npoint(X6, 4)
    assert.are.equal(4, G.order)
    assert.are.equal(6, G.n)
    assert.are.equal(2000, G.E)
    assert.are.equal(8, G.bags)
    assert.are.same({ 126, 4 }, { G.tuples:rows(), G.tuples:cols() })
    assert.are.same({ 1, 1, 1, 1 }, G.tuples:row(1):totable(true))
    assert.are.same({ 1, 1, 1, 2 }, G.tuples:row(2):totable(true))
    assert.are.same({ 6, 6, 6, 6 }, G.tuples:row(126):totable(true))
    assert.are.same({ 8, 126 }, { G.bag_means:rows(), G.bag_means:cols() })
    -- direct computation from the outputs
    local F = ens:outputs(X6)
    for _, t in ipairs{ 1, 17, 60, 126 } do
      local i = G.tuples:row(t):totable(true)
      local s = 0
      for e = 1, 2000 do
        s = s + F:get(e, i[1]) * F:get(e, i[2]) * F:get(e, i[3]) * F:get(e, i[4])
      end
      assert.is_true(math.abs(G.values:get(t, 1) - s / 2000) < 1e-12 * (1 + math.abs(s / 2000)))
      -- bag 3 = networks 501 .. 750
      local b = 0
      for e = 501, 750 do
        b = b + F:get(e, i[1]) * F:get(e, i[2]) * F:get(e, i[3]) * F:get(e, i[4])
      end
      assert.is_true(math.abs(G.bag_means:get(3, t) - b / 250) < 1e-12 * (1 + math.abs(b / 250)))
      -- std over bag means and the error of the mean
      local m, v = 0, 0
      for q = 1, 8 do m = m + G.bag_means:get(q, t) end
      m = m / 8
      for q = 1, 8 do v = v + (G.bag_means:get(q, t) - m) ^ 2 end
      assert.is_true(math.abs(G.std:get(t, 1) - math.sqrt(v / 7)) < 1e-12 * G.std:get(t, 1))
      assert.is_true(math.abs(G.errors:get(t, 1) - G.std:get(t, 1) / math.sqrt(8)) < 1e-15)
    end
    -- value() looks a tuple up in any index order
    assert.are.equal(G.values:get(2, 1), (G:value(1, 2, 1, 1)))
    local v, e = G:value(6, 6, 6, 6)
    assert.are.equal(G.values:get(126, 1), v)
    assert.are.equal(G.errors:get(126, 1), e)
    assert.matches("takes 4 indices", errmsg(G.value, G, 1, 2))
    assert.matches("index 7 is not in 1 .. 6", errmsg(G.value, G, 1, 2, 3, 7))
    assert.matches("Correlator%(order 4 over 6 inputs", tostring(G))
  end)

  it("computes odd orders and the mean (order 1)", function()
    local G1 = ens:npoint(X6, 1)
    local G3 = ens:npoint(X6, 3)
    assert.are.equal(6, G1.values:rows())
    assert.are.equal(56, G3.values:rows())
    local F = ens:outputs(X6)
    assert.is_true(math.abs(G1.values:get(2, 1) - F:col(2):mean()) < 1e-12)
  end)

  it("npoints computes several orders in one pass, identical to separate passes", function()
    local G = ens:npoints(X6, { 6, 2, 4 })
    assert.are.equal(0, G[2].values:maxabsdiff(ens:npoint(X6, 2).values))
    assert.are.equal(0, G[4].values:maxabsdiff(ens:npoint(X6, 4).values))
    assert.are.equal(0, G[6].values:maxabsdiff(ens:npoint(X6, 6).values))
    assert.are.equal(0, G[6].errors:maxabsdiff(ens:npoint(X6, 6).errors))
    assert.are.equal(462, G[6].values:rows())
    assert.is_nil(G[3])
  end)

  it("is bit-identical for 1 or 2 threads and any chunk size; bags change only the errors", function()
    local a = ens:npoints(X6, { 2, 4, 6 }, { threads = 1, chunk = 64 })
    local b = ens:npoints(X6, { 2, 4, 6 }, { threads = 2, chunk = 1000 })
    local c = ens:npoints(X6, { 2, 4, 6 }, { threads = 2, chunk = 1 })
    for _, k in ipairs{ 2, 4, 6 } do
      assert.are.equal(0, a[k].values:maxabsdiff(b[k].values))
      assert.are.equal(0, a[k].values:maxabsdiff(c[k].values))
      assert.are.equal(0, a[k].bag_means:maxabsdiff(b[k].bag_means))
      assert.are.equal(0, a[k].errors:maxabsdiff(c[k].errors))
    end
    local d = ens:npoint(X6, 2, { bags = 20 })
    assert.are.equal(20, d.bags)
    assert.is_true(d.values:maxabsdiff(a[2].values) < 1e-13)
    assert.is_true(d.errors:maxabsdiff(a[2].errors) > 0)
  end)

  it("agrees with the closed-form ReLU kernel within 5 sigma (E = 2e4)", function()
    local sw = 1.3
    local arch = nnft.mlp{ d_in = 1, width = 50, depth = 1, act = "relu", sigma_w = sw, sigma_b = 0 }
    local G = arch:sample(2e4, { seed = 11, bags = 20 }):npoint(X6, 2)
    for t = 1, 21 do
      local i, j = G.tuples:get(t, 1), G.tuples:get(t, 2)
      local K = k_relu(X6:get(i, 1), X6:get(j, 1), sw)
      assert.is_true(math.abs(G.values:get(t, 1) - K) < 5 * G.errors:get(t, 1),
        ("tuple %d: %g vs %g +- %g"):format(t, G.values:get(t, 1), K, G.errors:get(t, 1)))
    end
    -- the deviation metric against the exact kernel sits at the noise floor
    local Kt = nnft.mat.fromfunction(21, 1, function(t)
      return k_relu(X6:get(G.tuples:get(t, 1), 1), X6:get(G.tuples:get(t, 2), 1), sw)
    end)
    local m, bg, used = nnft.corr.deviation(G, Kt)
    assert.are.equal(21, used)
    assert.is_true(m < 2 * bg, ("m %g background %g"):format(m, bg))
  end)

  it("measures G4_c of a narrow net at the exact finite-width value (nnft.finite)", function()
    if not nnft.finite then return pending("nnft.finite not built") end
    local arch = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = "erf", sigma_w = 1, sigma_b = 0.5 }
    local X = nnft.mat{ { -0.5 }, { 0.3 }, { 1.0 } }
    local G = arch:sample(4e4, { seed = 5, bags = 20 }):npoints(X, { 2, 4 })
    local G4c = nnft.corr.connected(G[2], G[4])
    local _, exact = nnft.finite.g4c(arch, X)
    local worst = 0
    for t = 1, 15 do
      local z = math.abs(G4c.values:get(t, 1) - exact:get(t, 1)) / G4c.errors:get(t, 1)
      worst = math.max(worst, z)
    end
    assert.is_true(worst < 5, "worst deviation " .. worst .. " sigma")
    -- and it is clearly non-zero (width 3)
    assert.is_true(math.abs(G4c.values:get(1, 1)) > 5 * G4c.errors:get(1, 1))
  end)

  it("refuses bad orders, inputs, bags and options", function()
    assert.matches("order k must be an integer 1 .. 6, got 7", errmsg(ens.npoint, ens, X6, 7))
    assert.matches("order k must be an integer 1 .. 6, got 0", errmsg(ens.npoint, ens, X6, 0))
    assert.matches("order k must be an integer 1 .. 6, got 2.5", errmsg(ens.npoint, ens, X6, 2.5))
    assert.matches("order k must be an integer", errmsg(ens.npoint, ens, X6))
    assert.matches("X has 2 columns but the architecture has d_in = 1",
      errmsg(ens.npoint, ens, nnft.mat{ { 1, 2 } }, 2))
    assert.matches("X contains NaN or Inf", errmsg(ens.npoint, ens, nnft.mat{ { 1 }, { 0 / 0 } }, 2))
    assert.matches("bags = 2001 exceeds the ensemble size E = 2000",
      errmsg(ens.npoint, ens, X6, 2, { bags = 2001 }))
    assert.matches("bags= must be a positive integer", errmsg(ens.npoint, ens, X6, 2, { bags = 0 }))
    assert.matches("unknown option 'bag'", errmsg(ens.npoint, ens, X6, 2, { bag = 3 }))
    assert.matches("order 2 is listed twice", errmsg(ens.npoints, ens, X6, { 2, 2 }))
    assert.matches("order must be an integer 1 .. 6, got 8", errmsg(ens.npoints, ens, X6, { 2, 8 }))
    assert.matches("orders is empty", errmsg(ens.npoints, ens, X6, {}))
    assert.matches("orders must be a list", errmsg(ens.npoints, ens, X6, 4))
    -- totals beyond the machine's memory are refused before anything is allocated
    local huge = relu:sample(1e12, { seed = 1, bags = 1e9 })
    assert.matches("cannot hold the correlators of 6 inputs", errmsg(huge.npoint, huge, X6, 6))
  end)
end)

describe("Ensemble with a Lua activation, and interrupts", function()
  it("runs a Lua activation (one thread) and reports its failure", function()
    local lua_relu = nnft.mlp{ d_in = 1, width = 9, depth = 2, act = function(z) return z > 0 and z or 0 end,
      sigma_w = 1.2, sigma_b = 0.3 }
    local relu2 = nnft.mlp{ d_in = 1, width = 9, depth = 2, act = "relu", sigma_w = 1.2, sigma_b = 0.3 }
    local a = lua_relu:sample(50, { seed = 3 }):outputs(X6, { threads = 2 })
    local b = relu2:sample(50, { seed = 3 }):outputs(X6)
    assert.are.equal(0, a:maxabsdiff(b))
    local bad = nnft.mlp{ d_in = 1, width = 4, depth = 1, act = function(z) error("boom") end }
    assert.matches("activation function failed: .*boom", errmsg(function()
      bad:sample(10, { seed = 1 }):npoint(X6, 2)
    end))
  end)

  it("stops on an interrupt with the error 'interrupted' and stays usable", function()
    local ens = relu:sample(5000, { seed = 1 })
    nnft.sys.interrupt()
    assert.matches("interrupted", errmsg(ens.npoint, ens, X6, 2))
    assert.are.equal(21, ens:npoint(X6, 2).values:rows()) -- the flag was cleared
  end)
end)

describe("nnft.corr", function()
  local K = nnft.mat{ { 2.0, 0.5, 0.3 }, { 0.5, 1.5, 0.2 }, { 0.3, 0.2, 1.0 } }

  it("tuples enumerates sorted tuples", function()
    local T = nnft.corr.tuples(3, 2)
    assert.are.same({ { 1, 1 }, { 1, 2 }, { 1, 3 }, { 2, 2 }, { 2, 3 }, { 3, 3 } }, T:totable())
    assert.are.equal(462, nnft.corr.tuples(6, 6):rows())
    assert.matches("order k must be an integer 1 .. 6", errmsg(nnft.corr.tuples, 3, 7))
  end)

  it("wick sums the perfect matchings", function()
    local W = nnft.corr.wick(K, 4)
    assert.are.equal(15, W.values:rows())
    -- tuple (1,1,2,3): K11 K23 + 2 K12 K13
    local v = W:value(1, 1, 2, 3)
    assert.is_true(math.abs(v - (2.0 * 0.2 + 2 * 0.5 * 0.3)) < 1e-15)
    assert.is_true(math.abs(W:value(2, 2, 2, 2) - 3 * 1.5 ^ 2) < 1e-15)
    -- explicit tuples, and the 15 terms of a six-point function
    local W6 = nnft.corr.wick(K, 6, { { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 2, 2 } })
    assert.is_true(math.abs(W6.values:get(1, 1) - 15 * 8) < 1e-12)
    -- (1,1,1,1,2,2): 3 K11² K22 + 12 K11 K12²
    assert.is_true(math.abs(W6.values:get(2, 1) - (3 * 4 * 1.5 + 12 * 2 * 0.25)) < 1e-12)
    assert.are.equal(0, nnft.corr.wick(K, 3).values:maxabsdiff(nnft.mat.zeros(10, 1)))
    assert.matches("K must be a square", errmsg(nnft.corr.wick, nnft.mat.zeros(2, 3), 2))
    assert.matches("order k must be an integer 1 .. 6, got 8", errmsg(nnft.corr.wick, K, 8))
    assert.matches("is not an input index 1 .. 3", errmsg(nnft.corr.wick, K, 2, { { 1, 4 } }))
    assert.matches("tuples has 2 columns, expected k = 4", errmsg(nnft.corr.wick, K, 4, { { 1, 2 } }))
  end)

  it("connected parts of Gaussian tables vanish; a non-Gaussian term survives", function()
    local G2, G4, G6 = nnft.corr.wick(K, 2), nnft.corr.wick(K, 4), nnft.corr.wick(K, 6)
    local G4c, G6c = nnft.corr.connected(G2, G4, G6)
    assert.is_true(G4c.values:abs():max() < 1e-14)
    assert.is_true(G6c.values:abs():max() < 1e-13)
    assert.are.equal(28, G6c.values:rows())
    G4.values:set(3, 1, G4.values:get(3, 1) + 0.125)
    assert.is_true(math.abs(nnft.corr.connected(G2, G4).values:get(3, 1) - 0.125) < 1e-15)
    assert.matches("G4 must be a 4%-point table", errmsg(nnft.corr.connected, G2, G2))
    assert.matches("G2 has 3 inputs, G4 has 2",
      errmsg(nnft.corr.connected, G2, nnft.corr.wick(nnft.mat.eye(2), 4)))
  end)

  it("connected parts of an ensemble carry bag error bars", function()
    local ens = relu:sample(4000, { seed = 2, bags = 10 })
    local G = ens:npoints(X6, { 2, 4, 6 })
    local G4c, G6c = nnft.corr.connected(G[2], G[4], G[6])
    assert.are.equal(10, G4c.bags)
    assert.are.same({ 10, 126 }, { G4c.bag_means:rows(), G4c.bag_means:cols() })
    assert.is_true(G4c.errors:min() > 0)
    assert.are.equal(462, G6c.errors:rows())
  end)

  it("deviation averages |G - P| / |P| and the bag spread", function()
    local G = { order = 2, n = 2, values = nnft.mat{ 1.1, 2.0, 3.3 }, std = nnft.mat{ 0.1, 0.2, 0.3 } }
    local P = nnft.mat{ 1.0, 2.5, 3.0 }
    local m, bg, used = nnft.corr.deviation(G, P)
    assert.are.equal(3, used)
    assert.is_true(math.abs(m - (0.1 + 0.2 + 0.1) / 3) < 1e-15)
    assert.is_true(math.abs(bg - (0.1 + 0.08 + 0.1) / 3) < 1e-15)
    local _, bg2 = nnft.corr.deviation(nnft.mat{ 1 }, nnft.mat{ 2 })
    assert.is_true(bg2 ~= bg2) -- NaN: no spread known
    assert.matches("must match tuple by tuple", errmsg(nnft.corr.deviation, G, nnft.mat{ 1, 2 }))
    assert.matches("G is of order 2, Gpred of order 4",
      errmsg(nnft.corr.deviation, nnft.corr.wick(K, 2), { order = 4, values = nnft.mat.zeros(6, 1) }))
  end)

  it("refuses hand-made tables whose n has too many tuples to count (no garbage sizes)", function()
    local huge = 2 ^ 40 -- beyond the 32-bit input indices: the tuple count cannot be formed
    local G2 = { order = 2, n = huge, values = nnft.mat.zeros(3, 1) }
    local G4 = { order = 4, n = huge, values = nnft.mat.zeros(3, 1) }
    assert.matches("G2 has n = 1099511627776 inputs: too many 2%-tuples to count",
      errmsg(nnft.corr.connected, G2, G4))
    local W = nnft.corr.wick(K, 2)
    assert.matches("n = 1099511627776 inputs have too many 2%-tuples to count",
      errmsg(W.value, G2, 1, 2))
    -- wick's default tuples: the table is complete and its values line up with value()
    assert.are.equal(6, W.values:rows())
    assert.are.equal(W.values:get(2, 1), (W:value(1, 2)))
  end)
end)

describe("Ensemble:histogram", function()
  it("counts every network once per input, over the exact range or a given one", function()
    local ens = relu:sample(1000, { seed = 4 })
    local h = ens:histogram(X6, { bins = 8 })
    assert.are.same({ 8, 6 }, { h.counts:rows(), h.counts:cols() })
    assert.are.equal(9, h.edges:rows())
    for k = 1, 6 do
      assert.are.equal(1000, h.counts:col(k):sum() + h.under:get(1, k) + h.over:get(1, k))
      assert.are.equal(0, h.under:get(1, k) + h.over:get(1, k))
    end
    local F = ens:outputs(X6)
    assert.are.equal(F:min(), h.range[1])
    assert.are.equal(F:max(), h.range[2])
    local h2 = ens:histogram(X6, { bins = 4, range = { -0.1, 0.1 }, threads = 1 })
    local inside = 0
    for e = 1, 1000 do
      local v = F:get(e, 1)
      if v >= -0.1 and v <= 0.1 then inside = inside + 1 end
    end
    assert.are.equal(inside, h2.counts:col(1):sum())
    assert.are.equal(0, ens:histogram(X6, { bins = 4, range = { -0.1, 0.1 }, threads = 2, chunk = 3 })
      .counts:maxabsdiff(h2.counts))
    assert.matches("range must be finite with lo < hi", errmsg(ens.histogram, ens, X6, { range = { 1, 0 } }))
    assert.matches("range must be a pair", errmsg(ens.histogram, ens, X6, { range = 3 }))
    assert.matches("hi %- lo finite%), got {%-1e%+308, 1e%+308}",
      errmsg(ens.histogram, ens, X6, { range = { -1e308, 1e308 } }))
    assert.matches("unknown option 'nbins'", errmsg(ens.histogram, ens, X6, { nbins = 3 }))
  end)
end)
