-- nnft.linalg through the binding: the identities each decomposition must satisfy, and the
-- errors a caller gets for bad input.
local nnft = require "nnft"
local U = require "spec_util"
local randmat, errmsg = U.randmat, U.errmsg
local linalg = nnft.linalg

local function spd(n, seed)
  local g = randmat(n, n, seed)
  return g * g:t() + nnft.mat.eye(n) * n
end

local function sym(n, seed)
  local g = randmat(n, n, seed)
  return (g + g:t()) * 0.5
end

-- M diag(d) for a column d.
local function scale_cols(m, d)
  return nnft.mat.fromfunction(m:rows(), m:cols(), function(i, j) return m:get(i, j) * d:get(j, 1) end)
end

local function dist_eye(m)
  return m:maxabsdiff(nnft.mat.eye(m:rows(), m:cols()))
end

describe("nnft.linalg.chol", function()
  it("factors A = L Lᵀ with a zero upper triangle and reports no jitter", function()
    local A = spd(6, 3)
    local A0 = A:copy()
    local L, jitter = linalg.chol(A)
    assert.are.equal(0, jitter)
    assert.is_true((L * L:t()):maxabsdiff(A) < 1e-12)
    for i = 1, 6 do
      for j = i + 1, 6 do assert.are.equal(0, L:get(i, j)) end
    end
    assert.are.equal(0, A:maxabsdiff(A0)) -- input untouched
  end)

  it("returns the upper factor A = Uᵀ U with lower=false", function()
    local A = spd(5, 4)
    local U = linalg.chol(A, { lower = false })
    assert.is_true((U:t() * U):maxabsdiff(A) < 1e-12)
    assert.are.equal(0, U:get(4, 2))
  end)

  it("rescues a rank-deficient PSD matrix with jitter and reports it", function()
    local A = nnft.mat.ones(3, 3) -- rank 1
    local msg = errmsg(linalg.chol, A)
    assert.matches("nnft.linalg.chol: matrix is not positive definite", msg, 1, true)
    assert.matches("leading minor 2 of 3 is not positive", msg, 1, true)
    assert.matches("smallest eigenvalue", msg, 1, true)
    assert.matches("try {jitter=true}", msg, 1, true)
    local L, jitter = linalg.chol(A, { jitter = true })
    assert.are.equal(1e-10, jitter)
    assert.is_true((L * L:t()):maxabsdiff(A + nnft.mat.eye(3) * jitter) < 1e-14)
  end)

  it("gives up after max_tries naming the smallest eigenvalue", function()
    local A = nnft.mat{ { 1, 0 }, { 0, -1 } }
    local msg = errmsg(linalg.chol, A, { jitter = true })
    assert.matches("even with jitter 1e%-05", msg)
    assert.matches("6 tries", msg, 1, true)
    assert.matches("smallest eigenvalue %-1", msg)
    msg = errmsg(linalg.chol, A, { jitter = true, max_tries = 2 })
    assert.matches("2 tries", msg, 1, true)
  end)

  it("refuses bad input with clear messages", function()
    assert.matches("must be square, got 2 x 3", errmsg(linalg.chol, nnft.mat(2, 3)), 1, true)
    assert.matches("nnft.Mat expected, got table", errmsg(linalg.chol, { { 1 } }), 1, true)
    assert.matches("nnft.Mat expected, got string", errmsg(linalg.chol, "A"), 1, true)
    assert.matches("A contains NaN or Inf", errmsg(linalg.chol, nnft.mat{ { 1, 0 }, { 0, 0 / 0 } }),
      1, true)
    assert.matches("A contains NaN or Inf", errmsg(linalg.chol, nnft.mat{ { math.huge } }), 1, true)
    assert.matches("not symmetric", errmsg(linalg.chol, nnft.mat{ { 2, 1 }, { 0, 2 } }), 1, true)
    assert.matches("unknown option 'jiter'", errmsg(linalg.chol, spd(2), { jiter = true }), 1, true)
    assert.matches("jitter", errmsg(linalg.chol, spd(2), { jitter = 1 }), 1, true)
    assert.matches("max_tries must be between 1 and 30, got 0",
      errmsg(linalg.chol, spd(2), { max_tries = 0 }), 1, true)
    assert.matches("options must be a table", errmsg(linalg.chol, spd(2), 3), 1, true)
  end)

  it("accepts the empty matrix", function()
    local L, j = linalg.chol(nnft.mat(0, 0))
    assert.are.equal(0, L:rows())
    assert.are.equal(0, j)
  end)
end)

describe("nnft.linalg solves", function()
  local A = spd(6, 11)
  local B = randmat(6, 3, 12)
  local b = randmat(6, 1, 13)
  local L = linalg.chol(A)

  it("trisolve: L X = B, Lᵀ X = B, and the upper form", function()
    assert.is_true((L * linalg.trisolve(L, B)):maxabsdiff(B) < 1e-12)
    assert.is_true((L:t() * linalg.trisolve(L, B, { trans = true })):maxabsdiff(B) < 1e-12)
    local U = L:t()
    assert.is_true((U * linalg.trisolve(U, b, { lower = false })):maxabsdiff(b) < 1e-12)
    assert.matches("unknown option 'upper'", errmsg(linalg.trisolve, L, B, { upper = true }), 1, true)
    local Z = L:copy()
    Z:set(3, 3, 0)
    assert.matches("T(3,3) is exactly zero", errmsg(linalg.trisolve, Z, B), 1, true)
  end)

  it("cholsolve and solve_spd: A X = B for a matrix and a column", function()
    assert.is_true((A * linalg.cholsolve(L, B)):maxabsdiff(B) < 1e-12)
    assert.is_true((A * linalg.solve_spd(A, B)):maxabsdiff(B) < 1e-12)
    local x = linalg.solve_spd(A, b)
    assert.are.equal(1, x:cols())
    assert.is_true((A * x):maxabsdiff(b) < 1e-12)
    local msg = errmsg(linalg.solve_spd, nnft.mat{ { 1, 2 }, { 2, 1 } }, nnft.mat{ 1, 1 })
    assert.matches("nnft.linalg.solve_spd: matrix is not positive definite", msg, 1, true)
    assert.matches("smallest eigenvalue %-1", msg)
  end)

  it("solve: general A X = B, singular and shape errors", function()
    local G = randmat(6, 6, 21)
    assert.is_true((G * linalg.solve(G, B)):maxabsdiff(B) < 1e-10)
    assert.is_true((G * linalg.solve(G, b)):maxabsdiff(b) < 1e-10)
    assert.matches("nnft.linalg.solve: matrix is singular: U(2,2) is exactly zero",
      errmsg(linalg.solve, nnft.mat{ { 1, 2 }, { 2, 4 } }, nnft.mat{ 1, 1 }), 1, true)
    assert.matches("B has 5 rows but A is 6 x 6", errmsg(linalg.solve, G, randmat(5, 1)), 1, true)
    assert.matches("A must be square, got 6 x 5", errmsg(linalg.solve, randmat(6, 5), B), 1, true)
    assert.matches("B contains NaN or Inf", errmsg(linalg.solve, G, nnft.mat(6, 1, 0 / 0)), 1, true)
    assert.matches("unknown option 'foo' (allowed: none)", errmsg(linalg.solve, G, B, { foo = 1 }),
      1, true)
    assert.matches("nnft.Mat expected, got number", errmsg(linalg.solve, G, 3), 1, true)
  end)
end)

describe("nnft.linalg.eigh", function()
  local A = sym(7, 31)

  it("A V = V diag(w), orthonormal V, descending by default", function()
    local w, V = linalg.eigh(A)
    assert.are.equal(7, w:rows())
    assert.are.equal(1, w:cols())
    for i = 2, 7 do assert.is_true(w:get(i - 1, 1) >= w:get(i, 1)) end
    assert.is_true((A * V):maxabsdiff(scale_cols(V, w)) < 1e-12)
    assert.is_true(dist_eye(V:t() * V) < 1e-12)
  end)

  it("orders ascending, selects by count, index and range", function()
    local w = linalg.eigh(A)
    local wa = linalg.eigh(A, { order = "asc", vectors = false })
    assert.is_true(math.abs(w:get(7, 1) - wa:get(1, 1)) < 1e-12)
    local w3, V3 = linalg.eigh(A, { count = 3 })
    assert.are.equal(3, w3:rows())
    assert.are.same({ 7, 3 }, { V3:shape() })
    assert.is_true(math.abs(w3:get(3, 1) - w:get(3, 1)) < 1e-10)
    assert.is_true((A * V3):maxabsdiff(scale_cols(V3, w3)) < 1e-10)
    local wi = linalg.eigh(A, { index = { 2, 4 }, vectors = false })
    assert.is_true(math.abs(wi:get(1, 1) - w:get(2, 1)) < 1e-10)
    assert.is_true(math.abs(wi:get(3, 1) - w:get(4, 1)) < 1e-10)
    local lo, hi = (w:get(5, 1) + w:get(6, 1)) / 2, (w:get(1, 1) + w:get(2, 1)) / 2
    local wr, Vr = linalg.eigh(A, { range = { lo, hi } })
    assert.are.equal(4, wr:rows())
    assert.are.same({ 7, 4 }, { Vr:shape() })
    assert.is_true(math.abs(wr:get(1, 1) - w:get(2, 1)) < 1e-10)
    local none = linalg.eigh(A, { range = { 1e6, 1e7 }, vectors = false })
    assert.are.equal(0, none:rows())
  end)

  it("returns only w with vectors=false", function()
    assert.are.equal(1, select("#", linalg.eigh(A, { vectors = false })))
  end)

  it("refuses bad options and input", function()
    assert.matches("at most one of count, index and range",
      errmsg(linalg.eigh, A, { count = 2, range = { 0, 1 } }), 1, true)
    assert.matches("count must be between 0 and 7", errmsg(linalg.eigh, A, { count = 8 }), 1, true)
    assert.matches("index = {3, 2}", errmsg(linalg.eigh, A, { index = { 3, 2 } }), 1, true)
    assert.matches("range must be a table", errmsg(linalg.eigh, A, { range = 3 }), 1, true)
    assert.matches("range = {2, 1} must be finite with lo < hi",
      errmsg(linalg.eigh, A, { range = { 2, 1 } }), 1, true)
    assert.matches("order", errmsg(linalg.eigh, A, { order = "up" }), 1, true)
    assert.matches("unknown option 'k'", errmsg(linalg.eigh, A, { k = 1 }), 1, true)
    assert.matches("not symmetric", errmsg(linalg.eigh, randmat(3, 3)), 1, true)
    assert.matches("must be square", errmsg(linalg.eigh, randmat(3, 2)), 1, true)
  end)
end)

describe("nnft.linalg.svd and lstsq", function()
  it("U diag(s) Vt = A for tall and wide A", function()
    for _, shape in ipairs({ { 7, 3 }, { 3, 7 } }) do
      local A = randmat(shape[1], shape[2], 41)
      local U, s, Vt = linalg.svd(A)
      local k = math.min(shape[1], shape[2])
      assert.are.same({ k, 1 }, { s:shape() })
      assert.is_true((scale_cols(U, s) * Vt):maxabsdiff(A) < 1e-12)
      assert.is_true(dist_eye(U:t() * U) < 1e-12)
      assert.is_true(dist_eye(Vt * Vt:t()) < 1e-12)
      local s2 = linalg.svd(A, { vectors = false })
      assert.is_true(s2:maxabsdiff(s) < 1e-12)
      local Uf, _, Vtf = linalg.svd(A, { full = true })
      assert.are.same({ shape[1], shape[1] }, { Uf:shape() })
      assert.are.same({ shape[2], shape[2] }, { Vtf:shape() })
      assert.is_true(dist_eye(Uf:t() * Uf) < 1e-12)
    end
    assert.matches("unknown option 'thin'", errmsg(linalg.svd, randmat(2, 2), { thin = true }), 1, true)
    assert.matches("A contains NaN or Inf", errmsg(linalg.svd, nnft.mat(2, 2, 0 / 0)), 1, true)
  end)

  it("lstsq satisfies the normal equations and reports rank", function()
    local A, B = randmat(9, 4, 51), randmat(9, 2, 52)
    local X, rank, s = linalg.lstsq(A, B)
    assert.are.equal(4, rank)
    assert.are.same({ 4, 2 }, { X:shape() })
    assert.is_true((A:t() * (A * X - B)):maxabsdiff(nnft.mat(4, 2)) < 1e-12)
    assert.is_true(s:maxabsdiff(linalg.svd(A, { vectors = false })) < 1e-12)
    -- duplicate a column: rank 3, minimum-norm solution splits the weight evenly
    local D = nnft.mat.fromfunction(9, 4, function(i, j) return A:get(i, j == 3 and 1 or j) end)
    local Xd, rd = linalg.lstsq(D, B)
    assert.are.equal(3, rd)
    assert.is_true(math.abs(Xd:get(1, 1) - Xd:get(3, 1)) < 1e-10)
    assert.matches("B has 8 rows but A is 9 x 4", errmsg(linalg.lstsq, A, randmat(8, 1)), 1, true)
    assert.matches("rcond", errmsg(linalg.lstsq, A, B, { rcond = "x" }), 1, true)
    assert.matches("unknown option 'tol'", errmsg(linalg.lstsq, A, B, { tol = 1 }), 1, true)
  end)
end)

describe("nnft.linalg determinants and inverses", function()
  it("logdet_spd and logdet agree with the eigenvalues", function()
    local A = spd(5, 61)
    local w = linalg.eigh(A, { vectors = false })
    local sum = 0
    for i = 1, 5 do sum = sum + math.log(w:get(i, 1)) end
    assert.is_true(math.abs(linalg.logdet_spd(A) - sum) < 1e-10)
    local ld, sign = linalg.logdet(A)
    assert.is_true(math.abs(ld - sum) < 1e-10)
    assert.are.equal(1, sign)
  end)

  it("logdet gives the sign and handles exactly singular matrices", function()
    local ld, sign = linalg.logdet(nnft.mat{ { 0, 2 }, { 3, 0 } }) -- det -6
    assert.is_true(math.abs(ld - math.log(6)) < 1e-14)
    assert.are.equal(-1, sign)
    ld, sign = linalg.logdet(nnft.mat{ { 1, 2 }, { 2, 4 } })
    assert.are.equal(-math.huge, ld)
    assert.are.equal(0, sign)
    assert.matches("not positive definite", errmsg(linalg.logdet_spd, nnft.mat{ { 1, 2 }, { 2, 1 } }),
      1, true)
    assert.matches("must be square", errmsg(linalg.logdet, randmat(2, 3)), 1, true)
  end)

  it("inv and inv_spd invert", function()
    local G = randmat(5, 5, 71)
    assert.is_true(dist_eye(linalg.inv(G) * G) < 1e-10)
    local A = spd(5, 72)
    local Ai = linalg.inv_spd(A)
    assert.is_true(dist_eye(Ai * A) < 1e-12)
    assert.are.equal(0, Ai:maxabsdiff(Ai:t()))
    assert.matches("nnft.linalg.inv: matrix is singular: U(2,2) is exactly zero",
      errmsg(linalg.inv, nnft.mat{ { 1, 2 }, { 2, 4 } }), 1, true)
    assert.matches("nnft.linalg.inv_spd: matrix is not positive definite",
      errmsg(linalg.inv_spd, nnft.mat{ { 1, 2 }, { 2, 1 } }), 1, true)
    assert.matches("contains NaN or Inf", errmsg(linalg.inv, nnft.mat(2, 2, math.huge)), 1, true)
    assert.matches("unknown option", errmsg(linalg.inv, G, { pivot = true }), 1, true)
  end)

  it("asymmetry measures max |A - Aᵀ| / max |A|", function()
    assert.are.equal(0, linalg.asymmetry(spd(3)))
    assert.is_true(math.abs(linalg.asymmetry(nnft.mat{ { 2, 1 }, { 0, 2 } }) - 0.5) < 1e-15)
  end)
end)
