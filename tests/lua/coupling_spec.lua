-- nnft.coupling through Lua (physics.md §4): vertex integrals against the Gauss-net closed form
-- and the ReLU polynomial in Λ, coupling extraction on synthetic ΔG4 (both conventions), the
-- coupling measured on a small fixed-seed ensemble against the exact finite-N prediction
-- (nnft.finite.g4c divided by the vertex integral) within error bars, the non-local fit, the
-- six-point prediction, the flow's Λ^{-(d+4)} slope, the LPA functions and every refusal.
local nnft = require "nnft"
local C = nnft.coupling

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

local X = nnft.mat{{0.5}, {1.0}, {1.5}}
local relu = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = "relu", sigma_b = 0 }
local HMS = { 7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3, 2e3, 5e3, 7e3, 1e4, 2e4, 4e4,
              6e4, 8e4, 1e5 }

describe("nnft.coupling.vertex", function()
  it("is the ReLU polynomial (1/2)^4 x1 x2 x3 x4 Λ^5/5 at d = 1 (σ_W = 1, no bias)", function()
    local I4, err, tuples = C.vertex(relu, X, nil, HMS)
    assert.are.equal(15, I4:rows())
    assert.are.equal(21, I4:cols())
    assert.are.equal(4, tuples:cols())
    for t = 1, 15 do
      local p = 1
      for j = 1, 4 do p = p * X:get(tuples:get(t, j), 1) end
      for c = 1, 21 do
        local want = p / 16 * HMS[c]^5 / 5
        near(I4:get(t, c), want, 1e-12 * want, "I4")
        assert(err:get(t, c) <= 1e-8 * want)
      end
    end
  end)

  it("is the Gauss-net closed form on the whole space (Λ = math.huge), d = 2", function()
    local g = nnft.mlp{ d_in = 2, width = 5, depth = 1, act = "gauss-net", sigma_w = 1.2,
                        sigma_b = 0.5 }
    local Y = nnft.mat{{0.1, 0.2}, {-0.3, 0.4}, {0.5, -0.1}}
    local I4 = C.vertex(g, Y, nil, math.huge)
    local Ic = C.vertex_closed(g, Y)
    for t = 1, I4:rows() do near(I4:get(t, 1), Ic:get(t, 1), 1e-8 * Ic:get(t, 1), "I4") end
    -- explicit tuples (1-based) select rows
    local I1 = C.vertex(g, Y, {{1, 2, 3, 3}}, math.huge)
    local _, _, tup = C.vertex(g, Y, nil, 1.0)
    near(I1:get(1, 1), Ic:get(9, 1), 1e-8 * Ic:get(9, 1), "I4(1,2,3,3)")
    assert.are.same({1, 2, 3, 3}, tup:row(9):totable(true))
  end)

  it("refuses bad cutoffs, tuples and architectures with clear messages", function()
    raises("must be > 0", C.vertex, relu, X, nil, 0)
    raises("must be > 0", C.vertex, relu, X, nil, {-1, 2})
    raises("strictly increasing", C.vertex, relu, X, nil, {5, 3})
    raises("diverges", C.vertex, relu, X, nil, math.huge)
    raises("4 columns", C.vertex, relu, X, {{1, 2, 3}}, 1)
    raises("1-based rows of X", C.vertex, relu, X, {{1, 2, 3, 4}}, 1)
    raises("unknown option", C.vertex, relu, X, nil, 1, { epsrl = 1e-3 })
    raises("d_in = 1", C.vertex, relu, nnft.mat{{1, 2}}, nil, 1)
    local deep = nnft.mlp{ d_in = 1, width = 3, depth = 2, act = "relu" }
    raises("one hidden layer", C.vertex, deep, X, nil, 1)
    local th = nnft.mlp{ d_in = 1, width = 3, depth = 1, act = "tanh" }
    raises("relu, erf, exp and gauss-net", C.vertex, th, X, nil, 1)
  end)
end)

describe("nnft.coupling.lambda", function()
  it("returns the λ a synthetic ΔG4 = -24 λ I4 was built from, and u4 = 24 λ", function()
    local I4 = C.vertex(relu, X, nil, {10, 100})
    local lam0 = 0.037
    local dG4 = nnft.mat.zeros(15, 1)
    for t = 1, 15 do dG4:set(t, 1, -24 * lam0 * I4:get(t, 2)) end
    local lam, lerr = C.lambda(dG4, nnft.mat.full(15, 1, 1e-3), I4:col(2))
    local u4 = C.lambda(dG4, nil, I4:col(2), { convention = "els" })
    for t = 1, 15 do
      near(lam:get(t, 1), lam0, 1e-15, "lambda")
      near(u4:get(t, 1), 24 * lam0, 1e-14, "u4")
      near(lerr:get(t, 1), 1e-3 / (24 * I4:get(t, 2)), 1e-18, "error")
    end
    local loc = C.locality(lam, lerr)
    near(loc.rel_spread, 0, 1e-12, "spread")
    near(loc.wmean, lam0, 1e-15, "wmean")
    raises("unknown option", C.lambda, dG4, nil, I4:col(2), { conv = "els" })
    raises("convention", C.lambda, dG4, nil, I4:col(2), { convention = "abc" })
  end)

  it("refuses a zero vertex integral (ReLU, d = 1, inputs of both signs)", function()
    local Xm = nnft.mat{{-0.5}, {1.0}}
    local I4 = C.vertex(relu, Xm, nil, 10)
    raises("is zero", C.lambda, nnft.mat.ones(I4:rows(), 1), nil, I4)
  end)

  it("agrees with the exact finite-N coupling on a measured ensemble within error bars", function()
    -- ReLU-net N = 3, σ_b = 0, three positive inputs: ΔG4 = G4 - Wick(K) measured on E = 2e5
    -- networks (20 bags) against the exact G4_c of nnft.finite, both divided by -24 I4(Λ).
    local ens = relu:sample(200000, { seed = 7 })
    local G4 = ens:npoint(X, 4, { bags = 20 })
    local W = nnft.corr.wick(C.kernel(relu, X), 4)
    local _, g4c = nnft.finite.g4c(relu, X)
    local I4 = C.vertex(relu, X, nil, 10)
    local lam, lerr = C.lambda(G4.values - W.values, G4.errors, I4)
    local lex = C.lambda(g4c, nil, I4)
    local resolved = 0
    for t = 1, 15 do
      local d = math.abs(lam:get(t, 1) - lex:get(t, 1))
      assert(d <= 5 * lerr:get(t, 1), ("tuple %d: %g vs exact %g (err %g)"):format(
        t, lam:get(t, 1), lex:get(t, 1), lerr:get(t, 1)))
      if math.abs(lex:get(t, 1)) > 10 * lerr:get(t, 1) then resolved = resolved + 1 end
    end
    assert(resolved == 15, "the coupling is resolved (|λ| > 10 σ) on every tuple")
  end)
end)

describe("nnft.coupling.flow and six_point", function()
  it("gives the slope -(d+4) = -5 for ReLU at d = 1 and β = -5 λ", function()
    local I4 = C.vertex(relu, X, nil, HMS)
    local dG4 = nnft.mat.full(15, 1, 1e-3)
    local lam = C.lambda(dG4, nil, I4)
    local f = C.flow(HMS, I4, lam)
    near(f.slope, -5, 1e-9, "slope")
    near(f.r2, 1, 1e-12, "R2")
    for c = 1, 21 do near(f.beta:get(3, c), -5 * lam:get(3, c), 1e-8 * math.abs(lam:get(3, c)), "beta") end
    local fit = C.loglog(HMS, f.mean)
    near(fit.slope, -5, 1e-9, "loglog")
  end)

  it("predicts ΔG6 = -24 λ Σ_15 I4 K", function()
    local I4 = C.vertex(relu, X, nil, 10)
    local K = C.kernel(relu, X)
    local dG6 = C.six_point(0.01, I4, K)
    assert.are.equal(28, dG6:rows())
    -- (1,1,1,1,1,1): 15 I4(1111) K(1,1)
    near(dG6:get(1, 1), -24 * 0.01 * 15 * I4:get(1, 1) * K:get(1, 1), 1e-12, "dG6[1]")
    -- every 6-tuple against the 15 splits (ab|cdef) written out: tuple 1 alone has all splits
    -- equal and would not catch a wrong pairing or a wrong 4-tuple rank
    local _, _, t4 = C.vertex(relu, X, nil, 10)
    local rank4 = {}
    for r = 1, t4:rows() do rank4[table.concat(t4:row(r):totable(true), ",")] = r end
    local t6 = nnft.corr.tuples(3, 6)
    assert.are.equal(28, t6:rows())
    for r = 1, 28 do
      local x = t6:row(r):totable(true)
      local want = 0
      for e = 1, 6 do
        for f = e + 1, 6 do
          local rest = {}
          for i = 1, 6 do if i ~= e and i ~= f then rest[#rest + 1] = x[i] end end
          table.sort(rest)
          want = want + I4:get(rank4[table.concat(rest, ",")], 1) * K:get(x[e], x[f])
        end
      end
      want = -24 * 0.01 * want
      near(dG6:get(r, 1), want, 1e-13 * math.abs(want), "dG6[" .. r .. "]")
    end
    local G6 = nnft.mat.full(28, 1, 2.0)
    local _, r1, r2 = C.six_point(0.01, I4, K, { G6 = G6, G6_GP = nnft.mat.ones(28, 1) })
    near(r1:get(1, 1), 0.5, 1e-15, "ratio")
    near(r2:get(1, 1), (1 + dG6:get(1, 1)) / 2, 1e-15, "corrected ratio")
    raises("I4all", C.six_point, 0.01, I4:block(1, 1, 3, 1), K)
  end)

  it("fits ΔG4 = l0 T0 + l2 T2 + l_NL T_NL by least squares", function()
    local g = nnft.mlp{ d_in = 1, width = 5, depth = 1, act = "gauss-net", sigma_w = 1.1 }
    local Y = nnft.mat{{-0.4}, {0.1}, {0.3}, {0.9}}
    local T0, T2, TN = C.basis(g, Y, nil, math.huge)
    local n = T0:rows()
    local dG4 = nnft.mat.zeros(n, 1)
    for t = 1, n do
      dG4:set(t, 1, -0.2 * T0:get(t, 1) + 0.05 * T2:get(t, 1) + 0.01 * TN:get(t, 1))
    end
    local r = C.fit_nonlocal(dG4, nil, T0, T2, TN)
    near(r.l0, -0.2, 1e-8, "l0")
    near(r.l2, 0.05, 1e-8, "l2")
    near(r.l_nl, 0.01, 1e-8, "l_nl")
    local r1 = C.fit_nonlocal(dG4, nil, T0, nil, nil, { terms = 1 })
    assert(r1.l2 == nil and r1.lambda == -r1.l0)
    raises("terms", C.fit_nonlocal, dG4, nil, T0, T2, TN, { terms = 4 })
  end)
end)

describe("nnft.coupling.lpa", function()
  it("has the Gaussian exponents -2, d-4, 2d-6 and a fixed point where β = 0", function()
    local re = C.lpa.exponents({0, 0, 0}, 3)
    near(re[1], -2, 1e-14) near(re[2], -1, 1e-14) near(re[3], 0, 1e-14)
    local u = C.lpa.fixed_point({-0.15, 12, 500}, 3)
    local b = C.lpa.beta(u, 3)
    for i = 1, 3 do near(b[i], 0, 1e-9, "beta") end
    near(C.lpa.vd(3), 1 / (6 * math.pi^2), 1e-17)
    raises("did not converge", C.lpa.fixed_point, {-1.5, 1, 1}, 3)
  end)

  it("integrates ū2 ∝ k^-2 when ū4 = ū6 = 0, and the passive protocol starts at σ_W0", function()
    local k, U = C.lpa.integrate{ d = 2, u0 = {0.5, 0, 0}, k0 = 0.1, k1 = 10, n = 5,
                                  epsabs = 1e-16 }
    for i = 1, 5 do
      local want = 0.5 * (0.1 / k:get(i, 1))^2
      near(U:get(i, 1), want, 1e-7 * want, "u2")
    end
    local p = C.passive{ d = 1, sigma0 = 2, u4 = 0.3, n = 10 }
    near(p.sigma_w:get(1, 1), 2, 1e-15)
    assert.are.equal(10, p.k:rows())
    raises("u0=", C.lpa.integrate, { d = 2, k0 = 1, k1 = 2 })
    raises("unknown option", C.lpa.integrate, { d = 2, u0 = {0, 0, 0}, k0 = 1, k1 = 2, kk = 1 })
    raises("sigma0=", C.passive, { d = 1, u4 = 1 })
  end)

  it("names the last k reached when the flow hits the pole (no rows are returned)", function()
    -- ū2 = -0.2, ū4 = 2 flowing into the IR reaches ū2 = -1 between the 3rd and 4th grid points
    local opts = { d = 3, u0 = {-0.2, 2, 0}, k0 = 1, k1 = 1e-2, n = 11 }
    local ok, msg = pcall(C.lpa.integrate, opts)
    assert.is_false(ok)
    local kl, i = tostring(msg):match("stopped after k = (%S+) %(grid point (%d+) of 11%)")
    assert.is_truthy(kl, tostring(msg))
    assert.is_nil(tostring(msg):find("rows reached are valid", 1, true))
    i = tonumber(i)
    assert(i >= 2 and i < 11, msg)
    -- the flow up to the reported point succeeds, one grid point further does not
    local grid = {}
    for j = 1, 11 do grid[j] = 1e-2 ^ ((j - 1) / 10) end
    near(tonumber(kl), grid[i], 1e-5 * grid[i]) -- %g prints 6 digits
    local head = {}
    for j = 1, i do head[j] = grid[j] end
    local k, U = C.lpa.integrate{ d = 3, u0 = {-0.2, 2, 0}, k = head }
    assert.are.equal(i, U:rows())
    head[i + 1] = grid[i + 1]
    raises("grid point " .. i .. " of " .. (i + 1), C.lpa.integrate,
           { d = 3, u0 = {-0.2, 2, 0}, k = head })
  end)
end)
