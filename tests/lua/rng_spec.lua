-- nnft.rng and the Rng userdata, through Lua: the seed and stream conventions (checked against a
-- pure-Lua Philox4x32-10), reproducibility, independence of streams, the samplers' distributions
-- at fixed seeds (tolerances: 5 standard errors, stated at each check), and every bad input.
-- Runs under stock lua5.4 (require "nnft") and under the nnft interpreter.
local nnft = require "nnft"

local NSE = 5 -- statistical tolerance in standard errors

-- f(...) must raise an error containing `needle` (plain text).
local function raises(needle, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error containing '" .. needle .. "', got none")
  err = tostring(err)
  assert(err:find(needle, 1, true), ("error %q does not contain %q"):format(err, needle))
end

-- Every element of A equals the corresponding element of B.
local function equal_mats(A, B)
  if A:rows() ~= B:rows() or A:cols() ~= B:cols() then return false end
  return A:maxabsdiff(B) == 0
end

local function near(x, want, tol, what)
  assert(math.abs(x - want) <= tol,
    ("%s = %.10g, expected %.10g within %.3g"):format(what or "value", x, want, tol))
end

-- Pure-Lua Philox4x32-10 (the published algorithm), to check the documented layout.
local function philox(c0, c1, c2, c3, k0, k1)
  local M = 0xffffffff
  for _ = 1, 10 do
    local p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2 -- < 2^64: exact as unsigned
    c0, c1, c2, c3 = ((p1 >> 32) ~ c1 ~ k0) & M, p1 & M, ((p0 >> 32) ~ c3 ~ k1) & M, p0 & M
    k0, k1 = (k0 + 0x9E3779B9) & M, (k1 + 0xBB67AE85) & M
  end
  return c0, c1, c2, c3
end

-- The raw 64-bit draw: integer(minint, maxint) = minint + u64 (mod 2^64).
local function raw_u64(r)
  return r:integer(math.mininteger, math.maxinteger) - math.mininteger
end

describe("nnft.rng", function()
  it("constructs from a seed, callable or through new", function()
    local a, b = nnft.rng(42), nnft.rng.new(42)
    assert.are.equal("nnft.Rng(seed=42)", tostring(a))
    assert.is_true(equal_mats(a:normal(3, 4), b:normal(3, 4)))
    assert.are.equal(42, a:seed())
    assert.are.equal(a:number(), b:number())
    assert.are.equal(nnft.rng(42.0):number(), nnft.rng(42):number())
    assert.are.equal(0, nnft.rng(0):seed())
    assert.are.equal(math.maxinteger, nnft.rng(math.maxinteger):seed())
  end)

  it("follows the documented Philox layout: key = seed, counter = (position, stream)", function()
    -- Random123 known answer: key 0, counter 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8
    local r = nnft.rng(0)
    assert.are.equal(0xe169c58d6627e8d5, raw_u64(r))
    assert.are.equal(0x9b00dbd8bc57ac4c, raw_u64(r))
    -- seed s, stream i, block n: Philox_{s}(n_lo, n_hi, i, 0)
    local seed = 0x0123456789abcdef
    local k0, k1 = seed & 0xffffffff, seed >> 32
    local s = nnft.rng(seed):stream(7)
    for n = 0, 40 do -- across the buffer refill at block 32
      local w0, w1, w2, w3 = philox(n, 0, 7, 0, k0, k1)
      assert.are.equal(w0 | w1 << 32, raw_u64(s))
      assert.are.equal(w2 | w3 << 32, raw_u64(s))
    end
    -- number() = top 53 bits of the u64
    local u = nnft.rng(0):number()
    assert.are.equal((0xe169c58d6627e8d5 >> 11) * 2.0^-53, u)
  end)

  it("tells and seeks positions in 32-bit words", function()
    local r = nnft.rng(5)
    assert.are.equal(0, r:tell())
    r:normal(10, 10)
    local pos = r:tell()
    assert.is_true(pos >= 200)
    local x = r:number()
    assert.are.equal(x, nnft.rng(5):seek(pos):number())
    assert.are.equal(r, r:seek(0))
  end)

  it("is reproducible: same seed and stream, same numbers, whatever else was drawn", function()
    local a = nnft.rng(7)
    local s3 = a:stream(3):normal(50, 2)
    a:uniform(100, 3) -- the parent draws
    local later = a:stream(3):normal(50, 2)
    assert.is_true(equal_mats(s3, later))
    -- creation order does not matter
    local b = nnft.rng(7)
    local b5, b3 = b:stream(5), b:stream(3)
    assert.is_true(equal_mats(b3:normal(50, 2), s3))
    assert.is_true(equal_mats(b5:normal(4, 4), nnft.rng(7):stream(5):normal(4, 4)))
    -- nested streams: stream(3, 7) = stream(3):stream(7), also from a stream that has drawn
    local c = nnft.rng(7):stream(3)
    c:normal(9, 9)
    assert.is_true(equal_mats(c:stream(7):uniform(5, 5), nnft.rng(7):stream(3, 7):uniform(5, 5)))
    assert.are.equal("nnft.Rng(seed=7, stream=3.7)", tostring(nnft.rng(7):stream(3, 7)))
    local p, depth = nnft.rng(7):stream(3, 7):path()
    assert.are.same({3, 7}, p)
    assert.are.equal(2, depth)
    -- copy forks at the current position
    local d = nnft.rng(11)
    d:number()
    local e = d:copy()
    assert.is_true(equal_mats(d:normal(5, 1), e:normal(5, 1)))
    -- single and bulk draws read the same sequence
    local f, g = nnft.rng(12), nnft.rng(12)
    local U = f:uniform(6, 1)
    for i = 1, 6 do assert.are.equal(U:get(i, 1), g:number()) end
  end)

  it("gives different, uncorrelated streams (|rho| < 5/sqrt(n))", function()
    local n = 20000
    local root = nnft.rng(1)
    local pairs_ = {
      {root:stream(1), root:stream(2)}, {nnft.rng(1), root:stream(1)},
      {root:stream(1, 1), root:stream(1, 2)}, {root:stream(1, 1), root:stream(2, 1)},
      {nnft.rng(1), nnft.rng(2)},
    }
    for k, pr in ipairs(pairs_) do
      local x, y = pr[1]:normal(n, 1), pr[2]:normal(n, 1)
      assert.is_false(equal_mats(x, y))
      local rho = ((x - x:mean()):emul(y - y:mean())):mean() / math.sqrt(x:var() * y:var())
      near(rho, 0, NSE / math.sqrt(n), "correlation of pair " .. k)
    end
  end)

  it("normal: moments E z = 0, E z^2 = 1, E z^4 = 3 within 5 standard errors", function()
    local n = 400000
    local Z = nnft.rng(2024):normal(n, 1)
    near(Z:mean(), 0, NSE * math.sqrt(1 / n), "mean")
    near((Z ^ 2):mean(), 1, NSE * math.sqrt(2 / n), "E z^2")
    near((Z ^ 4):mean(), 3, NSE * math.sqrt(96 / n), "E z^4") -- var z^4 = 105 - 9
    -- mean and sd options
    local W = nnft.rng(5):normal(1000, 100, { mean = -2, sd = 3 })
    near(W:mean(), -2, NSE * 3 / math.sqrt(1e5), "mean")
    near(W:var(), 9, NSE * 9 * math.sqrt(2 / 1e5), "var")
    assert.are.equal(4, nnft.rng(1):normal(2, 2, { mean = 4, sd = 0 }):min())
  end)

  it("uniform: in [low, high), mean and variance within 5 standard errors", function()
    local n = 200000
    local U = nnft.rng(3):uniform(n, 1, { low = -1, high = 3 })
    assert.is_true(U:min() >= -1 and U:max() < 3)
    near(U:mean(), 1, NSE * math.sqrt(16 / 12 / n), "mean")
    near(U:var(), 16 / 12, NSE * math.sqrt(256 / 180 / n), "var")
    local V = nnft.rng(3):uniform(10, 10)
    assert.is_true(V:min() >= 0 and V:max() < 1)
    for _ = 1, 100 do
      local x = nnft.rng(3):number()
      assert.is_true(x >= 0 and x < 1)
    end
  end)

  it("phases: in [-pi, pi), mean 0", function()
    local P = nnft.rng(4):phases(100000, 1)
    assert.is_true(P:min() >= -math.pi and P:max() < math.pi)
    near(P:mean(), 0, NSE * math.pi / math.sqrt(3 * 1e5), "mean")
    assert.are.equal(2, nnft.rng(4):phases(2, 3):rows())
  end)

  it("ball: n x d points inside the ball, radii with CDF (r/R)^d (KS test)", function()
    local n, d, R = 5000, 3, 2
    local B = nnft.rng(8):ball(n, d, R)
    assert.are.equal(n, B:rows())
    assert.are.equal(d, B:cols())
    local radii = {}
    for i = 1, n do
      local s = 0
      for j = 1, d do s = s + B:get(i, j) ^ 2 end
      assert(s <= R * R, "point outside the ball")
      radii[i] = math.sqrt(s)
    end
    table.sort(radii)
    local D = 0
    for i = 1, n do
      local F = (radii[i] / R) ^ d
      D = math.max(D, F - (i - 1) / n, i / n - F)
    end
    assert(math.sqrt(n) * D < 1.95, "KS statistic " .. math.sqrt(n) * D) -- P ~ 0.001
    -- d = 1: uniform on [-R, R]
    local L = nnft.rng(8):ball(20000, 1, 0.5)
    assert.is_true(L:min() >= -0.5 and L:max() <= 0.5)
    near(L:mean(), 0, NSE * 0.5 / math.sqrt(3 * 20000), "mean")
  end)

  it("GSL distributions: gamma mean and variance, poisson integers, others' means", function()
    local n = 200000
    local k, th = 2.5, 1.5
    local G = nnft.rng(9):gamma(n, 1, { shape = k, scale = th })
    local var = k * th * th
    near(G:mean(), k * th, NSE * math.sqrt(var / n), "gamma mean")
    near(G:var(), var, NSE * var * math.sqrt((2 + 6 / k) / n), "gamma var")
    near(nnft.rng(9):gamma(n, 1, { shape = 3 }):mean(), 3, NSE * math.sqrt(3 / n), "scale 1")
    local P = nnft.rng(9):poisson(n, 1, { mean = 4.2 })
    assert.is_true(((P - P:floor()) ^ 2):max() == 0)
    near(P:mean(), 4.2, NSE * math.sqrt(4.2 / n), "poisson mean")
    near(nnft.rng(9):chisq(n, 1, { df = 3 }):mean(), 3, NSE * math.sqrt(6 / n), "chisq mean")
    near(nnft.rng(9):exponential(n, 1):mean(), 1, NSE * math.sqrt(1 / n), "exponential mean")
    near(nnft.rng(9):exponential(n, 1, { mean = 2 }):mean(), 2, NSE * 2 / math.sqrt(n), "mean 2")
    near(nnft.rng(9):beta(n, 1, { a = 2, b = 3 }):mean(), 0.4, NSE * 0.2 / math.sqrt(n), "beta")
    near(nnft.rng(9):student_t(n, 1, { df = 5 }):mean(), 0, NSE * math.sqrt(5 / 3 / n), "t mean")
    near(nnft.rng(9):laplace(n, 1, { scale = 2 }):mean(), 0, NSE * math.sqrt(8 / n), "laplace")
    local LN = nnft.rng(9):lognormal(n, 1, { mu = 0, sigma = 0.5 })
    near(LN:mean(), math.exp(0.125), NSE * math.sqrt((math.exp(0.25) - 1) * math.exp(0.25) / n),
      "lognormal mean")
    assert.are.equal(2, nnft.rng(9):cauchy(3, 2, { scale = 0.5 }):cols())
    -- reproducible through the adapter
    assert.is_true(equal_mats(nnft.rng(9):gamma(5, 5, { shape = 0.5 }),
      nnft.rng(9):gamma(5, 5, { shape = 0.5 })))
  end)

  it("integer, permutation, fill_normal, fill_uniform", function()
    local r = nnft.rng(10)
    local seen = {}
    for _ = 1, 600 do
      local v = r:integer(1, 6)
      assert.is_true(math.type(v) == "integer" and v >= 1 and v <= 6)
      seen[v] = (seen[v] or 0) + 1
    end
    for v = 1, 6 do near(seen[v], 100, NSE * math.sqrt(100 * 5 / 6), "count of " .. v) end
    assert.are.equal(5, r:integer(5, 5))
    local w = r:integer(3)
    assert.is_true(w >= 1 and w <= 3)
    local neg = r:integer(-10, -5)
    assert.is_true(neg >= -10 and neg <= -5)
    assert.are.equal("integer", math.type(r:integer(math.mininteger, math.maxinteger)))

    local p = r:permutation(10)
    local sorted = {}
    for i, v in ipairs(p) do sorted[i] = v end
    table.sort(sorted)
    for i = 1, 10 do assert.are.equal(i, sorted[i]) end
    assert.are.same({}, r:permutation(0))
    assert.are.same(nnft.rng(1):permutation(20), nnft.rng(1):permutation(20))

    local M = nnft.mat(4, 3)
    assert.are.equal(M, nnft.rng(6):fill_normal(M, { sd = 2 }))
    assert.is_true(equal_mats(M, nnft.rng(6):normal(4, 3, { sd = 2 })))
    nnft.rng(6):fill_uniform(M, { low = 2, high = 3 })
    assert.is_true(M:min() >= 2 and M:max() < 3)
    -- a view is filled in place, its parent's other entries untouched
    local big = nnft.mat(4, 4)
    nnft.rng(6):fill_normal(big:block(2, 2, 2, 2))
    assert.are.equal(0, big:get(1, 1))
    assert.are.equal(nnft.rng(6):normal(1, 1):get(1, 1), big:get(2, 2))
  end)

  it("empty sizes are fine", function()
    local r = nnft.rng(1)
    assert.are.equal(0, r:normal(0, 3):rows())
    assert.are.equal(0, r:uniform(3, 0):cols())
    assert.are.equal(0, r:ball(0, 2, 1):rows())
  end)

  it("rejects bad seeds and stream indices", function()
    raises("seed must be an integer in 0 .. 2^63-1, got -1", nnft.rng, -1)
    raises("seed must be an integer in 0 .. 2^63-1, got 1.5", nnft.rng, 1.5)
    raises("seed must be an integer in 0 .. 2^63-1, got string", nnft.rng, "42")
    raises("seed must be an integer in 0 .. 2^63-1, got nothing", nnft.rng)
    raises("seed must be an integer", nnft.rng.new, math.huge)
    local r = nnft.rng(1)
    raises("stream index must be an integer >= 1, got 0", r.stream, r, 0)
    raises("stream index must be an integer >= 1, got -2", r.stream, r, -2)
    raises("stream index must be an integer >= 1, got 1.5", r.stream, r, 1.5)
    raises("stream index must be an integer >= 1, got string", r.stream, r, "x")
    raises("stream index must be an integer >= 1, got nothing", r.stream, r)
    raises("rng:seek: position must be >= 0", r.seek, r, -1)
    raises("nnft.Rng expected", r.number, {})
  end)

  it("rejects bad sizes, parameters and options", function()
    local r = nnft.rng(1)
    raises("size must be non-negative, got -1", r.normal, r, -1, 2)
    raises("expected an integer size", r.uniform, r, 2.5, 2)
    raises("rng:normal: sd must be finite and >= 0, got -1", r.normal, r, 2, 2, { sd = -1 })
    raises("rng:normal: mean must be finite", r.normal, r, 2, 2, { mean = 0 / 0 })
    raises("rng:normal: unknown option 'sigma' (allowed: mean, sd)", r.normal, r, 2, 2,
      { sigma = 1 })
    raises("bad option 'sd'", r.normal, r, 2, 2, { sd = "x" })
    raises("rng:uniform: need low < high, got low = 1", r.uniform, r, 2, 2, { low = 1, high = 1 })
    raises("rng:uniform: unknown option 'lo'", r.uniform, r, 2, 2, { lo = 0 })
    raises("rng:uniform: low and high must be finite", r.uniform, r, 1, 1, { high = math.huge })
    raises("rng:phases: unknown option 'x'", r.phases, r, 1, 1, { x = 1 })
    raises("rng:ball: radius R must be finite and > 0, got 0", r.ball, r, 3, 2, 0)
    raises("rng:ball: radius R must be finite and > 0, got -1", r.ball, r, 3, 2, -1)
    raises("rng:ball: dimension d must be an integer >= 1, got 0", r.ball, r, 3, 0, 1)
    raises("rng:ball: dimension d must be an integer >= 1, got 1.5", r.ball, r, 3, 1.5, 1)
    raises("size must be non-negative", r.ball, r, -3, 2, 1)
    raises("rng:gamma: option 'shape' is required", r.gamma, r, 2, 2)
    raises("rng:gamma: shape must be finite and > 0, got -1", r.gamma, r, 2, 2, { shape = -1 })
    raises("rng:gamma: scale must be finite and > 0, got 0", r.gamma, r, 2, 2,
      { shape = 1, scale = 0 })
    raises("rng:gamma: unknown option 'rate'", r.gamma, r, 2, 2, { shape = 1, rate = 2 })
    raises("rng:poisson: mean must be finite and >= 0, got -1", r.poisson, r, 1, 1, { mean = -1 })
    raises("rng:poisson: mean must be <= 1e9", r.poisson, r, 1, 1, { mean = 1e12 })
    raises("rng:beta: option 'b' is required", r.beta, r, 1, 1, { a = 1 })
    raises("rng:chisq: df must be finite and > 0, got 0", r.chisq, r, 1, 1, { df = 0 })
    raises("rng:student_t: option 'df' is required", r.student_t, r, 1, 1)
    raises("rng:exponential: mean must be finite and > 0", r.exponential, r, 1, 1, { mean = 0 })
    raises("rng:lognormal: sigma must be finite and >= 0", r.lognormal, r, 1, 1, { sigma = -1 })
    raises("rng:integer: empty range 5 .. 1", r.integer, r, 5, 1)
    raises("number has no integer representation", r.integer, r, 1.5, 3)
    raises("nnft.Mat expected", r.fill_normal, r, {})
    raises("rng:fill_normal: sd must be finite and >= 0", r.fill_normal, r, nnft.mat(2, 2),
      { sd = -1 })
  end)

  it("closes: __close and close() make later use an error", function()
    local r = nnft.rng(3)
    r:close()
    r:close() -- idempotent
    assert.are.equal("nnft.Rng (closed)", tostring(r))
    raises("Rng has been closed", r.number, r)
    do
      local s <close> = nnft.rng(4)
      assert.is_true(s:number() < 1)
    end
  end)
end)
