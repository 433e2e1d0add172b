-- nnft.finite and nnft.freeprop through Lua: exact G2 against the closed-form kernels of
-- physics.md §2.3, the tuple layout shared with nnft.corr, the exact 1/N law of G4_c, the exp-net
-- closed form, cos-nets' G2 = the cutoff propagator, freeprop's limits and shapes, Lua
-- activations, and every refusal. (Monte Carlo comparisons with whole finite networks are in
-- tests/c/test_finite.c; the measured-vs-exact comparison through the ensemble sampler is the
-- recipe examples/nnqft/npoint_vs_width.lua.)
local nnft = require "nnft"

local function raises(needle, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error containing '" .. needle .. "', got none")
  err = tostring(err)
  assert(err:find(needle, 1, true), ("error %q does not contain %q"):format(err, needle))
end

local function near(x, want, tol, what)
  assert(math.abs(x - want) <= tol,
    ("%s = %.15g, expected %.15g within %.3g"):format(what or "value", x, want, tol))
end

local Xrelu = nnft.mat{{0.2}, {0.4}, {0.6}, {0.8}, {1.0}, {1.2}}
local Xerf = nnft.mat{{-1}, {-0.6}, {-0.2}, {0.2}, {0.6}, {1}}

describe("nnft.finite.g2", function()
  it("is the arc-cosine kernel for a ReLU-net with a bias", function()
    local sw, sb = 1.3, 0.7
    local arch = nnft.mlp{ d_in = 1, width = 4, depth = 1, act = "relu", sigma_w = sw,
                           sigma_b = sb }
    local K = nnft.finite.g2(arch, Xerf)
    assert.are.equal(6, K:rows())
    assert.are.equal(6, K:cols())
    for i = 1, 6 do
      for j = 1, 6 do
        local xi, xj = Xerf:get(i, 1), Xerf:get(j, 1)
        local q1, q2, c = sb^2 + sw^2 * xi * xi, sb^2 + sw^2 * xj * xj, sb^2 + sw^2 * xi * xj
        local th = math.atan(math.sqrt(math.max(q1 * q2 - c * c, 0)), c)
        local want = sb^2 + sw^2 * math.sqrt(q1 * q2) / (2 * math.pi) *
                     (math.sin(th) + (math.pi - th) * math.cos(th))
        near(K:get(i, j), want, 1e-13 * want, ("K[%d,%d]"):format(i, j))
      end
    end
  end)

  it("is the arcsin kernel for an Erf-net", function()
    local arch = nnft.mlp{ d_in = 1, width = 4, depth = 1, act = "erf" }
    local K = nnft.finite.g2(arch, Xerf)
    for i = 1, 6 do
      for j = 1, 6 do
        local xi, xj = Xerf:get(i, 1), Xerf:get(j, 1)
        local q1, q2, c = 1 + xi * xi, 1 + xj * xj, 1 + xi * xj
        local want = 1 + 2 / math.pi * math.asin(2 * c / math.sqrt((1 + 2 * q1) * (1 + 2 * q2)))
        near(K:get(i, j), want, 1e-13, ("K[%d,%d]"):format(i, j))
      end
    end
  end)

  it("does not depend on the width", function()
    local a3 = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = "tanh" }
    local a9 = nnft.mlp{ d_in = 1, width = 9, depth = 1, act = "tanh" }
    assert.are.equal(0, nnft.finite.g2(a3, Xerf):maxabsdiff(nnft.finite.g2(a9, Xerf)))
  end)

  it("accepts a table of rows and a Lua activation", function()
    local lua_tanh = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = function(z)
      return math.tanh(z) end }
    local tanh = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = "tanh" }
    local K1 = nnft.finite.g2(lua_tanh, {{-0.5}, {0.5}})
    local K2 = nnft.finite.g2(tanh, nnft.mat{{-0.5}, {0.5}})
    assert.is_true(K1:maxabsdiff(K2) < 1e-15)
  end)
end)

describe("nnft.finite.moments / g4c / g6c", function()
  it("returns 1-based sorted tuples in lexicographic order", function()
    local arch = nnft.mlp{ d_in = 1, width = 2, depth = 1, act = "erf" }
    for _, k in ipairs{ 2, 4, 6 } do
      local t, v
      if k == 2 then t, v = nnft.finite.moments(arch, Xerf, 2)
      elseif k == 4 then t, v = nnft.finite.g4c(arch, Xerf)
      else t, v = nnft.finite.g6c(arch, Xerf) end
      local count = ({ [2] = 21, [4] = 126, [6] = 462 })[k]
      assert.are.equal(count, t:rows())
      assert.are.equal(k, t:cols())
      assert.are.equal(count, v:rows())
      assert.are.equal(1, v:cols())
      for q = 1, k do assert.are.equal(1, t:get(1, q)) end
      for q = 1, k do assert.are.equal(6, t:get(count, q)) end
      for r = 2, count do
        local q = 1
        while q <= k and t:get(r, q) == t:get(r - 1, q) do q = q + 1 end
        assert.is_true(q <= k and t:get(r, q) > t:get(r - 1, q), "row " .. r .. " not after row " .. r - 1)
        for p = 1, k - 1 do assert.is_true(t:get(r, p) <= t:get(r, p + 1)) end
      end
    end
  end)

  it("moments(2) are the hidden part of g2", function()
    local arch = nnft.mlp{ d_in = 1, width = 2, depth = 1, act = "gelu", sigma_w = { 1.1, 0.8 },
                           sigma_b = { 0.5, 0.3 } }
    local t, M2 = nnft.finite.moments(arch, Xerf, 2)
    local K = nnft.finite.g2(arch, Xerf)
    for r = 1, t:rows() do
      near(0.3^2 + 0.8^2 * M2:get(r, 1), K:get(t:get(r, 1), t:get(r, 2)), 1e-15, "G2")
    end
  end)

  it("G4_c is exactly proportional to 1/N and G6_c to 1/N^2", function()
    local a2 = nnft.mlp{ d_in = 1, width = 2, depth = 1, act = "erf" }
    local a10 = nnft.mlp{ d_in = 1, width = 10, depth = 1, act = "erf" }
    local _, g2 = nnft.finite.g4c(a2, Xerf)
    local _, g10 = nnft.finite.g4c(a10, Xerf)
    assert.is_true((g10 * 10):maxabsdiff(g2 * 2) < 1e-15)
    local X3 = nnft.mat{{-1}, {0.2}, {1}}
    local _, h2 = nnft.finite.g6c(a2, X3)
    local _, h10 = nnft.finite.g6c(a10, X3)
    assert.is_true((h10 * 100):maxabsdiff(h2 * 4) < 1e-15)
  end)

  it("matches the exp-net closed form (physics.md §3.4)", function()
    local sb, sw = 0.4, 0.9
    local arch = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = "exp", sigma_w = { sw, 1.2 },
                           sigma_b = { sb, 0.0 } }
    local X = nnft.mat{{-0.3}, {0.1}, {0.5}}
    local t, g4 = nnft.finite.g4c(arch, X)
    local function M(...)
      local s = 0
      for _, x in ipairs{ ... } do s = s + x end
      local n = select("#", ...)
      return math.exp(n * n * sb * sb / 2 + sw * sw * s * s / 2)
    end
    for r = 1, t:rows() do
      local x = {}
      for q = 1, 4 do x[q] = X:get(t:get(r, q), 1) end
      local want = 1.2^4 / 3 * (3 * M(x[1], x[2], x[3], x[4]) - (M(x[1], x[2]) * M(x[3], x[4])
                   + M(x[1], x[3]) * M(x[2], x[4]) + M(x[1], x[4]) * M(x[2], x[3])))
      near(g4:get(r, 1), want, 1e-12 * math.abs(want), "G4_c")
    end
  end)

  it("gives the plain cos-net formula of physics.md §3.4", function()
    local sw, sa, N = 1.5, 1.2, 3
    local arch = nnft.cosnet{ d_in = 1, width = N, sigma_w = sw, sigma_a = sa }
    local X = nnft.mat{{-0.4}, {0.3}, {0.9}}
    local function g(v) return math.exp(-sw * sw * v * v / 2) end
    local t, g4 = nnft.finite.g4c(arch, X)
    for r = 1, t:rows() do
      local x = {}
      for q = 1, 4 do x[q] = X:get(t:get(r, q), 1) end
      local want = sa^4 / N * (3 / 8 * (g(x[1] + x[2] - x[3] - x[4]) + g(x[1] - x[2] + x[3] - x[4])
        + g(x[1] - x[2] - x[3] + x[4])) - 1 / 4 * (g(x[1] - x[2]) * g(x[3] - x[4])
        + g(x[1] - x[3]) * g(x[2] - x[4]) + g(x[1] - x[4]) * g(x[2] - x[3])))
      near(g4:get(r, 1), want, 1e-14, "G4_c")
    end
  end)

  it("gives the generalised cos-net the cutoff propagator as G2", function()
    local arch = nnft.cosnet{ d_in = 1, width = 7, radius = 4, mass = 0.8 }
    local X = nnft.mat{{0}, {0.5}, {2}}
    local K = nnft.finite.g2(arch, X)
    local r = nnft.mat{{0}, {0.5}, {2}}
    local G = nnft.freeprop(r, { d = 1, R = 4, m = 0.8 })
    for i = 1, 3 do near(K:get(1, i), G:get(i, 1), 1e-13, "G2") end
  end)

  it("refuses what the formulas do not cover", function()
    local arch = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = "erf" }
    raises("between 1 and 6, got 7", nnft.finite.moments, arch, Xerf, 7)
    raises("between 1 and 6, got 0", nnft.finite.moments, arch, Xerf, 0)
    raises("exactly one hidden layer; this architecture has 2 hidden layers", nnft.finite.g4c,
           nnft.mlp{ d_in = 1, width = 3, depth = 2 }, Xerf)
    raises("zero-mean", nnft.finite.g2, nnft.mlp{ d_in = 1, width = 3, depth = 1,
                                                  mean_w = 0.1 }, Xerf)
    raises("X has 2 columns but the architecture has d_in = 1", nnft.finite.g4c, arch,
           nnft.mat{{1, 2}})
    raises("X contains NaN or Inf", nnft.finite.g2, arch, nnft.mat{{0 / 0}})
    raises("unknown option 'oder'", nnft.finite.g4c, arch, Xerf, { oder = 3 })
    raises("order (quadrature nodes per dimension) must be between 2 and 150",
           nnft.finite.g4c, arch, Xerf, { order = 151 })
    raises("one of auto, gh expected", nnft.finite.g2, arch, Xerf, { method = "mc" })
    raises("nnft.Arch expected", nnft.finite.g2, {}, Xerf)
    raises("mass=0 makes the two-point function infrared divergent", nnft.cosnet,
           { d_in = 1, width = 3, radius = 2 })
    local bad = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = function() error("boom") end }
    raises("activation function failed", nnft.finite.g2, bad, Xerf)
  end)

  it("agrees with Gauss-Hermite where both converge", function()
    local arch = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = "softplus", sigma_b = 0 }
    local _, a = nnft.finite.g4c(arch, Xrelu)
    local _, b = nnft.finite.g4c(arch, Xrelu, { method = "gh", order = 60 })
    assert.is_true(a:maxabsdiff(b) < 1e-12)
  end)
end)

describe("nnft.freeprop", function()
  it("approaches e^{-mr}/(2m) in d = 1 and e^{-mr}/(4 pi r) in d = 3", function()
    for _, r in ipairs{ 0.5, 1, 2 } do
      near(nnft.freeprop(r, { d = 1, R = 1e4, m = 1.3 }), math.exp(-1.3 * r) / 2.6, 1e-8, "d=1")
      near(nnft.freeprop(r, { d = 3, R = 1e5, m = 1.3 }), math.exp(-1.3 * r) / (4 * math.pi * r),
           2e-6, "d=3")
    end
  end)

  it("has the closed form atan(R/m)/(pi m) at r = 0 in d = 1", function()
    near(nnft.freeprop(0, { R = 3, m = 0.5 }), math.atan(6) / (0.5 * math.pi), 1e-13, "G(0)")
  end)

  it("keeps the shape of its argument and gives the momentum form", function()
    local r = nnft.mat{{0, 1, 2}, {3, 4, 5}}
    local G = nnft.freeprop(r, { d = 2, R = 3, m = 1 })
    assert.are.equal(2, G:rows())
    assert.are.equal(3, G:cols())
    near(G:get(2, 1), nnft.freeprop(3, { d = 2, R = 3, m = 1 }), 0, "element")
    local P = nnft.freeprop(r, { d = 2, R = 3, m = 1, space = "momentum" })
    near(P:get(1, 2), 0.5, 1e-15, "1/(p^2+m^2)")
    near(P:get(1, 3), 0.2, 1e-15, "1/(p^2+m^2)")
    near(P:get(2, 1), 0.1, 1e-15, "|p| = R is inside")
    near(P:get(2, 2), 0, 0, "outside the cutoff")
    near(nnft.freeprop(2, { R = 3, m = 1, power = 2, space = "momentum" }), 1 / 25, 1e-15, "s=2")
  end)

  it("refuses bad input", function()
    raises("r must be >= 0", nnft.freeprop, -1, { R = 1, m = 1 })
    raises("p must be >= 0", nnft.freeprop, nnft.mat{{1}, {-2}}, { R = 1, m = 1, space = "momentum" })
    raises("contains NaN or Inf", nnft.freeprop, 0 / 0, { R = 1, m = 1 })
    raises("d must be 1, 2 or 3, got 4", nnft.freeprop, 1, { d = 4, R = 1, m = 1 })
    raises("d must be 1, 2 or 3, got 0", nnft.freeprop, 1, { d = 0, R = 1, m = 1 })
    raises("the cutoff R must be finite and > 0", nnft.freeprop, 1, { R = 0, m = 1 })
    raises("the cutoff R must be finite and > 0", nnft.freeprop, 1, { R = math.huge, m = 1 })
    raises("the mass m must be finite and >= 0", nnft.freeprop, 1, { R = 1, m = -1 })
    raises("diverges at p = 0 for m = 0", nnft.freeprop, 1, { d = 2, R = 1, m = 0 })
    raises("R= and the mass m= are required", nnft.freeprop, 1, { R = 1 })
    raises("unknown option 'M'", nnft.freeprop, 1, { R = 1, m = 1, M = 2 })
    raises("options table", nnft.freeprop, 1)
    -- massless d = 3 converges
    assert.is_true(nnft.freeprop(1, { d = 3, R = 5, m = 0 }) > 0)
  end)
end)

describe("the nnqft recipes", function()
  local bin = os.getenv("NNFT_BIN")
  local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  -- Run a recipe with tiny settings; return its printed output and out= directory.
  local function run(recipe, argstr)
    local dir = nnft._io.mkdtemp("nnft-finite-spec-")
    local p = io.popen(shq(bin) .. " " .. shq(recipe) .. " " .. argstr .. " out=" .. shq(dir .. "/o")
                       .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    return out, dir .. "/o", dir
  end

  it("npoint_vs_width writes m, background and the exact 5/N of the ReLU set-up", function()
    if not bin then
      pending("NNFT_BIN is not set")
      return
    end
    local out, dir, top = run("examples/nnqft/npoint_vs_width.lua", "acts=relu widths=2,5 E=2000 bags=4")
    assert.matches("ReLU-net", out, 1, true)
    local csv = nnft.io.read_csv(dir .. "/npoint_vs_width.csv")
    local seen = 0
    for r = 1, #csv.act do
      if csv.n[r] == 4 then
        near(csv.predicted[r], 5 / csv.N[r], 1e-12, "exact m_4")
        assert.is_true(csv.m[r] > 0 and csv.background[r] > 0)
        seen = seen + 1
      end
    end
    assert.are.equal(2, seen)
    assert.is_truthy(io.open(dir .. "/relu.png"))
    assert.is_truthy(io.open(dir .. "/manifest.json"))
    os.execute("rm -rf " .. shq(top))
  end)

  it("cosnet_free_field compares G2 with the cutoff propagator", function()
    if not bin then
      pending("NNFT_BIN is not set")
      return
    end
    local out, _, top = run("examples/nnqft/cosnet_free_field.lua", "widths=3 E=2000 bags=4 n=3")
    os.execute("rm -rf " .. shq(top))
    assert.matches("exact G2 = cutoff propagator to 0.0e+00", out, 1, true)
    assert.matches("N = 3", out, 1, true)
  end)
end)
