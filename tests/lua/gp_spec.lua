-- nnft.gp and nnft.mercer through the binding: the posterior against a direct dense solve, the
-- log marginal likelihood by hand, the jitter policy, the interpolation limit, hyperparameter
-- recovery within the Fisher-information spread, Mercer spectra against exact ones (RBF on a
-- Gaussian measure, the ReLU NNGP on the circle), the Modes identities, and clear errors.
local nnft = require "nnft"

local function maxabs(A)
  return A:abs():max()
end

local function col(t) -- a column Mat from a Lua array
  local rows = {}
  for i, v in ipairs(t) do rows[i] = { v } end
  return nnft.mat(rows)
end

-- Deterministic inputs: n points in d dimensions, N(0, 1) from nnft.rng.
local function points(n, d, seed) return nnft.rng(seed):normal(n, d) end

local function rbf_matrix(X, Y, ell, v)
  return nnft.kernel.rbf { lengthscale = ell, variance = v or 1 }:matrix(X, Y)
end

describe("nnft.gp", function()
  local X = points(15, 2, 1)
  local Xs = points(7, 2, 2)
  local y = nnft.rng(3):normal(15, 2)
  local k = nnft.kernel.rbf { lengthscale = 0.9, variance = 1.4 }
  local noise = 0.05

  it("matches a direct dense solve with an explicit inverse", function()
    local K, Ks, Kss = k:matrix(X), k:matrix(Xs, X), k:matrix(Xs)
    local Ci = nnft.linalg.inv(K + nnft.mat.eye(15) * noise)
    local mean_ref = Ks * (Ci * y)
    local cov_ref = Kss - Ks * Ci * Ks:t()
    local gp = nnft.gp.fit(k, X, y, { noise = noise })
    local mean, cov = gp:predict(Xs, { cov = true })
    assert.is_true(mean:maxabsdiff(mean_ref) < 1e-9)
    assert.is_true(cov:maxabsdiff(cov_ref) < 1e-10)
    local mean2, var = gp:predict(Xs, { var = true })
    assert.is_true(mean2:maxabsdiff(mean_ref) < 1e-9)
    for i = 1, 7 do
      assert.is_true(math.abs(var:get(i, 1) - math.max(cov_ref:get(i, i), 0)) < 1e-10)
    end
    assert.is_true(gp:predict(Xs):maxabsdiff(mean_ref) < 1e-9) -- mean alone by default
    -- the matrix path gives the same
    local gm = nnft.gp.fit_matrix(K, y, { noise = noise })
    local mm, vv = gm:predict_matrix(Ks, Kss)
    assert.is_true(mm:maxabsdiff(mean_ref) < 1e-9 and vv:maxabsdiff(cov_ref) < 1e-10)
    local _, v2 = gm:predict_matrix(Ks, k:diag(Xs))
    assert.is_true(v2:maxabsdiff(var) < 1e-10)
    -- log p summed over the two outputs
    local C = K + nnft.mat.eye(15) * noise
    local logdet = nnft.linalg.logdet_spd(C)
    local want = 0
    for c = 1, 2 do
      local yc = y:col(c)
      want = want - 0.5 * (yc:t() * Ci * yc):get(1, 1) - 0.5 * logdet - 7.5 * math.log(2 * math.pi)
    end
    assert.is_true(math.abs(gp:logml() - want) < 1e-9 * math.abs(want))
    assert.is_true(math.abs(gm:logml() - gp:logml()) < 1e-9 * math.abs(want))
    assert.is_true(gp:alpha():maxabsdiff(Ci * y) < 1e-8)
    assert.are.equal(0, gp:jitter())
    assert.are.equal(noise, gp:noise())
    local n, kk = gp:size()
    assert.are.same({ 15, 2 }, { n, kk })
    assert.matches("nnft.GP%(n=15, outputs=2", tostring(gp))
  end)

  it("computes the log marginal likelihood of a 2-point problem by hand", function()
    local rho, s, y1, y2 = 0.5, 0.25, 1.0, -2.0
    local det = (1 + s) ^ 2 - rho ^ 2
    local quad = ((1 + s) * (y1 ^ 2 + y2 ^ 2) - 2 * rho * y1 * y2) / det
    local want = -0.5 * quad - 0.5 * math.log(det) - math.log(2 * math.pi)
    local gp = nnft.gp.fit_matrix(nnft.mat { { 1, rho }, { rho, 1 } }, col { y1, y2 }, { noise = s })
    assert.is_true(math.abs(gp:logml() - want) < 1e-14)
  end)

  it("jitters a rank-deficient kernel and reports it", function()
    -- duplicated points and no noise: K(X,X) is singular
    local Xd = nnft.mat { { 0.1 }, { 0.5 }, { 0.5 }, { 0.9 }, { 0.1 } }
    local yd = col { 1, 2, 2, 0, 1 }
    local gp = nnft.gp.fit(nnft.kernel.rbf {}, Xd, yd)
    assert.is_true(gp:jitter() > 0)
    local m, v = gp:predict(nnft.mat.linspace(-1, 2, 9), { var = true })
    assert.is_true(m:isfinite() and v:isfinite())
    assert.is_true(v:min() >= 0)
    -- without the policy: a clear refusal naming the smallest eigenvalue
    local ok, err = pcall(nnft.gp.fit, nnft.kernel.rbf {}, Xd, yd, { jitter = false })
    assert.is_false(ok)
    assert.matches("nnft.gp.fit: kernel matrix %+ noise is not positive definite", err)
    assert.matches("smallest eigenvalue", err)
    assert.matches("increase noise=", err)
  end)

  it("interpolates as the noise goes to zero: variance >= 0, and 0 at the training points", function()
    local Xt = nnft.mat.linspace(-2, 2, 10)
    local yt = nnft.rng(5):normal(10, 1)
    local kern = nnft.kernel.rbf { lengthscale = 0.6 }
    local grid = nnft.mat.linspace(-3, 3, 41)
    for _, s2 in ipairs { 1e-6, 1e-9, 1e-12 } do
      local gp = nnft.gp.fit(kern, Xt, yt, { noise = s2 })
      local m, v = gp:predict(Xt, { var = true })
      assert.is_true(v:max() <= s2 + 1e-13) -- exact: σ² − σ⁴ (C⁻¹)_ii ∈ [0, σ²]
      assert.is_true(v:min() >= 0)
      assert.is_true(m:maxabsdiff(yt) <= 1.01 * s2 * maxabs(gp:alpha()) + 1e-10)
      local _, vg = gp:predict(grid, { var = true })
      assert.is_true(vg:min() >= 0 and vg:max() <= 1)
    end
  end)

  it("recovers the noise of data drawn from a GP within its Fisher spread", function()
    -- y ~ N(0, K + σ² I) for an RBF kernel; the MLE of σ² has standard deviation
    -- 1/sqrt(½ tr(C⁻²)) (the Fisher information of σ² at the truth).
    local n, s2 = 200, 0.2
    local Xg = nnft.rng(11):uniform(n, 1, { low = -4, high = 4 })
    local kern = nnft.kernel.rbf { lengthscale = 0.7 }
    local C = kern:matrix(Xg) + nnft.mat.eye(n) * s2
    local yg = nnft.linalg.chol(C) * nnft.rng(12):normal(n, 1)
    local Ci = nnft.linalg.inv_spd(C)
    local sd = 1 / math.sqrt(0.5 * Ci:square():sum()) -- tr(C⁻²) = Σ_ij (C⁻¹)_ij²
    assert.is_true(sd < 0.2 * s2) -- the check below is not vacuous
    local r = nnft.gp.optimize(kern, Xg, yg, { params = { "noise" } })
    assert.is_true(r.converged)
    assert.is_true(math.abs(r.params.noise - s2) < 4 * sd,
      ("noise %.4f vs %.3f (sd %.4f)"):format(r.params.noise, s2, sd))
    assert.is_nil(r.params.lengthscale)
    -- the returned GP is fitted at the optimum
    assert.are.equal(r.params.noise, r.gp:noise())
    assert.is_true(math.abs(r.gp:logml() - r.logml) < 1e-9 * math.abs(r.logml))
    -- stationarity: ∂ log p/∂σ² = ½ (αᵀα − tr C⁻¹) = 0
    local Co = nnft.linalg.inv_spd(kern:matrix(Xg) + nnft.mat.eye(n) * r.params.noise)
    local a = Co * yg
    local aa, tr = (a:t() * a):get(1, 1), 0
    for i = 1, n do tr = tr + Co:get(i, i) end
    assert.is_true(math.abs(aa - tr) < 1e-4 * tr)
    -- kernel parameters too (defaults: noise and the kernel's positive parameters);
    -- every method reaches the same maximum
    local best
    for _, method in ipairs { "bfgs", "cg", "nm" } do
      local rr = nnft.gp.optimize(kern, Xg, yg, { method = method, start = { lengthscale = 2 },
        max_iter = 500, xtol = 1e-6 })
      assert.is_true(rr.converged, method)
      assert.is_number(rr.params.lengthscale)
      assert.is_number(rr.params.variance)
      best = best or rr.logml
      assert.is_true(math.abs(rr.logml - best) < 1e-5 * math.abs(best), method)
      assert.is_true(rr.logml >= r.logml - 1e-9 * math.abs(best)) -- more freedom, no worse
    end
  end)

  it("optimises an architecture's sigma_w, sigma_b and a builder function's parameters", function()
    local Xa = points(40, 2, 21)
    local ya = (Xa:col(1) * 1.5):sin() + nnft.rng(22):normal(40, 1, { sd = 0.1 })
    local arch = nnft.mlp { d_in = 2, width = 64, depth = 2, act = "relu", sigma_w = 1, sigma_b = 0.5 }
    local r = nnft.gp.optimize(arch, Xa, ya, { params = { "noise", "sigma_w", "sigma_b" } })
    assert.is_true(r.converged)
    -- the optimum beats the start
    local start = nnft.gp.fit(arch:kernel(), Xa, ya, { noise = r.params.noise })
    assert.is_true(r.logml >= start:logml())
    -- and is what a GP built by hand with those parameters gives
    local a2 = nnft.mlp { d_in = 2, width = 64, depth = 2, act = "relu", sigma_w = r.params.sigma_w,
      sigma_b = r.params.sigma_b }
    local gp2 = nnft.gp.fit(a2:kernel(), Xa, ya, { noise = r.params.noise })
    assert.is_true(math.abs(gp2:logml() - r.logml) < 1e-8 * math.abs(r.logml))
    assert.is_true(r.gp:predict(Xa):maxabsdiff(gp2:predict(Xa)) < 1e-8)
    -- a builder function (parameters in sorted order, start= required)
    local calls = 0
    local rf = nnft.gp.optimize(function(p)
      calls = calls + 1
      return nnft.kernel.rbf { lengthscale = p.ell, variance = p.amp }
    end, Xa, ya, { start = { ell = 1, amp = 1 } })
    assert.is_true(rf.converged and calls > 3)
    assert.are.equal("nnft.Kernel", getmetatable(rf.kernel).__name)
    local rk = nnft.gp.optimize(nnft.kernel.rbf {}, Xa, ya)
    assert.is_true(math.abs(rk.logml - rf.logml) < 1e-5 * math.abs(rk.logml))
  end)

  it("refuses bad input with clear messages", function()
    local function err(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      return e
    end
    local arch = nnft.mlp { d_in = 2, width = 8, depth = 1, act = "relu", sigma_w = 1, sigma_b = 0 }
    assert.matches("X has 3 columns but the kernel takes points of dimension 2",
      err(nnft.gp.fit, arch:kernel(), points(4, 3, 1), col { 1, 2, 3, 4 }))
    local Xn = points(4, 2, 1)
    Xn:set(2, 2, 0 / 0)
    assert.matches("X contains NaN or Inf %(row 2, column 2%)", err(nnft.gp.fit, k, Xn, col { 1, 2, 3, 4 }))
    assert.matches("y contains NaN or Inf", err(nnft.gp.fit, k, points(4, 2, 1), col { 1, 0 / 0, 3, 4 }))
    assert.matches("y is 3 x 1 but there are 4 training points",
      err(nnft.gp.fit, k, points(4, 2, 1), col { 1, 2, 3 }))
    assert.matches("noise .* must be finite and >= 0, got %-0.1",
      err(nnft.gp.fit, k, points(4, 2, 1), col { 1, 2, 3, 4 }, { noise = -0.1 }))
    assert.matches("unknown option 'nosie'",
      err(nnft.gp.fit, k, points(4, 2, 1), col { 1, 2, 3, 4 }, { nosie = 0.1 }))
    assert.matches("first argument must be an nnft.Kernel .*got string; for a kernel matrix use nnft.gp.fit_matrix",
      err(nnft.gp.fit, "rbf", points(4, 2, 1), col { 1, 2, 3, 4 }))
    local bad = err(nnft.gp.fit_matrix, nnft.mat { { 1, 2 }, { 2, 1 } }, col { 1, 1 })
    assert.matches("not positive definite even with jitter", bad)
    assert.matches("smallest eigenvalue %-1", bad)
    assert.matches("K must be a square", err(nnft.gp.fit_matrix, nnft.mat.ones(2, 3), col { 1, 1 }))
    assert.matches("not symmetric", err(nnft.gp.fit_matrix, nnft.mat { { 2, 1 }, { 0, 2 } }, col { 1, 1 }))
    local gp = nnft.gp.fit(k, points(4, 2, 1), col { 1, 2, 3, 4 }, { noise = 0.1 })
    assert.matches("Xs has 1 columns", err(gp.predict, gp, nnft.mat { { 1 } }))
    assert.matches("var=true or cov=true, not both", err(gp.predict, gp, points(2, 2, 3), { var = true, cov = true }))
    local gm = nnft.gp.fit_matrix(nnft.mat.eye(2), col { 1, 1 })
    assert.matches("use gp:predict_matrix", err(gm.predict, gm, points(2, 2, 3)))
    assert.matches("one column per training point", err(gm.predict_matrix, gm, nnft.mat.ones(3, 3)))
    gp:release()
    assert.matches("released", err(gp.logml, gp))
    -- optimize
    assert.matches("unknown parameter 'lengthscale' for this architecture",
      err(nnft.gp.optimize, arch, points(5, 2, 1), col { 1, 2, 3, 4, 5 }, { params = { "lengthscale" } }))
    assert.matches("start value of sigma_b must be positive",
      err(nnft.gp.optimize, arch, points(5, 2, 1), col { 1, 2, 3, 4, 5 }, { params = { "sigma_b" } }))
    assert.matches("start.ell is required",
      err(nnft.gp.optimize, function(p) return k end, points(5, 2, 1), col { 1, 2, 3, 4, 5 },
        { params = { "ell" } }))
    assert.matches("start.lenghtscale is not one of the parameters",
      err(nnft.gp.optimize, k, points(5, 2, 1), col { 1, 2, 3, 4, 5 }, { start = { lenghtscale = 1 } }))
    assert.matches("the builder failed: .*boom",
      err(nnft.gp.optimize, function() error("boom") end, points(5, 2, 1), col { 1, 2, 3, 4, 5 },
        { start = { a = 1 } }))
    assert.matches("builder must return an nnft.Kernel",
      err(nnft.gp.optimize, function() return 1 end, points(5, 2, 1), col { 1, 2, 3, 4, 5 },
        { start = { a = 1 } }))
    assert.matches("the builder must be an nnft.Arch, an nnft.Kernel or a function",
      err(nnft.gp.optimize, 3, points(5, 2, 1), col { 1, 2, 3, 4, 5 }))
    assert.matches("one of bfgs, cg, nm",
      err(nnft.gp.optimize, k, points(5, 2, 1), col { 1, 2, 3, 4, 5 }, { method = "newton" }))
  end)
end)

describe("nnft.mercer", function()
  it("reproduces the RBF spectrum on a Gaussian measure within the sampling error", function()
    -- GPML §4.3.1: k = exp(-(x-x')²/(2ℓ²)), μ = N(0, s²): λ_k = sqrt(2a/A) B^k.
    -- First-order sampling error of λ_k: λ_k sd(φ_k(x)²)/sqrt(n), estimated from the modes.
    local n, s, ell = 1000, 1.0, 1.0
    local a, b = 1 / (4 * s * s), 1 / (2 * ell * ell)
    local c = math.sqrt(a * a + 2 * a * b)
    local A = a + b + c
    local B = b / A
    local X = nnft.rng(77):normal(n, 1, { sd = s })
    local modes = nnft.kernel.rbf { lengthscale = ell }:mercer(X, { k = 6 })
    assert.are.equal(6, modes:count())
    local lam, phi = modes:values(), modes:functions()
    for j = 1, 5 do
      local exact = math.sqrt(2 * a / A) * B ^ (j - 1)
      local p2 = phi:col(j):square()
      local sd = exact * math.sqrt(p2:var() / n)
      assert.is_true(math.abs(lam:get(j, 1) - exact) < 5 * sd,
        ("mode %d: %.5f vs %.5f (sd %.2g)"):format(j, lam:get(j, 1), exact, sd))
      assert.is_true(sd < 0.1 * exact)
    end
  end)

  it("reproduces the ReLU NNGP (arc-cosine) spectrum on the circle", function()
    -- equispaced points on the unit circle: K/n is circulant, its eigenvalues the discrete
    -- Fourier sums of κ(θ), which converge to λ_ℓ = (1/2π)∫ κ(θ) cos(ℓθ) dθ up to aliasing
    -- (Σ_{m≠0} λ_{ℓ+mn}: below 1e-7 here, λ_ℓ ~ ℓ^-4)
    local n, sw = 256, 1.3
    local arch = nnft.mlp { d_in = 2, width = 10, depth = 1, act = "relu", sigma_w = sw, sigma_b = 0 }
    local X = nnft.mat.fromfunction(n, 2, function(i, j)
      local t = 2 * math.pi * (i - 1) / n
      return j == 1 and math.cos(t) or math.sin(t)
    end)
    local modes = arch:kernel():mercer(X, { k = 9 })
    local function kappa(t)
      return sw * sw / (2 * math.pi) * (sw * sw / 2) * (math.sin(t) + (math.pi - t) * math.cos(t))
    end
    local function coef(l) -- (1/π)∫_0^π κ(θ) cos(lθ) dθ by Simpson, κ analytic on [0, π]
      local N, h, acc = 2000, math.pi / 2000, 0
      for i = 0, N do
        local t = i * h
        local w = (i == 0 or i == N) and 1 or (i % 2 == 1 and 4 or 2)
        acc = acc + w * kappa(t) * math.cos(l * t)
      end
      return acc * h / 3 / math.pi
    end
    local ells = { 0, 1, 1, 2, 2, 4, 4, 6, 6 } -- odd ℓ >= 3 vanish for the arc-cosine kernel
    local lam = modes:values()
    for j, l in ipairs(ells) do
      assert.is_true(math.abs(lam:get(j, 1) - coef(l)) < 1e-7,
        ("mode %d (l = %d): %.10f vs %.10f"):format(j, l, lam:get(j, 1), coef(l)))
    end
    assert.is_true(math.abs(coef(3)) < 1e-10)
  end)

  it("satisfies orthonormality, reconstruction, Nyström and projection identities", function()
    local n = 50
    local X = points(n, 3, 4)
    local kern = nnft.kernel.rbf { lengthscale = 1.5 }
    local K = kern:matrix(X)
    local modes = nnft.mercer(kern, X)
    local lam, phi = modes:values(), modes:functions()
    assert.is_true((phi:t() * phi / n):maxabsdiff(nnft.mat.eye(n)) < 1e-12)
    local recon = phi * nnft.mat.fromfunction(n, n, function(i, j) return i == j and lam:get(i, 1) or 0 end) * phi:t()
    assert.is_true(recon:maxabsdiff(K) < 1e-12)
    assert.is_true(math.abs(lam:sum() - 1) < 1e-12) -- tr K / n
    for i = 2, n do assert.is_true(lam:get(i, 1) <= lam:get(i - 1, 1)) end
    -- Nyström at the training points reproduces φ for the well-conditioned modes
    local ext = modes:extend(X)
    for j = 1, n do
      if lam:get(j, 1) > 1e-6 then
        assert.is_true(ext:col(j):maxabsdiff(phi:col(j)) < 1e-12 * lam:get(1, 1) / lam:get(j, 1) * 100)
      end
    end
    -- projections: y = Σ_k y_k φ_k
    local y = points(n, 2, 9)
    local yk = modes:project(y)
    assert.is_true((phi * yk):maxabsdiff(y) < 1e-12)
    assert.is_true(yk:maxabsdiff(phi:t() * y / n) < 1e-14)
    -- from the matrix: the same modes; extend takes K(Xnew, X)
    local mm = nnft.mercer_matrix(K, { k = 5 })
    assert.is_true(mm:values():maxabsdiff(lam:block(1, 1, 5, 1)) < 1e-12)
    assert.is_true(mm:functions():maxabsdiff(phi:block(1, 1, n, 5)) < 1e-9)
    local Xn = points(4, 3, 10)
    assert.is_true(mm:extend(kern:matrix(Xn, X)):maxabsdiff(modes:extend(Xn):block(1, 1, 4, 5)) < 1e-9)
    -- partial and full methods agree; rg-compatible accessors
    local full = nnft.mercer(kern, X, { k = 5, method = "full" })
    assert.is_true(full:values():maxabsdiff(mm:values()) < 1e-12)
    assert.is_true(modes:lambda():maxabsdiff(lam) == 0 and modes:phi():maxabsdiff(phi) == 0)
    local nn, kk = mm:size()
    assert.are.same({ n, 5 }, { nn, kk })
    assert.matches("nnft.Modes%(n=50, k=5", tostring(mm))
  end)

  it("refuses bad input with clear messages", function()
    local function err(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      return e
    end
    local arch = nnft.mlp { d_in = 2, width = 8, depth = 1, act = "relu", sigma_w = 1, sigma_b = 0 }
    assert.matches("X has 3 columns but the kernel takes points of dimension 2",
      err(nnft.mercer, arch:kernel(), points(4, 3, 1)))
    assert.matches("first argument must be an nnft.Kernel", err(nnft.mercer, nnft.mat.eye(3), points(3, 2, 1)))
    local Xn = points(4, 2, 1)
    Xn:set(3, 1, 1 / 0)
    assert.matches("X contains NaN or Inf", err(nnft.mercer, nnft.kernel.rbf {}, Xn))
    assert.matches("k %(the number of modes%) must be between 1 and the number of points 4",
      err(nnft.mercer, nnft.kernel.rbf {}, points(4, 2, 1), { k = 5 }))
    assert.matches("unknown option 'K'", err(nnft.mercer, nnft.kernel.rbf {}, points(4, 2, 1), { K = 2 }))
    assert.matches("not symmetric", err(nnft.mercer_matrix, nnft.mat { { 1, 0.5 }, { 0, 1 } }))
    local m = nnft.mercer_matrix(nnft.mat.eye(3))
    assert.matches("pass Ks = K%(Xnew, X%)", err(m.extend, m, nnft.mat.ones(2, 2)))
    assert.matches("y is 2 x 1 but the modes are on 3 points", err(m.project, m, col { 1, 2 }))
    local mk = nnft.kernel.rbf {}:mercer(points(3, 2, 1))
    assert.matches("Xnew has 1 columns", err(mk.extend, mk, nnft.mat { { 1 } }))
    m:release()
    assert.matches("released", err(m.values, m))
  end)

  it("reports objects released by an activation function while their kernel runs", function()
    local function err(f, ...)
      local ok, e = pcall(f, ...)
      assert(not ok, "expected an error")
      return tostring(e)
    end
    local victim
    local arch = nnft.mlp{ d_in = 2, width = 3, depth = 1,
                           act = function(z) if victim then victim:release() end return math.tanh(z) end }
    local Xt = points(5, 2, 1)
    local gp = nnft.gp.fit(arch:kernel(), Xt, col { 1, 2, 3, 4, 5 }, { noise = 0.1 })
    local modes = arch:kernel():mercer(Xt)
    victim = gp
    assert.matches("GP was released while the kernel was evaluated", err(gp.predict, gp, points(3, 2, 2), { var = true }))
    victim = modes
    assert.matches("modes were released while the kernel was evaluated", err(modes.extend, modes, points(3, 2, 2)))
    victim = nil
    local big = nnft.mlp{ d_in = 2, width = 3, depth = 3, act = "exp", sigma_w = 1.2, sigma_b = 0.3 }
    assert.matches("kernel produced NaN or Inf %(overflow", err(nnft.mercer, big:kernel(), Xt))
  end)
end)

describe("the gp_digits recipe", function()
  it("runs with tiny settings and writes the error table, the figure and the manifest", function()
    local bin = os.getenv("NNFT_BIN")
    if not bin then
      pending("NNFT_BIN is not set")
      return
    end
    local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
    local top = nnft._io.mkdtemp("nnft-gp-spec-")
    local dir = top .. "/o"
    local p = io.popen(shq(bin) .. " examples/kernels/gp_digits.lua sizes=30,60 test=60 reps=2 "
      .. "out=" .. shq(dir) .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.matches("NNGP relu depth 2", out, 1, true)
    local csv = nnft.io.read_csv(dir .. "/error.csv")
    assert.are.equal(6, #csv.size) -- 3 kernels x 2 sizes
    for r = 1, 6 do
      assert.is_true(csv.error[r] >= 0 and csv.error[r] < 0.9) -- far better than chance (0.9)
    end
    assert.is_truthy(io.open(dir .. "/error_vs_n.png"))
    assert.is_truthy(io.open(dir .. "/manifest.json"))
    os.execute("rm -rf " .. shq(top))
  end)
end)
