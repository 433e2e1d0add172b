-- nnft.brg (docs/api/brg.md, physics.md §7.3–§7.5) against independent computations and exact
-- properties:
--   infinite_width  at Λ = 0 every mode is kept and, with K/n = U diag(κ) Uᵀ, e_n(x_i) = √n U_in,
--                   y_n = (1/n) Σ_i y_i e_n(x_i) and the Nyström extension, the §7.3 formulas sum to
--                     μ_0(x)   = K(x, X) (K + s 1)⁻¹ y,                 s = n σ_ε²/T,
--                     Σ_0(x,x) = K(x,x) − K(x,X)(K + s 1)⁻¹K(X,x) − r(x),  r(x) = K(x,x) − Σ_n κ_n e_n(x)²
--                   i.e. the GP posterior with noise variance n σ_ε²/T (σ_ε² when T = n), exactly at
--                   the training points (r = 0 there with all n modes) and up to the Nyström
--                   residual r(x) at new points; checked against nnft.linalg.solve_spd and
--                   nnft.gp.fit. Above the largest κ_n T/σ_ε² no mode is kept: μ = 0, Σ = the
--                   prior Σ_n κ_n e_n e_n' (= K on the points) for reset="prior", 0 for "drop".
--                   Kept counts never increase with Λ.
--   cos-net         cosnet_cutoff inverts fisher_of_momentum (λ(R_Λ) = Λ, d = 1 and 3); mass_shift
--                   and erg_rescale against the §7.4 formulas written out here.
--   flow            Λ = 0 reproduces each member's un-coarse-grained test MSE exactly (strict rule);
--                   action="zero" above every Fisher eigenvalue zeroes every output; G2 = mean f f';
--                   members above mse_max are dropped; a list of Fishers gives the same numbers.
--   errors          Λ < 0, unknown options, R_Λ² < 0, descending schedules.
local nnft = require "nnft"
local U = require "spec_util"
local errmsg = U.errmsg

local function near(x, want, tol, what)
  assert(math.abs(x - want) <= tol,
    ("%s = %.15g, expected %.15g within %.3g"):format(what or "value", x, want, tol))
end

describe("nnft.brg.infinite_width", function()
  local n, T, sig = 8, 5, 0.3
  local X = nnft.mat.linspace(-2, 2, n)
  local Xn = nnft.mat{ { -1.3 }, { 0.1 }, { 2.5 } }
  local kern = nnft.kernel.rbf{ lengthscale = 1.2 }
  local y = nnft.mat.fromfunction(n, 2, function(i, c) return math.sin(i * c) + 0.1 * i end)
  local modes = kern:mercer(X)
  local s = n * sig ^ 2 / T

  it("Λ = 0 is the GP posterior with noise n σ²/T (means and variances)", function()
    local res = nnft.brg.infinite_width(modes, y, { T = T, sigma = sig, cutoffs = { 0 }, at = Xn, cov = true })
    local r = res[1]
    assert.are.equal(n, r.kept)
    local K = kern:matrix(X)
    local Kn = kern:matrix(Xn, X)
    local C = K + nnft.mat.eye(n) * s
    local mean = K * nnft.linalg.solve_spd(C, y)
    local mean_n = Kn * nnft.linalg.solve_spd(C, y)
    local post = K - K * nnft.linalg.solve_spd(C, K)
    assert.is_true(r.mean:maxabsdiff(mean) < 1e-10, "mean at the points")
    assert.is_true(r.mean_at:maxabsdiff(mean_n) < 1e-10, "mean at new points")
    assert.is_true(r.cov:maxabsdiff(post) < 1e-10, "covariance at the points")
    for i = 1, n do near(r.var:get(i, 1), post:get(i, i), 1e-10, "variance at the points") end
    -- new points: the GP variance = Σ_0(x,x) + Nyström residual
    local gp = nnft.gp.fit(kern, X, y, { noise = s })
    local gm, gv = gp:predict(Xn, { var = true })
    assert.is_true(r.mean_at:maxabsdiff(gm) < 1e-10, "mean vs nnft.gp.fit")
    local E = modes:extend(Xn)
    local resid = kern:diag(Xn) - E:emul(E) * modes:values()
    for i = 1, Xn:rows() do
      near(r.var_at:get(i, 1) + resid:get(i, 1), gv:get(i, 1), 1e-9, "variance vs nnft.gp.fit")
      near(r.cov_at:get(i, i), r.var_at:get(i, 1), 1e-12, "cov_at diagonal")
    end
  end)

  it("Λ above every mode: μ = 0, Σ = prior (reset) or 0 (drop); kept counts monotone", function()
    local kap = modes:values()
    local top = T * kap:get(1, 1) / sig ^ 2
    local grid = { 0 }
    for e = -8, 0 do grid[#grid + 1] = top * 10 ^ (e / 2) end
    grid[#grid + 1] = 2 * top
    local res = nnft.brg.infinite_width(modes, y, { T = T, sigma = sig, cutoffs = grid, at = Xn, cov = true })
    local drop = nnft.brg.infinite_width(modes, y, { T = T, sigma = sig, cutoffs = grid, reset = "drop" })
    local last = res[#grid]
    assert.are.equal(0, last.kept)
    assert.are.equal(0, last.mean:abs():max())
    assert.are.equal(0, last.mean_at:abs():max())
    assert.is_true(last.cov:maxabsdiff(kern:matrix(X)) < 1e-10, "prior covariance = K on the points")
    local E = modes:extend(Xn)
    assert.is_true(last.var_at:maxabsdiff(E:emul(E) * kap) < 1e-12)
    assert.are.equal(0, drop[#grid].var:abs():max())
    assert.are.equal(1, res[#grid - 1].kept)        -- Λ = λ_1 keeps the top mode (κ ≥ Λσ²/T)
    for j = 2, #grid do
      assert.is_true(res[j].kept <= res[j - 1].kept, "kept modes must not increase with Λ")
      assert.are.equal(res[j].kept, drop[j].kept)
      for i = 1, n do assert.is_true(drop[j].var:get(i, 1) <= res[j].var:get(i, 1) + 1e-15) end
    end
  end)

  it("refuses bad input", function()
    assert.matches("Λ = %-1 < 0", errmsg(nnft.brg.infinite_width, modes, y, { cutoffs = { 0, -1 } }))
    assert.matches("unknown option 'sigma_eps'", errmsg(nnft.brg.infinite_width, modes, y,
      { cutoffs = { 0 }, sigma_eps = 1 }))
    assert.matches("option 'cutoffs' is required", errmsg(nnft.brg.infinite_width, modes, y, {}))
    assert.matches("reset must be", errmsg(nnft.brg.infinite_width, modes, y, { cutoffs = { 0 }, reset = "zero" }))
    assert.matches("y has 3 rows", errmsg(nnft.brg.infinite_width, modes, nnft.mat.zeros(3, 1), { cutoffs = { 0 } }))
  end)
end)

describe("nnft.brg cos-net (§7.4)", function()
  local o = { R = 5, m = 1, N = 100, sigma = 0.7, T = 3 }

  it("cosnet_cutoff inverts fisher_of_momentum; mass_shift, erg_rescale", function()
    for _, b in ipairs{ 0.3, 1, 2.5, 4.9 } do
      local L = nnft.brg.fisher_of_momentum(b, o)
      near(nnft.brg.cosnet_cutoff(L, o), b, 1e-12, "R_Λ at Λ = λ(b)")
    end
    for _, L in ipairs{ 1e-3, 0.01, 0.02 } do
      near(nnft.brg.fisher_of_momentum(nnft.brg.cosnet_cutoff(L, o), o), L, 1e-14, "λ(R_Λ)")
    end
    local D = o.T * 2 * o.R / (o.N * o.sigma ^ 2 * 2 * math.pi)
    near(nnft.brg.mass_shift{ T = o.T, R = o.R, N = o.N, sigma = o.sigma }, D, 1e-15 * D, "Δ, d = 1")
    near(nnft.brg.fisher_of_momentum(2, o), D / (4 + 1), 1e-15, "λ(b) = Δ/(b² + m²)")
    -- d = 3: vol(B_R) = 4π R³/3, |b|² from the components
    local o3 = { R = 2, m = 0.5, N = 50, d = 3 }
    local D3 = (4 * math.pi * 8 / 3) / (50 * (2 * math.pi) ^ 3)
    near(nnft.brg.mass_shift{ R = 2, N = 50, d = 3 }, D3, 1e-15 * D3, "Δ, d = 3")
    near(nnft.brg.fisher_of_momentum({ 1, 1, 1 }, o3), D3 / (3 + 0.25), 1e-15 * D3, "λ(b), d = 3")
    near(nnft.brg.cosnet_cutoff(nnft.brg.fisher_of_momentum(1.5, o3), o3), 1.5, 1e-12, "R_Λ, d = 3")
    local s, m2 = nnft.brg.erg_rescale{ m = 1, R = 5, R_Lambda = 2.5 }
    near(s, 2, 0, "s = R/R_Λ")
    near(m2, 2, 0, "m' = s m")
  end)

  it("refuses bad input", function()
    local top = nnft.brg.fisher_of_momentum(0, o)
    assert.matches("R_Λ² = .* < 0", errmsg(nnft.brg.cosnet_cutoff, 2 * top, o))
    assert.matches("Λ must be > 0", errmsg(nnft.brg.cosnet_cutoff, -1, o))
    assert.matches("unknown option 'radius'", errmsg(nnft.brg.cosnet_cutoff, 0.01, { radius = 5, m = 1, N = 10 }))
    assert.matches("option 'N' is required", errmsg(nnft.brg.fisher_of_momentum, 1, { R = 5, m = 1 }))
    assert.matches("option 'R_Lambda' is required", errmsg(nnft.brg.erg_rescale, { m = 1, R = 5 }))
    assert.matches("d must be an integer", errmsg(nnft.brg.mass_shift, { R = 1, N = 1, d = 1.5 }))
    -- not representable as an integer: a clear error, not "arithmetic on a nil value"
    for _, d in ipairs{ 1e300, math.huge, 0 / 0, "3" } do
      assert.matches("d must be an integer between 1 and 64",
        errmsg(nnft.brg.fisher_of_momentum, 1, { R = 1, m = 1, N = 10, d = d }))
    end
  end)
end)

describe("nnft.brg.flow", function()
  local rng = nnft.rng(4)
  local Xtr, Xte, Xf = rng:stream(1):normal(30, 2), rng:stream(2):normal(20, 2), rng:stream(3):normal(12, 2)
  local function target(X)
    return nnft.mat.fromfunction(X:rows(), 1, function(i) return math.sin(X:get(i, 1)) + 0.5 * X:get(i, 2) end)
  end
  local ytr, yte = target(Xtr), target(Xte)
  local Xp = Xte:block(1, 1, 3, 2)
  local arch = nnft.mlp{ d_in = 2, width = 24, depth = 1, act = "tanh", bias = false, frozen = { 1 } }
  local nets = arch:init_many{ count = 4, seed = 9 }
  local _, hists = nnft.train_ensemble(nets, { X = Xtr, y = ytr, optimizer = "sgd", lr = 1e-2, epochs = 3,
                                               order = "fixed", seed = 1, threads = 1 })
  local F = { X = Xf, form = "diag" }

  it("Λ = 0 reproduces the un-coarse-grained MSE; zero above every eigenvalue", function()
    local res = nnft.brg.flow(nets, { 0, 1e-3, 1e12 }, F, { X_test = Xte, y_test = yte, X_probe = Xp,
      basis = "diag", action = "zero", histories = hists })
    assert.are.equal(4, #res.members)
    assert.are.equal(0, res.dropped)
    local s = 0
    for k, i in ipairs(res.members) do
      local m = nets[i]:loss(Xte, yte)
      assert.are.equal(m, res[1].mse_members[k])
      assert.are.equal(m, res.pre_mse[k])
      s = s + m
      assert.is_true(res[1].outputs:row(k):maxabsdiff(nets[i]:forward(Xp):t()) == 0)
    end
    near(res[1].mse, s / 4, 1e-15 * s, "Λ = 0 mean MSE")
    assert.are.equal(0, res[1].sloppy)
    assert.are.equal(24, res[3].sloppy)
    assert.are.equal(0, res[3].outputs:abs():max())
    assert.are.equal(0, res[3].G2:abs():max())
    near(res[3].mse, yte:square():mean(), 1e-14, "MSE of the zero function")
    -- G2 = mean over members of f(x_a) f(x_b); the Gaussian fit
    local O = res[2].outputs
    for a = 1, 3 do
      local mu, m2 = 0, 0
      for k = 1, 4 do mu = mu + O:get(k, a) / 4 end
      for k = 1, 4 do m2 = m2 + (O:get(k, a) - mu) ^ 2 / 3 end
      near(res[2].mean[a], mu, 1e-14, "Gaussian-fit mean")
      near(res[2].sd[a], math.sqrt(m2), 1e-12, "Gaussian-fit sd")
      for b = 1, 3 do
        local g = 0
        for k = 1, 4 do g = g + O:get(k, a) * O:get(k, b) end
        near(res[2].G2:get(a, b), g / 4, 1e-14, "G2")
      end
    end
  end)

  it("a list of Fishers, dropping by mse_max, resample is reproducible", function()
    local Fs = {}
    for i, net in ipairs(nets) do Fs[i] = nnft.fisher(net, Xf, { form = "diag" }) end
    local o = { X_test = Xte, y_test = yte, basis = "diag", seed = 3 }
    local a = nnft.brg.flow(nets, { 0, 0.01, 0.1 }, Fs, o)
    local b = nnft.brg.flow(nets, { 0, 0.01, 0.1 }, F, o)
    for j = 1, 3 do assert.are.equal(a[j].mse, b[j].mse) end
    local pre = {}
    for i, net in ipairs(nets) do pre[i] = net:loss(Xte, yte) end
    local sorted = { table.unpack(pre) }
    table.sort(sorted)
    o.mse_max = sorted[3]                                 -- keeps the two best
    local c = nnft.brg.flow(nets, { 0, 0.01 }, Fs, o)
    assert.are.equal(2, #c.members)
    assert.are.equal(2, c.dropped)
    for _, i in ipairs(c.members) do assert.is_true(pre[i] < sorted[3]) end
  end)

  it("refuses bad input", function()
    local o = { X_test = Xte, y_test = yte }
    assert.matches("Λ = %-0.5 < 0", errmsg(nnft.brg.flow, nets, { -0.5 }, F, o))
    assert.matches("ascending", errmsg(nnft.brg.flow, nets, { 1, 0.1 }, F, o))
    assert.matches("unknown option 'X_tset'", errmsg(nnft.brg.flow, nets, { 0 }, F, { X_tset = Xte, y_test = yte }))
    assert.matches("option 'y_test' is required", errmsg(nnft.brg.flow, nets, { 0 }, F, { X_test = Xte }))
    assert.matches("unknown Fisher option 'from'", errmsg(nnft.brg.flow, nets, { 0 }, { X = Xf, from = "diag" }, o))
    assert.matches("every member was dropped", errmsg(nnft.brg.flow, nets, { 0 }, F,
      { X_test = Xte, y_test = yte, mse_max = 0 }))
    assert.matches("nets%[2%] is not a Net", errmsg(nnft.brg.flow, { nets[1], 5 }, { 0 }, F, o))
    assert.matches("histories%[1%] must be a training history",
      errmsg(nnft.brg.flow, { nets[1] }, { 0 }, F, { X_test = Xte, y_test = yte, histories = { 5 } }))
    assert.matches("seeds%[1%] must be an integer >= 0",
      errmsg(nnft.brg.flow, { nets[1] }, { 0 }, F, { X_test = Xte, y_test = yte, seeds = { "a" } }))
    -- seed·100003 + i must stay a valid seed: refused up front, not by nnft.shell mid-flow
    local smax = (math.maxinteger - 4) // 100003
    assert.matches("seed must be an integer between 0 and " .. smax,
      errmsg(nnft.brg.flow, nets, { 0 }, F, { X_test = Xte, y_test = yte, seed = smax + 1 }))
    assert.matches("seed must be an integer between 0", errmsg(nnft.brg.flow, nets, { 0 }, F,
      { X_test = Xte, y_test = yte, seed = -1 }))
    assert.is_table(nnft.brg.flow(nets, { 0 }, F, { X_test = Xte, y_test = yte, seed = smax }))
  end)
end)
