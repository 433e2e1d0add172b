-- nnft.rg: Wilsonian RG of GP regression (docs/api/rg.md). The core is validated in
-- tests/c/test_wilson.c; this spec checks the Lua API against closed forms and direct GP solves,
-- the unpacking of Modes, and the error messages.
local nnft = require "nnft"

local function exact_geometric(K)
  -- RBF ℓ = 0.5 on N(0, 1) (physics.md §5.2): λ_k = sqrt(2a/A) B^(k-1)
  local a, b = 0.25, 2.0
  local c = math.sqrt(a * a + 2 * a * b)
  local A = a + b + c
  local B = b / A
  local c0 = math.sqrt(2 * a / A)
  local t = {}
  for k = 1, K do t[k] = c0 * B ^ (k - 1) end
  return nnft.mat(t), c0, B
end

-- Modes of the Laplace kernel exp(-|x - y|) on n points: the training set's own measure.
local function laplace_modes(n, seed)
  local X = nnft.rng(seed):normal(n, 1)
  local K = nnft.mat.fromfunction(n, n, function(i, j)
    return math.exp(-math.abs(X:get(i, 1) - X:get(j, 1)))
  end)
  local lam, U = nnft.linalg.eigh(K / n)
  local phi = U * math.sqrt(n)
  local y = nnft.mat.fromfunction(n, 1, function(i) return math.sin(2 * X:get(i, 1)) end)
  return { lambda = lam, phi = phi }, K, y, X
end

describe("nnft.rg.wilson", function()
  it("follows the closed-form geometric tail of the RBF spectrum", function()
    local lam, c0, B = exact_geometric(50)
    local flow = nnft.rg.wilson(lam, { noise = 1e-3, n = 100 })
    assert.are.equal(50, flow.K)
    for kap = 1, 50 do
      local want = 1e-3 + c0 * (B ^ kap - B ^ 50) / (1 - B)
      assert.is_true(math.abs(flow.ridge:get(kap, 1) - want) <= 1e-14 * want)
    end
    -- the stopping point: the largest κ with η λ_κ >= σ²(κ)
    local k = flow.stop
    assert.is_true(100 * lam:get(k, 1) >= flow.ridge:get(k, 1))
    assert.is_true(100 * lam:get(k + 1, 1) < flow.ridge:get(k + 1, 1))
    assert.is_true(flow.learn:get(k, 1) >= 0.5 and flow.learn:get(k + 1, 1) < 0.5)
  end)

  it("gives the stopping point as a function of the dataset size", function()
    local lam = exact_geometric(200)
    local ks = nnft.rg.stop(lam, { noise = 1e-3, n = { 1, 10, 100, 1000, 1e4, 1e5 } })
    for i = 2, 6 do assert.is_true(ks:get(i, 1) >= ks:get(i - 1, 1)) end
    assert.is_true(ks:get(6, 1) > ks:get(1, 1))
    assert.are.equal(math.type(nnft.rg.stop(lam, { noise = 1e-3, n = 100 })), "integer")
    -- a stricter threshold keeps fewer modes
    assert.is_true(nnft.rg.stop(lam, { noise = 1e-3, n = 100, threshold = 0.9 })
      <= nnft.rg.stop(lam, { noise = 1e-3, n = 100 }))
  end)

  it("adds the unlearned target power as noise when asked", function()
    local modes, _, y = laplace_modes(30, 3)
    local f0 = nnft.rg.wilson(modes, { noise = 1e-2, y = y })
    local f1 = nnft.rg.wilson(modes, { noise = 1e-2, y = y, include_target = true })
    assert.are.equal(30, f0.n) -- η defaults to the number of points
    local d = f1.ridge - f0.ridge - f1.target_tail
    assert.is_true(d:abs():max() < 1e-14)
    assert.is_true(f1.stop <= f0.stop)
  end)

  it("computes the input-dependent ridge at the training points", function()
    local modes = laplace_modes(30, 4)
    local flow = nnft.rg.wilson(modes, { noise = 1e-2, kappa = { 30, 5 } })
    local lr = flow["local"]
    assert.are.same({ 30, 2 }, { lr:shape() })
    assert.is_true(math.abs(lr:get(7, 1) - 1e-2) < 1e-17)
    -- on the training measure the mean over points is exactly the Gaussian-feature flow
    -- (because (1/n) Σ_i φ_k(x_i)² = 1)
    assert.is_true(math.abs(lr:col(2):mean() - flow.ridge:get(5, 1)) < 1e-12)
    local lr2 = nnft.rg.local_ridge(modes, { noise = 1e-2, kappa = 5 })
    assert.is_true((lr2 - lr:col(2)):abs():max() == 0)
  end)
end)

describe("nnft.rg.modes and nnft.rg.reduced", function()
  it("EK mean equals the GP posterior mean where the EK is exact (η = n, own measure)", function()
    local modes, K, y = laplace_modes(40, 1)
    local a = nnft.rg.modes(modes, { noise = 0.05, y = y })
    local gp = K * nnft.linalg.solve_spd(K + nnft.mat.eye(40) * 0.05, y)
    local ek = modes.phi * a.fbar
    assert.is_true((ek - gp):abs():max() < 1e-10)
    local r = gp - y
    assert.is_true(math.abs(a.total.bias2 - r:emul(r):mean()) < 1e-10)
    for k = 1, 40 do
      local L = a.learn:get(k, 1)
      assert.is_true(L > 0 and L < 1)
    end
  end)

  it("reduced GP at κ = K is the full GP; local and flow ridges agree there", function()
    local modes, K, y = laplace_modes(40, 2)
    local gp = K * nnft.linalg.solve_spd(K + nnft.mat.eye(40) * 0.05, y)
    local p = nnft.rg.reduced(modes, { noise = 0.05, y = y, kappa = { 40, 10 } })
    assert.is_true((p:col(1) - gp):abs():max() < 1e-10)
    local q = nnft.rg.reduced(modes, { noise = 0.05, y = y, kappa = { 40, 10 }, ridge = "local" })
    assert.is_true((q:col(1) - gp):abs():max() < 1e-10)
    -- on the training measure the local ridge at κ = 10 is not constant, so the two differ
    -- but stay close (both drop the same modes)
    assert.is_true((q:col(2) - p:col(2)):abs():max() < 0.2 * gp:abs():max())
    local b = nnft.rg.reduced(modes, { noise = 0.05, y = y, kappa = 10, ridge = "bare" })
    assert.is_true((b - p:col(2)):abs():max() > 0)
  end)

  it("phi_train=: with Gaussian features the renormalised ridge reproduces the full GP", function()
    -- 100 power-law modes then a bulk of 4000 modes of 5e-5 (tail 0.2 = 20 noise); features
    -- i.i.d. N(0, 1) (Gaussian by design); 50 training and 20 test points
    local nlow, M, n, m = 100, 4000, 50, 20
    local K = nlow + M
    local lam = nnft.mat.fromfunction(K, 1, function(k)
      return k <= nlow and 0.5 * k ^ -1.5 or 5e-5 end)
    local Phi = nnft.rng(11):normal(n + m, K)
    local PL = Phi:emul(nnft.mat.ones(n + m, 1) * lam:sqrt():t())
    local Kall = PL:aat()
    local y = PL:block(1, 1, n, nlow) * nnft.rng(12):normal(nlow, 1)
    local Ptr, Pte = Phi:block(1, 1, n, K), Phi:block(n + 1, 1, m, K)
    local full = Kall:block(n + 1, 1, m, n)
      * nnft.linalg.solve_spd(Kall:block(1, 1, n, n) + nnft.mat.eye(n) * 0.01, y)
    local o = { noise = 0.01, kappa = nlow, y = y, phi_train = Ptr, phi = Pte }
    local red = nnft.rg.reduced(lam, o)
    o.ridge = "bare"
    local bare = nnft.rg.reduced(lam, o)
    o.ridge = "local"
    local loc = nnft.rg.reduced(lam, o)
    local function rms(v) return math.sqrt(v:emul(v):mean()) end
    -- first-order scale of the difference: sqrt(Σ_{k>κ} λ_k²) ~ sqrt(M) 5e-5 = 3e-3 per unit
    -- weight, against a bare-ridge error of order tail/σ² ~ 20 times larger
    assert.is_true(rms(red - full) < 0.2 * rms(bare - full))
    assert.is_true(rms(loc - full) < 0.2 * rms(bare - full))
  end)

  it("accepts Modes with methods values()/phi()", function()
    local modes = laplace_modes(20, 5)
    local obj = setmetatable({}, { __index = {
      values = function() return modes.lambda end, phi = function() return modes.phi end } })
    local f = nnft.rg.wilson(obj, { noise = 1e-2 })
    assert.are.equal(20, f.K)
  end)
end)

describe("nnft.rg diagnostics", function()
  it("fits the power law of a synthetic spectrum", function()
    local t = {}
    for k = 1, 300 do t[k] = 2 * k ^ -1.5 end
    local f = nnft.rg.fit_power(nnft.mat(t), { kmin = 3, kmax = 200 })
    assert.is_true(math.abs(f.alpha - 0.5) < 1e-12)
    assert.is_true(math.abs(f.exponent - 1 / 3) < 1e-12)
    assert.is_true(math.abs(f.r2 - 1) < 1e-12)
  end)

  it("measures Gaussianity and joint histograms", function()
    local n = 4000
    local phi = nnft.rng(9):normal(n, 3)
    local g = nnft.rg.gaussianity(phi)
    for k = 1, 3 do
      assert.is_true(math.abs(g.kurtosis:get(k, 1)) < 5 * math.sqrt(24 / n))
    end
    local h, outside = nnft.rg.hist2d(phi, 1, 2, { bins = 10, range = 3 })
    assert.are.equal(n, h:sum() + outside)
  end)

  it("measures a learning curve that falls with n", function()
    local modes, K, y = laplace_modes(120, 6)
    local lc = nnft.rg.learning_curve(K, y, { sizes = { 5, 20, 80 }, noise = 1e-3, test = 40 })
    assert.is_true(lc.mse:get(3, 1) < lc.mse:get(1, 1))
  end)
end)

describe("nnft.rg errors", function()
  local lam = nnft.mat{ 1, 0.5, 0.25 }
  local function err(f, pat)
    local ok, msg = pcall(f)
    assert.is_false(ok)
    assert.is_truthy(tostring(msg):find(pat, 1, true), tostring(msg))
  end
  it("refuses bad options and values with clear messages", function()
    err(function() nnft.rg.wilson(lam, { noise = 1e-2, n = 10, nosie = 1 }) end,
      "unknown option 'nosie'")
    err(function() nnft.rg.wilson(lam, { n = 10 }) end, "noise= is required")
    err(function() nnft.rg.wilson(lam, { noise = -1, n = 10 }) end, "noise (the ridge sigma^2)")
    err(function() nnft.rg.wilson(lam, { noise = 1, n = 0 }) end, "must be a finite number > 0")
    err(function() nnft.rg.stop(lam, { noise = 1, n = { 10, -1 } }) end, "must be finite and > 0")
    err(function() nnft.rg.wilson(nnft.mat{ 1, -0.1, -0.2 }, { noise = 1, n = 10 }) end,
      "negative beyond round-off")
    err(function() nnft.rg.wilson(nnft.mat{ 1, 2, 0 }, { noise = 1, n = 10 }) end,
      "sorted decreasing")
    err(function() nnft.rg.wilson(lam, { noise = 1, n = 10, threshold = 1 }) end,
      "strictly between 0 and 1")
    local modes = laplace_modes(10, 7)
    err(function() nnft.rg.local_ridge(modes, { noise = 1, kappa = 11 }) end,
      "between 1 and K = 10")
    err(function() nnft.rg.local_ridge(modes, { noise = 1, kappa = 0 }) end,
      "between 1 and K = 10")
    err(function() nnft.rg.reduced(modes, { noise = 1, kappa = 11, y = nnft.mat(10, 1) }) end,
      "between 1 and K = 10")
    err(function() nnft.rg.reduced(modes, { noise = 1, kappa = 3 }) end, "targets are required")
    err(function() nnft.rg.wilson(lam, { noise = 1, n = 10, include_target = true }) end,
      "targets are required")
    -- a non-boolean include_target is named as such (stop/reduced said "targets are required")
    err(function() nnft.rg.wilson(modes, { noise = 1, include_target = "yes" }) end,
      "include_target= must be a boolean, got string")
    err(function() nnft.rg.stop(modes, { noise = 1, n = 10, include_target = "yes" }) end,
      "include_target= must be a boolean, got string")
    err(function() nnft.rg.reduced(modes, { noise = 1, kappa = 1, include_target = "yes" }) end,
      "include_target= must be a boolean, got string")
    err(function() nnft.rg.reduced(lam, { noise = 1, kappa = 1 }) end, "a Mat alone")
    err(function() nnft.rg.fit_power(nnft.mat{ 1, 0.5, 0 }, { kmax = 3 }) end,
      "positive eigenvalues")
  end)
end)
