-- nnft.kernel through Lua: constructors against their formulas, arch:kernel() against the
-- arc-cosine closed form, combinators against elementwise combinations of the parts, children kept
-- alive, diag and the symmetric path, spectra by the three routes, tostring and spec, Lua
-- activations, and every refusal (unknown options, shapes, NaN, memory, non-stationary spectra).
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

local X = nnft.mat{{0.3, -1.0}, {2.0, 0.5}, {-0.7, 0.1}, {1.2, 1.4}}
local Y = nnft.mat{{1.1, 0.4}, {0.0, 0.0}, {-2.0, 3.0}}

local function dist(A, i, B, j)
  local s = 0
  for k = 1, A:cols() do s = s + (A:get(i, k) - B:get(j, k))^2 end
  return math.sqrt(s)
end

local function each(K, f)
  for i = 1, K:rows() do
    for j = 1, K:cols() do f(i, j, K:get(i, j)) end
  end
end

describe("nnft.kernel leaves", function()
  it("rbf is variance exp(-r^2 / (2 l^2))", function()
    local k = nnft.kernel.rbf{ lengthscale = 1.5, variance = 2 }
    each(k:matrix(X, Y), function(i, j, v)
      near(v, 2 * math.exp(-dist(X, i, Y, j)^2 / (2 * 2.25)), 1e-15)
    end)
  end)

  it("matern has the closed forms for nu = 1/2, 3/2, 5/2; 1/2 is exp(-r/l)", function()
    local l, s2 = 0.7, 1.3
    local forms = {
      [0.5] = function(r) return s2 * math.exp(-r / l) end,
      [1.5] = function(r) local a = math.sqrt(3) * r / l return s2 * (1 + a) * math.exp(-a) end,
      [2.5] = function(r)
        local a = math.sqrt(5) * r / l
        return s2 * (1 + a + a * a / 3) * math.exp(-a)
      end,
    }
    for nu, f in pairs(forms) do
      local k = nnft.kernel.matern{ nu = nu, lengthscale = l, variance = s2 }
      each(k:matrix(X, Y), function(i, j, v) near(v, f(dist(X, i, Y, j)), 1e-15) end)
    end
    local e = nnft.kernel.matern{ nu = 0.5, lengthscale = 2 }
    each(e:matrix(X), function(i, j, v) near(v, math.exp(-dist(X, i, X, j) / 2), 1e-15) end)
  end)

  it("poly is variance (x.y/d + offset)^degree", function()
    local k = nnft.kernel.poly{ degree = 3, offset = 0.5, variance = 1.2 }
    each(k:matrix(X, Y), function(i, j, v)
      local xy = X:get(i, 1) * Y:get(j, 1) + X:get(i, 2) * Y:get(j, 2)
      near(v, 1.2 * (xy / 2 + 0.5)^3, 1e-13)
    end)
  end)

  it("freeprop is the cutoff propagator of nnft.freeprop", function()
    local k = nnft.kernel.freeprop{ d = 2, R = 4, m = 0.8 }
    each(k:matrix(X, Y), function(i, j, v)
      near(v, nnft.freeprop(dist(X, i, Y, j), { d = 2, R = 4, m = 0.8 }), 1e-15)
    end)
    assert.are.equal(2, k:dim())
    raises("X has 2 columns but the kernel takes points of dimension 3",
      function() nnft.kernel.freeprop{ d = 3, R = 1, m = 1 }:matrix(X) end)
  end)

  it("arch:kernel() is the arc-cosine NNGP of a ReLU net; :ntk its tangent kernel", function()
    local sw, sb = 1.3, 0.4
    local arch = nnft.mlp{ d_in = 2, width = 7, depth = 1, act = "relu", sigma_w = sw,
                           sigma_b = sb }
    local k = arch:kernel()
    each(k:matrix(X, Y), function(i, j, v)
      local function lin(a, b)
        return sb^2 + sw^2 * (a[1] * b[1] + a[2] * b[2]) / 2
      end
      local x, y = { X:get(i, 1), X:get(i, 2) }, { Y:get(j, 1), Y:get(j, 2) }
      local q1, q2, c = lin(x, x), lin(y, y), lin(x, y)
      local th = math.atan(math.sqrt(math.max(q1 * q2 - c * c, 0)), c)
      local want = sb^2 + sw^2 * math.sqrt(q1 * q2) / (2 * math.pi) *
                   (math.sin(th) + (math.pi - th) * math.cos(th))
      near(v, want, 1e-13 * want)
    end)
    local T = k:ntk(X, Y)
    assert.are.equal(0, T:maxabsdiff(arch:kernel{ ntk = true }:matrix(X, Y)))
    assert.are.equal(0, T:maxabsdiff(arch:ntk_kernel():matrix(X, Y)))
    assert.is_true(T:maxabsdiff(k:matrix(X, Y)) > 0.1)
    raises("only the kernel of an architecture", function() nnft.kernel.rbf():ntk(X) end)
  end)

  it("takes a Lua activation and reports its failure", function()
    local arch = nnft.mlp{ d_in = 2, width = 5, depth = 1, sigma_b = 0.5,
                           act = function(z) return z > 0 and z or 0 end }
    local relu = nnft.mlp{ d_in = 2, width = 5, depth = 1, sigma_b = 0.5, act = "relu" }
    local K = (2 * arch:kernel{ quad_order = 64 }):matrix(X)
    local R = relu:kernel():matrix(X)
    each(K, function(i, j, v) near(v, 2 * R:get(i, j), 2e-2 * R:get(i, j)) end)
    local bad = nnft.mlp{ d_in = 2, width = 5, depth = 1,
                          act = function(z) if z > 1 then error("boom") end return z end }
    raises("activation function failed", function() bad:kernel():matrix(X) end)
  end)

  it("says the kernel overflowed, not that the (finite) input had NaN or Inf", function()
    local big = nnft.mlp{ d_in = 2, width = 5, depth = 3, act = "exp", sigma_w = 1.2, sigma_b = 0.3 }
    local P = nnft.mat{ { 1, 1 }, { 0.5, -1 } }
    raises("kernel produced NaN or Inf (overflow", function() big:kernel():matrix(P) end)
    raises("kernel produced NaN or Inf (overflow", function() big:kernel():diag(P) end)
    raises("kernel produced NaN or Inf (overflow", function() (big:kernel() + nnft.kernel.rbf{}):matrix(P) end)
  end)
end)

describe("Kernel combinators", function()
  local rbf = nnft.kernel.rbf{ lengthscale = 0.8, variance = 1.5 }
  local mat = nnft.kernel.matern{ nu = 1.5, lengthscale = 1.2, variance = 0.7 }
  local poly = nnft.kernel.poly{ degree = 2, offset = 1, variance = 0.3 }
  local A, B, C = rbf:matrix(X, Y), mat:matrix(X, Y), poly:matrix(X, Y)

  it("k1 + k2, k1 * k2, c * k and k * c are elementwise", function()
    local cases = {
      { 0.5 * rbf + mat * poly, function(a, b, c) return 0.5 * a + b * c end },
      { (rbf + mat) * poly, function(a, b, c) return (a + b) * c end },
      { poly * 3 * (rbf * mat + poly), function(a, b, c) return c * 3 * (a * b + c) end },
      { rbf * (mat + rbf * (poly + mat)), function(a, b, c) return a * (b + a * (c + b)) end },
    }
    for n, case in ipairs(cases) do
      local K = case[1]:matrix(X, Y)
      each(K, function(i, j, v)
        local want = case[2](A:get(i, j), B:get(i, j), C:get(i, j))
        near(v, want, 1e-14 * math.max(1, math.abs(want)), ("case %d (%d,%d)"):format(n, i, j))
      end)
    end
  end)

  it("keeps its children alive", function()
    local function make()
      return nnft.kernel.rbf{ lengthscale = 2 } + 2 * nnft.kernel.matern{ nu = 0.5 }
    end
    local k = make()
    collectgarbage()
    collectgarbage()
    each(k:matrix(X), function(i, j, v)
      local r = dist(X, i, X, j)
      near(v, math.exp(-r * r / 8) + 2 * math.exp(-r), 1e-15)
    end)
  end)

  it("symmetric path equals general path; diag equals the diagonal", function()
    local arch = nnft.mlp{ d_in = 2, width = 3, depth = 2, act = "erf" }
    local k = 0.5 * rbf + arch:kernel() * poly
    local P = nnft.mat.fromfunction(150, 2, function(i, j) return math.sin(i * j + i) end)
    local S, G, D = k:matrix(P), k:matrix(P, P), k:diag(P)
    assert.is_true(S:maxabsdiff(G) <= 1e-14 * S:max())
    assert.are.equal(0, S:maxabsdiff(S:t()))
    for i = 1, 150 do near(D:get(i, 1), S:get(i, i), 1e-14 * S:get(i, i)) end
    -- views (a leading dimension larger than the rows) give the same as contiguous copies
    local V, W = P:block(3, 1, 70, 2), P:block(80, 1, 65, 2)
    assert.are.equal(0, k:matrix(V, W):maxabsdiff(k:matrix(V:copy(), W:copy())))
    assert.are.equal(0, k:matrix(V):maxabsdiff(k:matrix(V:copy())))
  end)

  it("refuses numbers added to kernels and mismatched dimensions", function()
    raises("cannot add a number to a kernel", function() return rbf + 1 end)
    raises("cannot add a number to a kernel", function() return 1 + rbf end)
    raises("multiplied by a kernel or a number", function() return rbf * "x" end)
    raises("scale factor must be finite", function() return (0 / 0) * rbf end)
    local a3 = nnft.mlp{ d_in = 3, width = 2, depth = 1 }
    raises("different dimensions (3 and 2)",
      function() return a3:kernel() + nnft.kernel.freeprop{ d = 2, R = 1, m = 1 } end)
  end)

  it("refuses a tree deeper than 200 when it is built, not when it is evaluated", function()
    local k = rbf
    for _ = 2, 200 do k = k + rbf end -- depth 200: the maximum
    assert.are.equal(200 * rbf:matrix(nnft.mat{ { 0.5 } }):get(1, 1), k:matrix(nnft.mat{ { 0.5 } }):get(1, 1))
    raises("kernel tree too deep", function() return k + rbf end)
    raises("kernel tree too deep", function() return 2 * k end)
    raises("kernel tree too deep", function() return k * rbf end)
    -- k + k shares its child: 60 levels are 2^60 nodes to walk (hung, uninterruptibly)
    local kk = rbf
    for _ = 1, 12 do kk = kk + kk end -- 8191 nodes
    raises("kernel tree too large", function() for _ = 1, 60 do kk = kk + kk end end)
    raises("kernel tree too large", function() for _ = 1, 60 do kk = kk * kk end end)
  end)

  it("prints the tree and gives a spec table", function()
    local arch = nnft.mlp{ d_in = 1, width = 10, depth = 1, act = "relu" }
    local k = 0.5 * nnft.kernel.rbf() + arch:kernel()
    assert.are.equal("0.5 * rbf{lengthscale=1, variance=1} + nngp(" .. tostring(arch) .. ")",
                     tostring(k))
    assert.are.equal("(rbf{lengthscale=1, variance=1} + matern{nu=1.5, lengthscale=1, "
                     .. "variance=1}) * poly{degree=2, offset=1, variance=1}",
                     tostring((nnft.kernel.rbf() + nnft.kernel.matern()) * nnft.kernel.poly()))
    local s = k:spec()
    assert.are.equal("sum", s.type)
    assert.are.equal("scale", s.left.type)
    assert.are.equal(0.5, s.left.scale)
    assert.are.equal("rbf", s.left.kernel.type)
    assert.are.equal(1, s.left.kernel.lengthscale)
    assert.are.equal("nngp", s.right.type)
    assert.are.equal(arch, s.right.arch)
    assert.are.equal("ntk(" .. tostring(arch) .. ", quad_order=40)",
                     tostring(arch:ntk_kernel{ quad_order = 40 }))
  end)
end)

describe("Kernel:spectrum", function()
  local ps = { 0, 0.4, 1.1, 2.5 }

  it("agrees across analytic, quadrature and fft for rbf in d = 1, 2, 3", function()
    local k = nnft.kernel.rbf{ lengthscale = 0.7, variance = 1.3 }
    for d = 1, 3 do
      for _, p in ipairs(ps) do
        local a = k:spectrum(p, { d = d })
        near(a, 1.3 * (2 * math.pi * 0.49)^(d / 2) * math.exp(-0.49 * p * p / 2), 1e-13 * a)
        near(k:spectrum(p, { d = d, method = "quadrature" }), a, 1e-7 * a)
        near(k:spectrum(p, { d = d, method = "fft" }), a, 1e-3 * a)
      end
    end
  end)

  it("agrees for matern by quadrature", function()
    for _, nu in ipairs{ 0.5, 1.5, 2.5 } do
      local k = nnft.kernel.matern{ nu = nu, lengthscale = 0.8 }
      for d = 1, 3 do
        local P = nnft.mat(ps)
        local a, q = k:spectrum(P, { d = d }), k:spectrum(P, { d = d, method = "quadrature" })
        assert.is_true(q:maxabsdiff(a) <= 1e-7 * a:max())
      end
    end
  end)

  it("is the cutoff propagator for freeprop and the generalised cos-net", function()
    local k = nnft.kernel.freeprop{ d = 3, R = 2, m = 0.5 }
    near(k:spectrum(1), 1 / 1.25, 1e-15)
    assert.are.equal(0, k:spectrum(2.5))
    local c = nnft.cosnet{ d_in = 3, width = 10, radius = 2, mass = 0.5 }
    assert.is_true(c:kernel():is_stationary())
    near(c:kernel():spectrum(1), 1 / 1.25, 1e-15)
  end)

  it("refuses non-stationary kernels, products analytically, and bad arguments", function()
    local arch = nnft.mlp{ d_in = 1, width = 3, depth = 1 }
    raises("translation-invariant", function() arch:kernel():spectrum(1) end)
    raises("translation-invariant", function() nnft.kernel.poly():spectrum(1, { d = 1 }) end)
    local pr = nnft.kernel.rbf() * nnft.kernel.matern()
    raises("no closed form", function() pr:spectrum(1, { d = 2 }) end)
    near(pr:spectrum(1, { d = 2, method = "quadrature" }),
         pr:spectrum(1, { d = 2, method = "fft" }), 1e-4)
    raises("say which with d=", function() nnft.kernel.rbf():spectrum(1) end)
    raises("d must be 1, 2 or 3", function() nnft.kernel.rbf():spectrum(1, { d = 4 }) end)
    raises("d=2 but the kernel takes points of dimension 3",
      function() nnft.kernel.freeprop{ d = 3, R = 1, m = 1 }:spectrum(1, { d = 2 }) end)
    raises("p must be >= 0", function() nnft.kernel.rbf():spectrum(-1, { d = 1 }) end)
    raises("unknown option 'methd'",
      function() nnft.kernel.rbf():spectrum(1, { d = 1, methd = "fft" }) end)
    raises("must be even", function()
      nnft.kernel.rbf():spectrum(1, { d = 1, method = "fft", n = 63 })
    end)
    raises("beyond the fft grid's reach", function()
      nnft.kernel.rbf():spectrum(100, { d = 1, method = "fft", n = 64, L = 20 })
    end)
  end)
end)

describe("Kernel refusals", function()
  it("rejects unknown options and impossible values", function()
    raises("unknown option 'lenghtscale'", function() nnft.kernel.rbf{ lenghtscale = 1 } end)
    raises("lengthscale must be finite and > 0", function() nnft.kernel.rbf{ lengthscale = 0 } end)
    raises("variance must be finite and >= 0", function() nnft.kernel.rbf{ variance = -1 } end)
    raises("nu must be 0.5, 1.5 or 2.5", function() nnft.kernel.matern{ nu = 1 } end)
    raises("degree must be an integer", function() nnft.kernel.poly{ degree = 1.5 } end)
    raises("negative offset", function() nnft.kernel.poly{ offset = -1 } end)
    raises("R= and the mass m= are required", function() nnft.kernel.freeprop{ R = 1 } end)
    raises("d must be 1, 2 or 3", function() nnft.kernel.freeprop{ d = 4, R = 1, m = 1 } end)
    raises("diverges", function() nnft.kernel.freeprop{ d = 1, R = 1, m = 0 } end)
    local arch = nnft.mlp{ d_in = 1, width = 3, depth = 1 }
    raises("unknown option 'order'", function() arch:kernel{ order = 3 } end)
    raises("quad_order", function() arch:kernel{ quad_order = 1 } end)
    raises("unknown option 'ntk'", function() arch:ntk_kernel{ ntk = false } end)
  end)

  it("rejects bad points with clear messages", function()
    local k = nnft.kernel.rbf()
    raises("X has 2 columns but Y has 1", function() k:matrix(X, nnft.mat{ 1, 2 }) end)
    local Xn = X:copy()
    Xn:set(2, 2, 0 / 0)
    raises("X contains NaN or Inf (row 2, column 2)", function() k:matrix(Xn) end)
    raises("Y contains NaN or Inf", function() k:matrix(X, Xn) end)
    raises("X contains NaN or Inf", function() k:diag(Xn) end)
    local arch = nnft.mlp{ d_in = 3, width = 3, depth = 1 }
    raises("X has 2 columns but the kernel takes points of dimension 3",
      function() arch:kernel():matrix(X) end)
    raises("nnft.Mat", function() k:matrix("points") end)
    -- tables of rows are accepted
    assert.are.equal(0, k:matrix{ { 0.3, -1.0 }, { 2.0, 0.5 } }:maxabsdiff(
      k:matrix(nnft.mat{ { 0.3, -1.0 }, { 2.0, 0.5 } })))
  end)

  it("refuses a matrix larger than the machine's memory before allocating it", function()
    local big = nnft.mat.zeros(1000000, 1)
    raises("GiB, more than this machine's memory", function() nnft.kernel.rbf():matrix(big) end)
  end)
end)
