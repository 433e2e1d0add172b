-- nnft.mlp, nnft.cosnet, Arch and Net through the binding: a hand-computed forward pass,
-- Jacobians and gradients against finite differences (every activation, both
-- parameterisations, frozen layers, Lua activations), standard vs NTK, training (GD to least
-- squares, SGD reproducibility, Adam), cos-net initialisation, and the errors for bad input.
local nnft = require "nnft"
local U = require "spec_util"
local randmat, errmsg = U.randmat, U.errmsg

-- Worst relative error of J and of the MSE gradient against central differences.
local function fd_errors(net, X, y)
  local J, f = net:jacobian(X)
  local g, loss = net:grad(X, y)
  local idx = net:trainable()
  local P_train = idx:rows()
  local theta = net:params()
  local worst_j, worst_g = 0, 0
  for k = 1, P_train do
    local p = idx:get(k, 1)
    local p0 = theta:get(p, 1)
    local h = 1e-5 * math.max(1, math.abs(p0))
    theta:set(p, 1, p0 + h); net:set_params(theta)
    local fp, lp = net:forward(X), net:loss(X, y)
    theta:set(p, 1, p0 - h); net:set_params(theta)
    local fm, lm = net:forward(X), net:loss(X, y)
    theta:set(p, 1, p0); net:set_params(theta)
    for a = 1, X:rows() do
      local fd = (fp:get(a, 1) - fm:get(a, 1)) / (2 * h)
      local jk = J:get(a, k)
      worst_j = math.max(worst_j, math.abs(fd - jk) / (1 + math.abs(jk)))
    end
    local fdl = (lp - lm) / (2 * h)
    worst_g = math.max(worst_g, math.abs(fdl - g:get(k, 1)) / (1 + math.abs(g:get(k, 1))))
  end
  assert.is_true(math.abs(loss - net:loss(X, y)) < 1e-15)
  assert.are.equal(0, f:maxabsdiff(net:forward(X)))
  return worst_j, worst_g
end

describe("nnft.mlp and net:forward", function()
  it("computes a tiny network by hand", function()
    -- 2 -> 2 (relu) -> 1: W1 = [[1, -2], [0.5, 1]], b1 = (0.1, -0.2), W2 = (3, -1), b2 = 0.5
    local arch = nnft.mlp{ d_in = 2, width = 2, act = "relu" }
    local net = arch:init{ seed = 1 }
    assert.are.same({ 9, 9 }, { net:nparams() })
    net:set_params({ 1, 0.5, -2, 1, 0.1, -0.2, 3, -1, 0.5 })
    local f = net:forward(nnft.mat{ { 1, 0.25 }, { -1, 1 } })
    assert.is_true(math.abs(f:get(1, 1) - 1.75) < 1e-14)
    assert.is_true(math.abs(f:get(2, 1) - 0.2) < 1e-14)
    assert.are.same({ 2, 1 }, { f:shape() })
    -- params() returns a copy in the documented layout
    local p = net:params()
    assert.are.equal(-2, p:get(3, 1))
    p:set(3, 1, 100)
    assert.are.equal(-2, net:params():get(3, 1))
  end)

  it("prints and describes the architecture", function()
    local arch = nnft.mlp{ d_in = 1, width = 1000, depth = 1, act = "relu", sigma_w = 1, sigma_b = 0 }
    assert.are.equal(
      "nnft.mlp{d_in=1, width=1000, depth=1, act=relu, sigma_w=1, sigma_b=0, param=standard}",
      tostring(arch))
    local spec = arch:spec()
    assert.are.equal("mlp", spec.kind)
    assert.are.equal(1000, spec.width)
    assert.are.equal("relu", spec.act)
    assert.are.same({}, spec.frozen)
    -- a spec rebuilds the same architecture
    local again = nnft.mlp(spec)
    assert.are.equal(tostring(arch), tostring(again))
    assert.are.equal(0, arch:init{ seed = 3 }:params():maxabsdiff(again:init{ seed = 3 }:params()))
    local deep = nnft.mlp{ d_in = 2, width = { 3, 4 }, act = { "tanh", "erf" }, frozen = { 1 },
                           bias = { true, false, true }, sigma_w = { 1, 2, 3 }, param = "ntk" }
    assert.are.equal("nnft.mlp{d_in=2, width={3, 4}, depth=2, act={tanh, erf}, "
      .. "sigma_w={1, 2, 3}, sigma_b=1, bias={true, false, true}, frozen={1}, param=ntk}",
      tostring(deep))
    assert.are.equal(tostring(deep), tostring(nnft.mlp(deep:spec())))
    assert.are.equal(3 * 2 + 3 + 4 * 3 + 4 + 1, deep:nparams())
    local net = deep:init{ seed = 1 }
    assert.are.same({ 3 * 2 + 3 + 4 * 3 + 4 + 1, 4 * 3 + 4 + 1 }, { net:nparams() })
    assert.is_truthy(tostring(net):find("^nnft.Net%(P=26, trainable=17%) of nnft.mlp{"))
    assert.are.equal(deep, net:arch())
  end)

  it("draws reproducibly from the seed and the stream", function()
    local arch = nnft.mlp{ d_in = 3, width = 5 }
    local a, b = arch:init{ seed = 9 }, arch:init{ seed = 9 }
    assert.are.equal(0, a:params():maxabsdiff(b:params()))
    assert.is_true(a:params():maxabsdiff(arch:init{ seed = 10 }:params()) > 0)
    local s1 = arch:init{ seed = 9, stream = 1 }
    assert.is_true(a:params():maxabsdiff(s1:params()) > 0)
    assert.are.equal(0, s1:params():maxabsdiff(arch:init{ seed = 9, stream = 1 }:params()))
    local c = a:copy()
    c:set_params(c:params() * 2)
    assert.are.equal(0, a:params():maxabsdiff(b:params())) -- a copy is independent
  end)
end)

describe("gradients and Jacobians", function()
  local X = randmat(4, 2, 5)
  local y = randmat(4, 1, 6)
  local acts = { "linear", "relu", "erf", "tanh", "sigmoid", "gelu", "softplus", "sin", "cos", "exp" }

  for _, param in ipairs{ "standard", "ntk" } do
    it("agree with central differences for every activation (" .. param .. ", frozen layers)", function()
      for _, act in ipairs(acts) do
        for _, frozen in ipairs{ {}, { 2 }, { 1, 3 } } do
          local arch = nnft.mlp{ d_in = 2, width = { 3, 4 }, act = act, sigma_w = 0.9,
                                 sigma_b = 0.6, frozen = frozen, param = param }
          local net = arch:init{ seed = 4 }
          local wj, wg = fd_errors(net, X, y)
          assert.is_true(wj < 1e-6, act .. " J " .. wj)
          assert.is_true(wg < 1e-6, act .. " grad " .. wg)
        end
      end
      local gauss = nnft.mlp{ d_in = 2, width = 5, act = "gauss-net", sigma_w = 0.8, param = param }
      local wj, wg = fd_errors(gauss:init{ seed = 1 }, X, y)
      assert.is_true(wj < 1e-6 and wg < 1e-6)
    end)
  end

  it("exclude frozen layers from J", function()
    local arch = nnft.mlp{ d_in = 2, width = { 3, 4 }, frozen = { 1, 2 } }
    local net = arch:init{ seed = 1 }
    local J = net:jacobian(X)
    assert.are.same({ 4, 5 }, { J:shape() })
    assert.are.equal(3 * 2 + 3 + 4 * 3 + 4 + 1, net:trainable():get(1, 1))
    assert.are.equal(5, net:params{ trainable = true }:rows())
  end)

  it("work for a Lua activation, with or without its derivative", function()
    local soft = function(z) return z / (1 + z * z) end
    local dsoft = function(z) return (1 - z * z) / (1 + z * z) ^ 2 end
    local a1 = nnft.mlp{ d_in = 2, width = 3, act = soft, act_deriv = dsoft }
    local wj, wg = fd_errors(a1:init{ seed = 2 }, X, y)
    assert.is_true(wj < 1e-6 and wg < 1e-6)
    local a2 = nnft.mlp{ d_in = 2, width = 3, act = soft }
    wj, wg = fd_errors(a2:init{ seed = 2 }, X, y)
    assert.is_true(wj < 1e-5 and wg < 1e-5)
    -- the same as a built-in activation given as a function
    local lt = nnft.mlp{ d_in = 2, width = 3, act = math.tanh or function(z)
      local e = math.exp(2 * z); return (e - 1) / (e + 1) end }
    local bt = nnft.mlp{ d_in = 2, width = 3, act = "tanh" }
    local d = lt:init{ seed = 5 }:forward(X):maxabsdiff(bt:init{ seed = 5 }:forward(X))
    assert.is_true(d < 1e-14)
    assert.are.equal("function", type(a1:spec().act))
  end)

  it("of cos-nets, plain and generalised", function()
    for _, spec in ipairs{ { d_in = 2, width = 6 }, { d_in = 2, width = 6, radius = 2, mass = 0.5 },
                           { d_in = 2, width = 6, radius = 2, mass = 1, param = "ntk", frozen = { 1 } } } do
      local wj, wg = fd_errors(nnft.cosnet(spec):init{ seed = 3 }, X, y)
      assert.is_true(wj < 1e-6 and wg < 1e-6)
    end
  end)

  it("give the MSE gradient (2/n) Jᵀ (f - y)", function()
    local net = nnft.mlp{ d_in = 2, width = 7, act = "tanh" }:init{ seed = 8 }
    local J, f = net:jacobian(X)
    local g, loss = net:grad(X, y)
    local r = f - y
    assert.is_true((J:t() * r * (2 / 4)):maxabsdiff(g) < 1e-13)
    assert.is_true(math.abs(loss - (r:t() * r):get(1, 1) / 4) < 1e-14)
  end)
end)

describe("parameterisations", function()
  it("standard and NTK agree when the parameters are mapped", function()
    local spec = { d_in = 2, width = { 5, 3 }, act = "erf", sigma_w = { 1.5, 2, 0.5 }, sigma_b = 0.3 }
    local ntk_spec = {}
    for k, v in pairs(spec) do ntk_spec[k] = v end
    ntk_spec.param = "ntk"
    local ntk = nnft.mlp(ntk_spec):init{ seed = 2 }
    local std = nnft.mlp(spec):init{ seed = 1 }
    -- W^l -> σ_w/sqrt(fan_in) W^l, b^l -> σ_b b^l
    local p = ntk:params()
    local scales = {}
    local fans = { { 5, 2, 1.5 }, { 3, 5, 2 }, { 1, 3, 0.5 } }
    local k = 0
    for _, fl in ipairs(fans) do
      local fo, fi, sw = fl[1], fl[2], fl[3]
      for _ = 1, fo * fi do k = k + 1; scales[k] = sw / math.sqrt(fi) end
      for _ = 1, fo do k = k + 1; scales[k] = 0.3 end
    end
    assert.are.equal(k, p:rows())
    std:set_params(nnft.mat.fromfunction(k, 1, function(i) return scales[i] * p:get(i, 1) end))
    local X = randmat(6, 2, 3)
    assert.is_true(ntk:forward(X):maxabsdiff(std:forward(X)) < 1e-13)
  end)
end)

describe("net:train", function()
  it("GD on a linear model converges to the least-squares solution", function()
    -- f = W2 (I x) + b2: a linear model once layer 1 is frozen at the identity
    local arch = nnft.mlp{ d_in = 2, width = 2, act = "linear", frozen = { 1 } }
    local net = arch:init{ seed = 1 }
    local p = net:params()
    for i, v in ipairs{ 1, 0, 0, 1, 0, 0 } do p:set(i, 1, v) end
    net:set_params(p)
    local X = randmat(30, 2, 11)
    local noise = randmat(30, 1, 12, 0.1)
    local y = nnft.mat.fromfunction(30, 1, function(i)
      return 0.7 * X:get(i, 1) - 1.2 * X:get(i, 2) + 0.4 + noise:get(i, 1) end)
    local A = nnft.mat.fromfunction(30, 3, function(i, j) return j < 3 and X:get(i, j) or 1 end)
    local coef = nnft.linalg.lstsq(A, y)
    local _, hist = net:train{ X = X, y = y, optimizer = "gd", lr = 0.4, epochs = 2000, record = 500 }
    local th = net:params()
    assert.is_true(math.abs(th:get(7, 1) - coef:get(1, 1)) < 1e-9)
    assert.is_true(math.abs(th:get(8, 1) - coef:get(2, 1)) < 1e-9)
    assert.is_true(math.abs(th:get(9, 1) - coef:get(3, 1)) < 1e-9)
    assert.are.same({ 0, 500, 1000, 1500, 2000 }, hist.epoch)
    assert.is_true(hist.loss[5] < hist.loss[1])
    assert.is_true(math.abs(hist.loss[5] - net:loss(X, y)) < 1e-15)
    -- the frozen layer did not move
    for i, v in ipairs{ 1, 0, 0, 1, 0, 0 } do assert.are.equal(v, th:get(i, 1)) end
  end)

  it("SGD in fixed or shuffled order is reproducible from the seed", function()
    local arch = nnft.mlp{ d_in = 1, width = 10, act = "tanh" }
    local X = randmat(15, 1, 2, 2)
    local y = X:sin()
    local function run(order, seed)
      local net = arch:init{ seed = 5 }
      local _, h = net:train{ X = X, y = y, optimizer = "sgd", lr = 0.02, epochs = 10,
                              order = order, seed = seed }
      return net:params(), h
    end
    local f1, h1 = run("fixed")
    local f2 = run("fixed")
    local s1, hs1 = run("shuffled", 3)
    local s2, hs2 = run("shuffled", 3)
    local s3 = run("shuffled", 4)
    assert.are.equal(0, f1:maxabsdiff(f2))
    assert.are.equal(0, s1:maxabsdiff(s2))
    assert.are.same(hs1, hs2)
    assert.is_true(s1:maxabsdiff(s3) > 0)
    assert.is_true(s1:maxabsdiff(f1) > 0)
    assert.is_true(h1.loss[#h1.loss] < h1.loss[1])
    assert.are.equal(11, #h1.loss) -- the default records every epoch for short runs
  end)

  it("per-sample SGD steps along ∇(f - y)² in data order", function()
    local arch = nnft.mlp{ d_in = 1, width = 4, act = "sin" }
    local X, y = randmat(3, 1, 1), randmat(3, 1, 2)
    local a, b = arch:init{ seed = 1 }, arch:init{ seed = 1 }
    a:train{ X = X, y = y, lr = 0.1, epochs = 1 } -- sgd, fixed order are the defaults
    for i = 1, 3 do
      local g = b:grad(X:row(i), y:row(i))
      b:set_params(b:params() - g * 0.1)
    end
    assert.is_true(a:params():maxabsdiff(b:params()) < 1e-15)
  end)

  it("Adam decreases the loss", function()
    local net = nnft.mlp{ d_in = 1, width = 16, act = "tanh" }:init{ seed = 2 }
    local X = randmat(20, 1, 3, 2)
    local y = (X * 2):sin()
    local _, h = net:train{ X = X, y = y, optimizer = "adam", lr = 0.01, epochs = 300, record = 100 }
    assert.is_true(h.loss[4] < 0.3 * h.loss[1])
    local _, h2 = net:train{ X = X, y = y, optimizer = "adam", lr = 0.01, epochs = 20, batch = 4,
                             order = "shuffled", seed = 1 }
    assert.is_true(h2.loss[#h2.loss] < h2.loss[1] * 1.5)
  end)

  it("reports divergence and keeps the parameters of the last good epoch", function()
    local net = nnft.mlp{ d_in = 1, width = 3, act = "exp" }:init{ seed = 1 }
    local X, y = randmat(5, 1, 1, 3), randmat(5, 1, 2)
    local msg = errmsg(net.train, net, { X = X, y = y, optimizer = "gd", lr = 1e300, epochs = 3 })
    assert.is_truthy(msg:find("net:train: training diverged in epoch %d"))
    assert.is_truthy(msg:find("lower lr=", 1, true))
    assert.is_true(net:params():isfinite())
  end)
end)

describe("arch:init_many and nnft.train_ensemble", function()
  local arch = nnft.mlp{ d_in = 1, width = 6, act = "tanh" }
  local X = randmat(9, 1, 4, 2)
  local y = X:cos()
  local opts = { X = X, y = y, lr = 0.05, epochs = 6, order = "shuffled", seed = 9, record = 3 }

  it("member i is arch:init{seed=, stream=i} trained with net:train{seed=, stream=i}", function()
    local nets = arch:init_many{ count = 3, seed = 5 }
    assert.are.equal(3, #nets)
    assert.are.equal(0, nets[2]:params():maxabsdiff(arch:init{ seed = 5, stream = 2 }:params()))
    local _, hs = nnft.train_ensemble(nets, opts)
    local ref = arch:init{ seed = 5, stream = 2 }
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.stream = 2
    local _, h = ref:train(o)
    assert.are.equal(0, ref:params():maxabsdiff(nets[2]:params()))
    assert.are.same(h, hs[2])
    assert.are.same({ 0, 3, 6 }, hs[1].epoch)
  end)

  it("gives bit-identical results for any thread count", function()
    local a, b = arch:init_many{ count = 5, seed = 1 }, arch:init_many{ count = 5, seed = 1 }
    local o1, o2 = {}, {}
    for k, v in pairs(opts) do o1[k] = v; o2[k] = v end
    o1.threads, o2.threads = 1, 2
    local _, h1 = nnft.train_ensemble(a, o1)
    local _, h2 = nnft.train_ensemble(b, o2)
    assert.are.same(h1, h2)
    for i = 1, 5 do assert.are.equal(0, a[i]:params():maxabsdiff(b[i]:params())) end
  end)

  it("flags a diverging member and trains the others", function()
    local nets = nnft.mlp{ d_in = 1, width = 3, act = "linear" }:init_many{ count = 3, seed = 2 }
    local p = nets[2]:params()
    p:set(1, 1, 1e200)
    nets[2]:set_params(p)
    local _, hs = nnft.train_ensemble(nets, { X = X, y = y, lr = 1e-3, epochs = 2, optimizer = "gd" })
    assert.is_number(hs[2].diverged)
    assert.is_nil(hs[1].diverged)
    assert.are.equal(#hs[2].loss, hs[2].diverged) -- the records of the completed epochs
    assert.is_true(nets[2]:params():isfinite())
  end)

  it("checks its arguments", function()
    assert.is_truthy(errmsg(nnft.train_ensemble, {}, opts):find("the list of networks is empty", 1, true))
    assert.is_truthy(errmsg(nnft.train_ensemble, { 1 }, opts):find("nets[1] is a number, expected an nnft.Net", 1, true))
    local one = arch:init{ seed = 1 }
    assert.is_truthy(errmsg(nnft.train_ensemble, { one, arch:init{ seed = 2 }, one }, opts):find("nets[3] appears twice in the list (nets[1])", 1, true))
    assert.is_truthy(errmsg(arch.init_many, arch, { seed = 1 }):find("count= is required", 1, true))
    assert.is_truthy(errmsg(arch.init_many, arch, { count = 0, seed = 1 }):find("count must be a positive integer", 1, true))
    local o = { threads = 2, stream = 1 }
    for k, v in pairs(opts) do o[k] = v end
    assert.is_truthy(errmsg(nnft.train_ensemble, arch:init_many{ count = 1, seed = 1 }, o):find("unknown option 'stream'", 1, true))
  end)
end)

describe("nnft.cosnet", function()
  it("draws frequencies inside the ball and phases in [-π, π)", function()
    local arch = nnft.cosnet{ d_in = 2, width = 400, radius = 3, mass = 1, sigma_a = 2 }
    assert.are.equal("nnft.cosnet{d_in=2, width=400, sigma_a=2, radius=3, mass=1, param=standard}",
                     tostring(arch))
    local p = arch:init{ seed = 4 }:params()
    assert.are.equal(400 * 2 + 400 + 400, p:rows())
    local maxr = 0
    for i = 1, 400 do
      local b1, b2 = p:get(i, 1), p:get(400 + i, 1)
      local r = math.sqrt(b1 * b1 + b2 * b2)
      assert.is_true(r <= 3)
      maxr = math.max(maxr, r)
      local c = p:get(800 + i, 1)
      assert.is_true(c >= -math.pi and c < math.pi)
    end
    assert.is_true(maxr > 2.8)
    local spec = arch:spec()
    assert.are.equal("cosnet", spec.kind)
    assert.are.equal(3, spec.radius)
    assert.are.equal(tostring(arch), tostring(nnft.cosnet(spec)))
  end)

  it("computes Σ a_i A(b_i) cos(b_i·x + c_i) with A = C/sqrt(|b|² + m²)", function()
    local d, N, R, m, sa = 1, 50, 2, 0.5, 1.5
    local net = nnft.cosnet{ d_in = d, width = N, radius = R, mass = m, sigma_a = sa }:init{ seed = 1 }
    local p = net:params()
    local C = math.sqrt(2 * (2 * R) / (sa * sa * 2 * math.pi)) -- vol of the 1-ball is 2R
    local x = 0.37
    local s = 0
    for i = 1, N do
      local b, c, a = p:get(i, 1), p:get(N + i, 1), p:get(2 * N + i, 1)
      s = s + a * C / math.sqrt(b * b + m * m) * math.cos(b * x + c)
    end
    assert.is_true(math.abs(net:forward(nnft.mat{ { x } }):get(1, 1) - s) < 1e-12)
  end)
end)

describe("frozen-prefix features", function()
  it("give the same forward pass and loss through the trainable suffix", function()
    local arch = nnft.mlp{ d_in = 2, width = { 8, 12 }, depth = 2, act = "tanh", frozen = { 1 },
                           param = "ntk" }
    local net = arch:init{ seed = 4 }
    local X, y = randmat(9, 2, 3), randmat(9, 1, 4)
    local H = net:features(X)
    assert.are.same({ 9, 8 }, { H:shape() })
    assert.is_true((net:forward(X) - net:forward(H, { features = true })):abs():max() < 1e-13)
    assert.is_true(math.abs(net:loss(X, y) - net:loss(H, y, { features = true })) < 1e-13)
    assert.is_truthy(errmsg(net.loss, net, X, y, { features = true }):find("d_in = 8", 1, true))
    assert.is_truthy(errmsg(net.forward, net, H, { feature = true }):find("unknown option 'feature'", 1, true))
    local free = nnft.cosnet{ d_in = 1, width = 4, radius = 2, mass = 1, frozen = { 1 } }:init{ seed = 1 }
    assert.is_truthy(errmsg(free.features, free, nnft.mat{ { 0.5 } }):find("generalised cos-net", 1, true))
  end)
end)

describe("errors", function()
  it("name unknown activations and list the known ones", function()
    local msg = errmsg(nnft.mlp, { d_in = 1, width = 3, act = "rleu" })
    assert.is_truthy(msg:find("nnft.mlp: unknown activation 'rleu' (known: linear, relu,", 1, true))
    msg = errmsg(nnft.mlp, { d_in = 1, width = { 3, 3 }, act = { "relu", "nope" } })
    assert.is_truthy(msg:find("unknown activation 'nope' in act[2]", 1, true))
    msg = errmsg(nnft.mlp, { d_in = 1, width = 3, act = 3 })
    assert.is_truthy(msg:find("act must be an activation name or a function", 1, true))
  end)

  it("refuse zero or negative sizes and bad depths", function()
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = 0 }):find("width must be a positive integer, got 0", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = -5 }):find("width must be a positive integer, got -5", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = { 3, 0 } }):find("width[2] must be a positive integer, got 0", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 0, width = 3 }):find("d_in must be a positive integer, got 0", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = 3, depth = 0 }):find("depth must be a positive integer, got 0", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { width = 3 }):find("d_in= is required", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = 2.5 }):find("width must be a positive integer, got 2.5", 1, true))
    assert.is_truthy(errmsg(nnft.cosnet, { d_in = 1, width = 0 }):find("nnft.cosnet: width must be a positive integer", 1, true))
  end)

  it("refuse bad per-layer values", function()
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = 3, sigma_w = -1 }):find("sigma_w must be >= 0, got -1", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = 3, sigma_b = { 1, 2, 3 } }):find("sigma_b has 3 entries, expected 2", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = 3, frozen = { 3 } }):find("frozen[1] must be a layer index 1 .. 2", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = { 3, 3 }, act = "gauss-net" }):find("gauss-net is defined for the hidden layer of a one-hidden-layer", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = 3, param = "mup" }):find("one of standard, ntk expected", 1, true))
    assert.is_truthy(errmsg(nnft.cosnet, { d_in = 1, width = 3, mass = 1 }):find("mass= needs radius=", 1, true))
    assert.is_truthy(errmsg(nnft.cosnet, { d_in = 200, width = 3, radius = 1e3, mass = 1 })
      :find("amplitude normalisation C^2 = 2 vol(B_R)/(sigma_a^2 (2 pi)^d) = inf is not representable", 1, true))
    assert.is_truthy(errmsg(nnft.cosnet, { d_in = 400, width = 3, radius = 1, mass = 1 })
      :find("= 0.0 is not representable", 1, true))
    assert.is_truthy(errmsg(nnft.cosnet, { d_in = 1, width = 3, radius = -1 }):find("radius must be positive", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = 3, act = { function() end, function() end } }):find("act has 2 entries, expected 1", 1, true))
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = { 2, 2 }, act = { function() end, function() end } }):find("only one Lua activation function", 1, true))
  end)

  it("refuse unknown option keys", function()
    assert.is_truthy(errmsg(nnft.mlp, { d_in = 1, width = 3, sigmaw = 1 }):find("nnft.mlp: unknown option 'sigmaw'", 1, true))
    assert.is_truthy(errmsg(nnft.cosnet, { d_in = 1, width = 3, act = "cos" }):find("nnft.cosnet: unknown option 'act'", 1, true))
    local arch = nnft.mlp{ d_in = 1, width = 3 }
    assert.is_truthy(errmsg(arch.init, arch, { seed = 1, sede = 2 }):find("arch:init: unknown option 'sede'", 1, true))
    assert.is_truthy(errmsg(arch.init, arch, {}):find("arch:init: seed= is required", 1, true))
    local net = arch:init{ seed = 1 }
    local X = nnft.mat{ { 1 }, { 2 } }
    assert.is_truthy(errmsg(net.train, net, { X = X, y = { 1, 2 }, lr = 0.1, epoch = 3 }):find("net:train: unknown option 'epoch'", 1, true))
    assert.is_truthy(errmsg(net.params, net, { trainabel = true }):find("unknown option 'trainabel'", 1, true))
  end)

  it("check X and y", function()
    local net = nnft.mlp{ d_in = 2, width = 3 }:init{ seed = 1 }
    local X = nnft.mat{ { 1, 2 }, { 3, 4 } }
    assert.is_truthy(errmsg(net.forward, net, nnft.mat{ { 1, 2, 3 } }):find("net:forward: X is 1 x 3, but the network takes d_in = 2 columns", 1, true))
    assert.is_truthy(errmsg(net.jacobian, net, nnft.mat{ { 1 } }):find("net:jacobian: X is 1 x 1", 1, true))
    assert.is_truthy(errmsg(net.forward, net, nnft.mat{ { 0 / 0, 1 } }):find("net:forward: X contains NaN or Inf", 1, true))
    assert.is_truthy(errmsg(net.train, net, { X = X, y = { 1, 0 / 0 }, lr = 0.1 }):find("net:train: y contains NaN or Inf", 1, true))
    assert.is_truthy(errmsg(net.train, net, { X = nnft.mat{ { 1, math.huge } }, y = { 1 }, lr = 0.1 }):find("net:train: X contains NaN or Inf", 1, true))
    assert.is_truthy(errmsg(net.grad, net, X, { 1, 2, 3 }):find("net:grad: y is 3 x 1, expected 2 x 1", 1, true))
    assert.is_truthy(errmsg(net.train, net, { X = "X", y = { 1 }, lr = 0.1 }):find("net:train: X must be an nnft.Mat (one point per row) or a table, got string", 1, true))
    assert.is_truthy(errmsg(net.train, net, { X = X, y = { 1, 2 } }):find("net:train: lr= is required", 1, true))
    assert.is_truthy(errmsg(net.train, net, { X = X, y = { 1, 2 }, lr = -1 }):find("lr must be positive and finite, got -1", 1, true))
    assert.is_truthy(errmsg(net.train, net, { X = X, y = { 1, 2 }, lr = 0.1, order = "shuffled" }):find("order='shuffled' needs seed=", 1, true))
    assert.is_truthy(errmsg(net.train, net, { X = X, y = { 1, 2 }, lr = 0.1, optimizer = "gd", batch = 1 }):find("optimizer='gd' is full-batch", 1, true))
    assert.is_truthy(errmsg(net.train, net, { X = X, y = { 1, 2 }, lr = 0.1, optimizer = "lbfgs" }):find("one of gd, sgd, adam expected", 1, true))
    assert.is_truthy(errmsg(net.set_params, net, { 1, 2 }):find("net:set_params: v is 2 x 1, expected a vector of 13 parameters", 1, true))
    assert.is_truthy(errmsg(net.set_params, net, nnft.mat.full(13, 1, 0 / 0)):find("v contains NaN or Inf", 1, true))
  end)

  it("raise what a Lua activation raises, and survive release", function()
    local arch = nnft.mlp{ d_in = 1, width = 3, act = function(z) if z > 100 then error("too big") end return z end }
    local net = arch:init{ seed = 1 }
    assert.is_truthy(errmsg(net.forward, net, nnft.mat{ { 1e6 } }):find("net:forward: activation function failed: .*too big"))
    assert.are.same({ 1, 1 }, { net:forward(nnft.mat{ { 0.5 } }):shape() }) -- usable afterwards
    local bad = nnft.mlp{ d_in = 1, width = 3, act = function() return "x" end }:init{ seed = 1 }
    assert.is_truthy(errmsg(bad.forward, bad, nnft.mat{ { 1 } }):find("returned a string, expected a number", 1, true))
    net:release()
    assert.is_truthy(errmsg(net.forward, net, nnft.mat{ { 1 } }):find("released", 1, true))
    assert.are.equal("nnft.Net (released)", tostring(net))
    net:release() -- idempotent
  end)
end)
