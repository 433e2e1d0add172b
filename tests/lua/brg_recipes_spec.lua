-- The BRG recipes of examples/brg/ (docs/brg.md) run end to end with tiny arguments through the
-- interpreter named by NNFT_BIN (pending when it is unset), each into a temporary directory: the
-- outputs exist, and a key number in each CSV is checked against an independent computation or an
-- exact property:
--   bayes_nn_ft     the Λ = 0 MSE equals the trained ensemble's test MSE recomputed here (strict
--                   rule: Λ = 0 changes nothing); sloppy counts non-decreasing along the cumulative
--                   schedule; resampling at Λ = 1e5 raises the MSE;
--   cosnet_erg      the readout-Fisher diagonal follows λ(b) = vol(B_R)/(N σ² 2π (b² + m²));
--   infinite_width  kept-mode counts non-increasing in Λ, every mode kept at Λ = 0 and none above
--                   λ_1 (where μ_Λ = 0 and the MSE is the mean of y² = 1 for ±1 targets); the
--                   Λ = 0 MSE equals the GP posterior mean's; (T/σ_ε²) κ_n in spectrum.csv; the
--                   closed-form readout put into the finite net reproduces μ_0.
local nnft = require "nnft"
local U = require "spec_util"

local function near(x, want, tol, what)
  assert(math.abs(x - want) <= tol,
    ("%s = %.15g, expected %.15g within %.3g"):format(what or "value", x, want, tol))
end

describe("the BRG recipes", function()
  local bin = os.getenv("NNFT_BIN")
  -- run a recipe with the shell words argstr into a fresh out= directory; returns stdout, out dir
  local function run(recipe, argstr, top)
    local out = top .. "/o"
    local r = U.run(bin, U.q("examples/brg/" .. recipe .. ".lua") .. " " .. argstr .. " out=" .. U.q(out))
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.is_truthy(U.slurp(out .. "/manifest.json"), "manifest.json missing")
    return r.out, out
  end

  it("bayes_nn_ft: Λ = 0 is the trained ensemble, the schedule is cumulative", function()
    if not bin then pending("NNFT_BIN is not set") return end
    local top = U.tmpdir()
    local members, epochs, width, seed = 3, 5, 200, 2
    local out, dir = run("bayes_nn_ft", ("members=%d epochs=%d width=%d seed=%d threads=1 plot=false")
                                          :format(members, epochs, width, seed), top)
    assert.matches("mean test MSE", out, 1, true)
    local csv = nnft.io.read_csv(dir .. "/mse.csv")
    assert.is_truthy(U.slurp(dir .. "/outputs.csv"))
    U.rmdir(top)
    assert.are.equal(26, #csv.lambda)
    assert.are.equal(0, csv.lambda[1])
    -- the trained ensemble, recomputed here exactly as the recipe builds it
    local rng = nnft.rng(seed)
    local function inputs(stream, n) return rng:stream(stream):normal(n, 2, { mean = 1 }) end
    local function target(X)
      return nnft.mat.fromfunction(X:rows(), 1, function(i)
        local x0, x1 = X:get(i, 1), X:get(i, 2)
        return (1 - x0) ^ 2 - 0.5 * (x1 - x0 * x0)
      end)
    end
    local Xtr, Xte = inputs(1, 200), inputs(2, 200)
    local ytr, yte = target(Xtr), target(Xte)
    local arch = nnft.mlp{ d_in = 2, width = { 10, 10, width }, act = { "linear", "relu", "relu" },
                           bias = false, sigma_w = { math.sqrt(2), math.sqrt(10), math.sqrt(10), math.sqrt(width) },
                           frozen = { 1, 2, 3 } }
    local nets = arch:init_many{ count = members, seed = seed }
    local _, hists = nnft.train_ensemble(nets, { X = Xtr, y = ytr, optimizer = "sgd", lr = 1e-6,
                                                 epochs = epochs, order = "fixed", seed = seed, threads = 1 })
    local s, k = 0, 0
    for i, net in ipairs(nets) do
      local m = net:loss(Xte, yte)
      if not (hists[i].diverged or m ~= m or m >= 1e3) then s, k = s + m, k + 1 end
    end
    assert.is_true(k > 0)
    near(csv.mse[1], s / k, 1e-12 * s / k, "Λ = 0 MSE vs the trained ensemble")
    assert.are.equal(0, csv.sloppy[1])
    for j = 2, #csv.sloppy do
      assert.is_true(csv.sloppy[j] >= csv.sloppy[j - 1], "sloppy counts must not decrease")
      assert.is_true(csv.sloppy[j] <= width)
    end
    assert.is_true(csv.mse[#csv.mse] > csv.mse[1])
  end)

  it("cosnet_erg: the readout Fisher follows λ(b)", function()
    if not bin then pending("NNFT_BIN is not set") return end
    local top = U.tmpdir()
    local out, dir = run("cosnet_erg", "width=40 members=40 plot=false", top)
    local csv = nnft.io.read_csv(dir .. "/fisher.csv")
    assert.is_truthy(U.slurp(dir .. "/g2.csv"))
    U.rmdir(top)
    assert.matches("(2) information shell", out, 1, true)
    assert.are.equal(40, #csv.b)
    local rel = {}
    for i = 1, #csv.b do
      assert.is_true(csv.lambda_b[i] > 0 and csv.lambda_diag[i] > 0)
      rel[i] = math.abs(csv.lambda_diag[i] / csv.lambda_b[i] - 1)
    end
    table.sort(rel)
    assert.is_true(rel[(#rel + 1) // 2] < 0.05, "median relative error " .. rel[(#rel + 1) // 2])
  end)

  it("infinite_width: kept modes, the Λ = 0 GP mean, the Fisher spectrum", function()
    if not bin then pending("NNFT_BIN is not set") return end
    local top = U.tmpdir()
    local n, T, sig = 60, 60, 0.1
    local out, dir = run("infinite_width", ("n=%d n_test=40 width=300 depth=2 sigma_eps=%g plot=false")
                                             :format(n, sig), top)
    local csv = nnft.io.read_csv(dir .. "/brg.csv")
    local sp = nnft.io.read_csv(dir .. "/spectrum.csv")
    U.rmdir(top)
    local last = #csv.lambda
    assert.are.equal(0, csv.lambda[1])
    assert.are.equal(n, csv.kept[1])
    assert.are.equal(0, csv.kept[last])
    near(csv.mse[last], 1, 1e-15, "MSE with no mode kept (targets ±1)")
    for j = 2, last do
      assert.is_true(csv.lambda[j] > csv.lambda[j - 1])
      assert.is_true(csv.kept[j] <= csv.kept[j - 1], "kept modes must not increase with Λ")
      assert.is_true(csv.kept_fin[j] <= csv.kept_fin[j - 1])
      assert.is_true(csv.var_drop[j] <= csv.var_reset[j] + 1e-15)
    end
    assert.is_true(csv.mse[1] < 0.5 * csv.mse[last])
    local a, b = out:match("Λ = 0 test MSE ([%d.e+-]+) = GP posterior mean %(nnft.gp.fit%) ([%d.e+-]+)")
    assert.is_truthy(a, out)
    near(tonumber(a), tonumber(b), 1e-6, "Λ = 0 MSE vs nnft.gp.fit")
    near(csv.mse[1], tonumber(b), 1e-6, "brg.csv Λ = 0 MSE vs nnft.gp.fit")
    local chk = out:match("reproduces μ_0 %(class 0%) to ([%d.e+-]+)")
    assert.is_true(tonumber(chk) < 1e-8, out)
    assert.are.equal(n, #sp.mode)
    for k = 1, n do
      near(sp.fisher_inf[k], T * sp.kappa[k] / sig ^ 2, 1e-12 * math.abs(sp.fisher_inf[1]), "fisher_inf")
      if k > 1 then assert.is_true(sp.kappa[k] <= sp.kappa[k - 1]) end
    end
    -- the finite net's top Fisher mode within 20% of the kernel's at N = 300
    near(sp.fisher_fin[1] / sp.fisher_inf[1], 1, 0.2, "finite / infinite top Fisher eigenvalue")
  end)
end)
