-- nnft.fisher, Fisher methods, nnft.fisher.kl/distance/gp and nnft.shell through the binding:
-- forms against the Jacobian of net:jacobian (dense = JᵀJ/(nσ²) + ε, Gram = J Jᵀ, diag), spectra
-- of the forms agree, eigenvectors satisfy I v = λ v, mvp, rank, distance, KL, GP Fisher; shells:
-- stiff part kept, sloppy part resampled/zeroed, counts, cumulative schedules with draws kept,
-- the published BRG network's readout Fisher; and the errors for bad input.
local nnft = require "nnft"
local U = require "spec_util"
local randmat, errmsg = U.randmat, U.errmsg

local function small_net(seed, opts)
  opts = opts or {}
  local arch = nnft.mlp{ d_in = 3, width = { 5, 4 }, act = { "tanh", "relu" },
                         sigma_w = 1.3, sigma_b = 0.6, frozen = opts.frozen, param = opts.param }
  return arch:init{ seed = seed }
end

describe("nnft.fisher", function()
  local X = randmat(7, 3, 3)

  it("forms agree with the Jacobian (dense, Gram, diag, block), both parameterisations", function()
    for _, param in ipairs{ "standard", "ntk" } do
      local net = small_net(5, { param = param, frozen = { 2 } })
      local J = net:jacobian(X)
      local n, P = J:rows(), J:cols()
      local sigma, eps = 0.7, 0.01
      local I = J:ata() * (1 / (n * sigma * sigma)) + nnft.mat.eye(P) * eps
      local Fd = nnft.fisher(net, X, { sigma = sigma, damping = eps, form = "dense" })
      assert.is_true(Fd:matrix():allclose(I, 1e-12, 1e-14))
      local Fg = nnft.fisher(net, X, { sigma = sigma, damping = eps })
      assert.is_true(Fg:gram():allclose(J:aat(), 1e-12, 1e-14))
      local Fdiag = nnft.fisher(net, X, { sigma = sigma, damping = eps, form = "diag" })
      for i = 1, P do
        assert.is_true(math.abs(Fdiag:diag():get(i, 1) - I:get(i, i)) <= 1e-12 * (1 + I:get(i, i)))
      end
      -- non-zero spectra: Gram = dense
      local r = Fg:rank()
      assert.are.equal(math.min(n, P), r)
      assert.are.equal(r, Fd:rank())
      local lg, Vg = Fg:eigen()
      local ld = Fd:eigen{ count = r, vectors = false }
      assert.are.equal(r, lg:rows())
      assert.is_true(lg:allclose(ld, 1e-10, 1e-12))
      -- vectors mapped back from the Gram form: I v = λ v, orthonormal
      for k = 1, r do
        local v = Vg:col(k)
        local Iv = Fd:mvp(v)
        assert.is_true(Iv:allclose(v * lg:get(k, 1), 1e-9, 1e-9 * lg:get(1, 1)))
      end
      assert.is_true(Vg:ata():allclose(nnft.mat.eye(r), 1e-9, 1e-9))
      -- mvp: Gram = dense; distance = ½ vᵀ I v
      local v = randmat(P, 1, 9)
      assert.is_true(Fg:mvp(v):allclose(I * v, 1e-11, 1e-12))
      local d = nnft.fisher.distance(Fg, v)
      local ref = 0.5 * (v:t() * (I * v)):get(1, 1)
      assert.is_true(math.abs(d - ref) <= 1e-11 * math.abs(ref))
      -- block form: eigenpairs of the block-diagonal metric
      local Fb = nnft.fisher(net, X, { sigma = sigma, damping = eps, form = "block" })
      local lb, Vb = Fb:eigen{ count = 3 }
      for k = 1, 3 do
        assert.is_true(Fb:mvp(Vb:col(k)):allclose(Vb:col(k) * lb:get(k, 1), 1e-9, 1e-9 * lb:get(1, 1)))
      end
      local info = Fb:info()
      assert.are.equal("block", info.form)
      assert.are.equal(P, info.P)
      assert.are.equal(n, info.n)
    end
  end)

  it("the published BRG readout Fisher is (1/n) Σ_a h_i(x_a)² (diagonal of the readout block)", function()
    local arch = nnft.mlp{ d_in = 2, width = { 10, 10, 50 }, act = { "linear", "relu", "relu" },
                           bias = false, sigma_w = { math.sqrt(2), math.sqrt(10), math.sqrt(10), math.sqrt(50) },
                           frozen = { 1, 2, 3 } }
    local net = arch:init{ seed = 1 }
    local Xf = randmat(10, 2, 4, 2.0)
    local F = nnft.fisher(net, Xf, { form = "diag" })
    local J = net:jacobian(Xf)  -- J_ai = h_i(x_a) for the readout
    local ref = J:square():mean(1):t()
    assert.is_true(F:diag():allclose(ref, 1e-12, 1e-14))
    -- eigen basis of a diagonal metric = the parameter basis; counts of shells
    local cg, info = nnft.shell.coarse_grain(net, F, 1.0, { basis = "diag", seed = 3 })
    local d = F:diag()
    local sloppy = 0
    local p0, p1 = net:params(), cg:params()
    local tidx = net:trainable()
    for i = 1, d:rows() do
      local k = tidx:get(i, 1)
      if d:get(i, 1) < 1.0 then
        sloppy = sloppy + 1
      else
        assert.are.equal(p0:get(k, 1), p1:get(k, 1))
      end
    end
    assert.are.equal(sloppy, info.sloppy)
    -- frozen layers untouched
    for k = 1, p0:rows() - d:rows() do assert.are.equal(p0:get(k, 1), p1:get(k, 1)) end
  end)

  it("KL divergence and the GP Fisher", function()
    local kl = nnft.fisher.kl({ 0.3, -1.0 }, nnft.mat{ { 2, 0 }, { 0, 0.5 } },
                              { 1.1, 0.5 }, nnft.mat{ { 1.5, 0 }, { 0, 3 } })
    local ref = 0
    for _, t in ipairs{ { 2, 1.5, 0.8 }, { 0.5, 3, 1.5 } } do
      ref = ref + 0.5 * (t[1] / t[2] + t[3] ^ 2 / t[2] - 1 + math.log(t[2] / t[1]))
    end
    assert.is_true(math.abs(kl - ref) < 1e-13)
    -- GP on a 1-parameter family C = a K + s I: I_aa = ½ tr((C⁻¹K)²)
    local K = nnft.mat{ { 1, 0.5 }, { 0.5, 1 } }
    local a = 2.0
    local C = K * a + nnft.mat.eye(2) * 0.1
    local I = nnft.fisher.gp(C, { K })
    -- closed form via eigenvalues of K: μ = 1.5, 0.5; C⁻¹K has eigenvalues μ/(aμ + 0.1)
    local r = 0.5 * ((1.5 / (a * 1.5 + 0.1)) ^ 2 + (0.5 / (a * 0.5 + 0.1)) ^ 2)
    assert.is_true(math.abs(I:get(1, 1) - r) < 1e-13)
    assert.matches("not positive definite", errmsg(nnft.fisher.gp, K * -1, { K }))
    assert.matches("dC_list%[1%] is 3 x 3", errmsg(nnft.fisher.gp, C, { nnft.mat.eye(3) }))
    assert.matches("not positive definite",
                   errmsg(nnft.fisher.kl, { 0, 0 }, nnft.mat.eye(2) * -1, { 0, 0 }, nnft.mat.eye(2)))
    assert.matches("shapes do not conform",
                   errmsg(nnft.fisher.kl, { 0, 0, 0 }, nnft.mat.eye(2), { 0, 0 }, nnft.mat.eye(2)))
    -- finite inputs whose difference overflows: not "NaN or Inf in input"
    assert.matches("overflow", errmsg(nnft.fisher.kl, { 1e308 }, { 1 }, { -1e308 }, { 1 }))
  end)

  it("refuses bad input with clear messages", function()
    local net = small_net(2)
    assert.matches("X has 2 columns but the network takes d_in = 3",
                   errmsg(nnft.fisher, net, randmat(4, 2, 1)))
    assert.matches("damping must be >= 0", errmsg(nnft.fisher, net, X, { damping = -1 }))
    assert.matches("sigma .* must be positive", errmsg(nnft.fisher, net, X, { sigma = 0 }))
    assert.matches("unknown option 'sigma_e'", errmsg(nnft.fisher, net, X, { sigma_e = 1 }))
    assert.matches("form", errmsg(nnft.fisher, net, X, { form = "sparse" }))
    assert.matches("max_memory", errmsg(nnft.fisher, net, X, { form = "dense", max_memory = 100 }))
    local frozen = nnft.mlp{ d_in = 3, width = 4, frozen = { 1, 2 } }:init{ seed = 1 }
    assert.matches("no trainable parameters", errmsg(nnft.fisher, frozen, X))
    local Xn = X:copy(); Xn:set(1, 1, 0 / 0)
    assert.matches("NaN", errmsg(nnft.fisher, net, Xn))
    local F = nnft.fisher(net, X)
    assert.matches("only the dense form", errmsg(F.matrix, F))
    assert.matches("count must be in 1 .. 7", errmsg(F.eigen, F, { count = 8 }))
    assert.matches("must have %d+ entries", errmsg(F.mvp, F, { 1, 2 }))
    assert.matches("cutoff .* >= 0", errmsg(nnft.shell.coarse_grain, net, F, -1))
    assert.matches("basis", errmsg(nnft.shell.coarse_grain, net, F, 1, { basis = "fourier" }))
    assert.matches("action", errmsg(nnft.shell.coarse_grain, net, F, 1, { action = "drop" }))
    assert.matches("ascending", errmsg(nnft.shell.schedule, net, F, { 1, 0.5 }))
    assert.matches("form='dense', 'block' or 'diag'",
                   errmsg(nnft.shell.coarse_grain, net, F, 1, { basis = "diag", action = "marginalise" }))
    local other = nnft.mlp{ d_in = 3, width = 2 }:init{ seed = 1 }
    assert.matches("trainable ones", errmsg(nnft.shell.coarse_grain, other, F, 1))
    F:release()
    assert.matches("released", errmsg(F.rank, F))
    assert.matches("released", tostring(F))
  end)
end)

describe("nnft.shell", function()
  local X = randmat(6, 3, 7)

  it("keeps the stiff part, resamples or zeroes the sloppy part (eigenbasis, null space sloppy)", function()
    local net = small_net(3, { frozen = { 1 } })
    local F = nnft.fisher(net, X)
    local lam, V = F:eigen()
    local P = V:rows()
    local cut = (lam:get(2, 1) + lam:get(3, 1)) / 2 -- two stiff directions
    local theta = net:params():copy()
    local tidx = net:trainable()
    local function trainable(n2)
      local p = n2:params()
      return nnft.mat.fromfunction(P, 1, function(i) return p:get(tidx:get(i, 1), 1) end)
    end
    local th = trainable(net)
    for _, action in ipairs{ "resample", "zero", "marginalise" } do
      local cg, info = nnft.shell.coarse_grain(net, F, cut, { action = action, seed = 4, prior_sd = 1 })
      assert.are.equal(P - 2, info.sloppy)
      assert.are.equal(P - lam:rows(), info.null)
      local t2 = trainable(cg)
      if action ~= "marginalise" then
        for k = 1, 2 do -- stiff components exactly kept
          local v = V:col(k)
          assert.is_true(math.abs((v:t() * t2):get(1, 1) - (v:t() * th):get(1, 1)) < 1e-12)
        end
      end
      if action == "zero" then -- P_> θ: only the two stiff directions remain
        local proj = V:block(1, 1, P, 2)
        assert.is_true(t2:allclose(proj * (proj:t() * th), 1e-12, 1e-12))
      end
    end
    -- Λ = 0 (strict) changes nothing
    local same = nnft.shell.coarse_grain(net, F, 0, { seed = 1 })
    assert.is_true(same:params():allclose(theta, 0, 1e-13))
    -- the seed fixes the draws
    local a1 = nnft.shell.coarse_grain(net, F, cut, { seed = 8 })
    local a2 = nnft.shell.coarse_grain(net, F, cut, { seed = 8 })
    local a3 = nnft.shell.coarse_grain(net, F, cut, { seed = 9 })
    assert.are.equal(0, a1:params():maxabsdiff(a2:params()))
    assert.is_true(a1:params():maxabsdiff(a3:params()) > 0)
  end)

  it("schedules are cumulative: sloppy sets grow and old draws are kept", function()
    local net = small_net(4)
    local F = nnft.fisher(net, X, { form = "diag" })
    local d = F:diag()
    local cuts = { 0, 1e-3, 1e-2, 0.1, 1, 10, 1e3 }
    local nets, counts = nnft.shell.schedule(net, F, cuts, { basis = "diag", seed = 5 })
    assert.are.equal(#cuts, #nets)
    local p0, tidx = net:params(), net:trainable()
    local P = tidx:rows()
    local prev
    for j, c in ipairs(cuts) do
      local expect = 0
      for i = 1, P do if d:get(i, 1) < c then expect = expect + 1 end end
      assert.are.equal(expect, counts[j])
      local p = nets[j]:params()
      if prev then
        assert.is_true(counts[j] >= counts[j - 1])
        for i = 1, P do
          local k = tidx:get(i, 1)
          if prev:get(k, 1) ~= p0:get(k, 1) then assert.are.equal(prev:get(k, 1), p:get(k, 1)) end
        end
      end
      prev = p
      -- each member equals a single coarse-graining with the same seed
      local one = nnft.shell.coarse_grain(net, F, c, { basis = "diag", seed = 5 })
      assert.are.equal(0, one:params():maxabsdiff(p))
    end
    assert.are.equal(P, counts[#cuts])
  end)
end)
