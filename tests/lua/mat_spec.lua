-- nnft.mat and the Mat userdata, through Lua: every function and method, and every bad input
-- with an error message that names the problem. Runs under stock lua5.4 (require "nnft") and
-- under the nnft interpreter (where nnft is also a global).
local nnft = require "nnft"
local M = nnft.mat

-- f(...) must raise an error containing `needle` (plain text).
local function raises(needle, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error containing '" .. needle .. "', got none")
  err = tostring(err)
  assert(err:find(needle, 1, true), ("error %q does not contain %q"):format(err, needle))
end

-- A equals the nested table t exactly (or within tol).
local function same(A, t, tol)
  tol = tol or 0
  assert.are.equal(#t, A:rows(), "rows")
  for i = 1, #t do
    assert.are.equal(#t[i], A:cols(), "cols")
    for j = 1, #t[i] do
      local a, b = A:get(i, j), t[i][j]
      if b ~= b then
        assert(a ~= a, ("(%d,%d): %s, expected nan"):format(i, j, a))
      else
        assert(math.abs(a - b) <= tol, ("(%d,%d): %.17g, expected %.17g"):format(i, j, a, b))
      end
    end
  end
end

local nan = 0 / 0

describe("nnft.mat constructors", function()
  it("builds from nested tables (rows) and flat tables (a column)", function()
    local A = M{{1, 2, 3}, {4, 5, 6}}
    assert.are.equal(2, A:rows())
    assert.are.equal(3, A:cols())
    same(A, {{1, 2, 3}, {4, 5, 6}})
    local v = M{1, 2, 3}
    assert.are.same({3, 1}, {v:shape()})
    same(v, {{1}, {2}, {3}})
    assert.are.same({0, 0}, {M{}:shape()})
    same(M.fromtable{{1.5}}, {{1.5}})
  end)

  it("takes sizes, a fill value, or a matrix to copy", function()
    same(M(2, 3), {{0, 0, 0}, {0, 0, 0}})
    same(M(1, 2, 7), {{7, 7}})
    local A = M{{1, 2}}
    local B = M(A)
    B:set(1, 1, 9)
    assert.are.equal(1, A:get(1, 1)) -- a copy, not a view
    assert.are.same({0, 4}, {M(0, 4):shape()})
  end)

  it("zeros, ones, full, eye", function()
    same(M.zeros(2, 2), {{0, 0}, {0, 0}})
    same(M.ones(1, 3), {{1, 1, 1}})
    same(M.full(2, 1, -2.5), {{-2.5}, {-2.5}})
    same(M.eye(2), {{1, 0}, {0, 1}})
    same(M.eye(2, 3), {{1, 0, 0}, {0, 1, 0}})
    same(M.eye(3, 2), {{1, 0}, {0, 1}, {0, 0}})
    assert.are.same({0, 0}, {M.eye(0):shape()})
  end)

  it("linspace and logspace give columns with exact end points", function()
    local x = M.linspace(0, 1, 5)
    same(x, {{0}, {0.25}, {0.5}, {0.75}, {1}})
    local y = M.linspace(-1, 0.3, 7)
    assert.are.equal(0.3, y:get(7))
    assert.are.equal(-1, y:get(1))
    same(M.linspace(2, 3, 1), {{2}})
    same(M.logspace(0, 2, 3), {{1}, {10}, {100}}, 1e-12)
    same(M.logspace(1, 1, 1), {{10}})
  end)

  it("fromfunction calls f(i, j) with 1-based indices", function()
    same(M.fromfunction(2, 3, function(i, j) return 10 * i + j end), {{11, 12, 13}, {21, 22, 23}})
    assert.are.same({0, 3}, {M.fromfunction(0, 3, function() error("not called") end):shape()})
  end)

  it("ismat", function()
    assert.is_true(M.ismat(M.zeros(1, 1)))
    assert.is_false(M.ismat({}))
    assert.is_false(M.ismat(3))
    assert.is_false(M.ismat(io.stdout))
  end)

  it("refuses bad sizes with a clear error", function()
    raises("size must be non-negative, got -1", M.zeros, -1, 2)
    raises("size must be non-negative, got -3", M.ones, 2, -3)
    raises("expected an integer size, got 1.5", M.zeros, 1.5, 2)
    raises("expected an integer size", M.zeros, 2, math.huge)
    raises("expected an integer size", M.zeros, 0 / 0, 2)
    raises("expected an integer size", M.zeros, 2 ^ 70, 1)
    raises("integer expected, got string", M.zeros, "a", 2)
    raises("integer expected, got no value", M.zeros, 2)
    raises("size must be positive, got 0", M.linspace, 0, 1, 0)
    raises("size must be non-negative", M.eye, -2)
    raises("size must be non-negative", M, -1, 1)
  end)

  it("refuses huge sizes before attempting them", function()
    raises("cannot allocate a 1000000000 x 1000000000 matrix", M.zeros, 1e9, 1e9)
    raises("larger than this machine's memory", M.zeros, 1e9, 1e9)
    raises("larger than this machine's memory", M.ones, 2 ^ 20, 2 ^ 20)
    raises("exceeds the BLAS limit of 2147483647", M.zeros, 2 ^ 40, 1)
    raises("exceeds the BLAS limit of 2147483647", M.zeros, 1, 2 ^ 31)
    raises("exceeds the BLAS limit", M.zeros, 0, 2 ^ 40)
    raises("cannot allocate", M.eye, 2 ^ 40)
    raises("cannot allocate", M.linspace, 0, 1, 2 ^ 40)
    raises("cannot allocate", M.fromfunction, 2 ^ 33, 2 ^ 33, function() return 0 end)
    raises("cannot allocate", M.full, 3e9, 3e9, 1)
  end)

  it("refuses malformed tables, naming the entry", function()
    raises("row 2 has 1 entries, row 1 has 2", M, {{1, 2}, {3}})
    raises("entry (1, 2) is a string, expected a number", M, {{1, "2"}})
    raises("entry (2, 1) is a boolean, expected a number", M, {{1}, {true}})
    raises("row 2 is a number, expected a table", M, {{1}, 2})
    raises("entry 2 is a table, expected a number", M, {1, {2}})
    raises("entry 1 is a string, expected a number", M, {"x"})
    raises("row 1 is empty", M, {{}})
    raises("table expected, got number", M.fromtable, 3)
  end)

  it("refuses bad arguments to linspace, fromfunction", function()
    raises("end points must be finite", M.linspace, 0, nan, 3)
    raises("end points must be finite", M.linspace, -math.huge, 1, 3)
    raises("exponents must be finite", M.logspace, 0, math.huge, 3)
    raises("number expected, got nil", M.linspace, nil, 1, 3)
    raises("function expected, got no value", M.fromfunction, 2, 2)
    raises("f(1, 1) returned string, expected a number", M.fromfunction, 2, 2, function() return "1" end)
    raises("f(2, 1) returned nil", M.fromfunction, 2, 2, function(i) if i == 1 then return 0 end end)
    raises("boom", M.fromfunction, 2, 2, function() error("boom") end)
    raises("number expected, got no value", M.full, 2, 2)
  end)
end)

describe("Mat shape and elements", function()
  it("rows, cols, shape, size, #", function()
    local A = M.zeros(3, 4)
    assert.are.equal(3, A:rows())
    assert.are.equal(4, A:cols())
    assert.are.same({3, 4}, {A:shape()})
    assert.are.equal(12, A:size())
    assert.are.equal(3, #A)
  end)

  it("get and set (set returns the matrix), one index on vectors", function()
    local A = M.zeros(2, 3)
    assert.are.equal(A, A:set(2, 3, 5))
    assert.are.equal(5, A:get(2, 3))
    local c = M{1, 2, 3}
    assert.are.equal(3, c:get(3))
    c:set(2, -1)
    assert.are.equal(-1, c:get(2, 1))
    local r = M{{1, 2, 3}}
    assert.are.equal(2, r:get(2))
    r:set(3, 7)
    assert.are.equal(7, r:get(1, 3))
    assert.are.equal(9, M{{9}}:get(1))
  end)

  it("refuses out-of-range and non-integer indices, naming them", function()
    local A = M.zeros(2, 3)
    raises("row index 3 out of range 1..2", A.get, A, 3, 1)
    raises("row index 0 out of range 1..2", A.get, A, 0, 1)
    raises("column index 4 out of range 1..3", A.get, A, 1, 4)
    raises("column index -1 out of range 1..3", A.set, A, 1, -1, 0)
    raises("number has no integer representation", A.get, A, 1.5, 1)
    raises("one index needs a vector (n x 1 or 1 x n); this matrix is 2 x 3", A.get, A, 1)
    raises("m:set(row, column, value)", A.set, A, 1, 2) -- forgot the value
    raises("number expected, got string", A.set, A, 1, 1, "x")
    raises("number expected, got nil", A.set, A, 1, 1, nil)
    local v = M{1, 2}
    raises("element index 3 out of range 1..2", v.get, v, 3)
    raises("element index 0 out of range 1..2", v.set, v, 0, 1)
    raises("nnft.Mat expected, got table", A.get, {}, 1, 1)
    raises("nnft.Mat expected, got no value", A.rows)
  end)

  it("totable and fromtable round-trip; flat is column-major", function()
    local t = {{1, 2, 3}, {4, 5, 6}}
    local A = M.fromtable(t)
    assert.are.same(t, A:totable())
    assert.are.same({1, 4, 2, 5, 3, 6}, A:totable(true))
    assert.are.same({1, 2, 3}, M{1, 2, 3}:totable(true))
    assert.are.same({}, M.zeros(0, 3):totable())
    assert.are.same(t, M(A:totable()):totable())
  end)

  it("copy is independent; t transposes", function()
    local A = M{{1, 2, 3}, {4, 5, 6}}
    local B = A:copy()
    B:set(1, 1, 100)
    assert.are.equal(1, A:get(1, 1))
    same(A:t(), {{1, 4}, {2, 5}, {3, 6}})
    same(M.zeros(0, 2):t(), {{}, {}}) -- 2 x 0
    assert.are.same({2, 0}, {M.zeros(0, 2):t():shape()})
  end)

  it("fill and assign (from a matrix, number or table) return the matrix", function()
    local A = M.zeros(2, 2)
    assert.are.equal(A, A:fill(3))
    same(A, {{3, 3}, {3, 3}})
    assert.are.equal(A, A:assign(M{{1, 2}, {3, 4}}))
    same(A, {{1, 2}, {3, 4}})
    A:assign(0.5)
    same(A, {{0.5, 0.5}, {0.5, 0.5}})
    A:assign{{5, 6}, {7, 8}}
    same(A, {{5, 6}, {7, 8}})
    raises("assign: shapes do not conform (2 x 2 vs 3 x 1)", A.assign, A, M{1, 2, 3})
    raises("nnft.Mat, number or table expected, got string", A.assign, A, "x")
    raises("number expected, got no value", A.fill, A)
  end)
end)

describe("Mat views", function()
  it("row, col and block share storage with the parent", function()
    local A = M{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}
    local r, c, b = A:row(2), A:col(3), A:block(2, 2, 2, 2)
    same(r, {{4, 5, 6}})
    same(c, {{3}, {6}, {9}})
    same(b, {{5, 6}, {8, 9}})
    b:set(1, 1, 50)
    assert.are.equal(50, A:get(2, 2))
    assert.are.equal(50, r:get(2))
    r:fill(0)
    same(A, {{1, 2, 3}, {0, 0, 0}, {7, 8, 9}})
    c:assign{{-1}, {-2}, {-3}}
    same(A, {{1, 2, -1}, {0, 0, -2}, {7, 8, -3}})
    -- a view of a view
    local bb = b:block(2, 1, 1, 2)
    same(bb, {{8, -3}})
    bb:set(1, 1, 80)
    assert.are.equal(80, A:get(3, 2))
    -- empty blocks are allowed
    assert.are.same({0, 0}, {A:block(3, 3, 0, 0):shape()})
  end)

  it("keep their parent alive after it is dropped and collected", function()
    local A = M.fromfunction(50, 40, function(i, j) return i * 1000 + j end)
    local v = A:block(10, 5, 20, 30):block(2, 3, 5, 5)
    local r = A:row(7)
    A = nil
    collectgarbage()
    collectgarbage()
    -- churn the allocator so freed storage would be reused
    for _ = 1, 20 do local _ = M.full(50, 40, -1) end
    collectgarbage()
    collectgarbage()
    assert.are.equal(11 * 1000 + 7, v:get(1, 1))
    assert.are.equal(15 * 1000 + 11, v:get(5, 5))
    assert.are.equal(7 * 1000 + 40, r:get(40))
    assert.are.equal((7 * 1000) * 40 + (40 * 41) / 2, r:sum())
  end)

  it("are released when their parent is released", function()
    local A = M.ones(3, 3)
    local v, vv = A:col(2), A:block(1, 1, 2, 2):row(1)
    A:release()
    raises("matrix has been released (closed)", v.get, v, 1)
    raises("matrix has been released (closed)", vv.sum, vv)
    raises("matrix has been released (closed)", function() return v + 1 end)
    raises("matrix has been released (closed)", function() return M.ones(1, 3) * v end)
    assert.are.equal("Mat (released)", tostring(v))
    assert.is_true(M.ismat(v))
  end)

  it("released (closed) views leave the parent intact", function()
    local A = M.ones(2, 2)
    do
      local v <close> = A:row(1)
      v:fill(2)
    end
    same(A, {{2, 2}, {1, 1}})
    local r = A:col(1)
    r:release()
    raises("released", r.get, r, 1)
    same(A, {{2, 2}, {1, 1}})
  end)

  it("refuse out-of-range positions and sizes", function()
    local A = M.zeros(3, 4)
    raises("row index 4 out of range 1..3", A.row, A, 4)
    raises("column index 0 out of range 1..4", A.col, A, 0)
    raises("block: a 3 x 2 block at (2, 1) does not fit in a 3 x 4 matrix", A.block, A, 2, 1, 3, 2)
    raises("block: a 1 x 5 block at (1, 1) does not fit", A.block, A, 1, 1, 1, 5)
    raises("size must be non-negative", A.block, A, 1, 1, -1, 1)
    raises("integer expected, got no value", A.block, A, 1, 1)
  end)

  it("copy between overlapping blocks as if through a temporary", function()
    local A = M.fromfunction(4, 4, function(i, j) return 10 * i + j end)
    A:block(2, 2, 3, 3):assign(A:block(1, 1, 3, 3))
    same(A, {{11, 12, 13, 14}, {21, 11, 12, 13}, {31, 21, 22, 23}, {41, 31, 32, 33}})
    local B = M.fromfunction(4, 4, function(i, j) return 10 * i + j end)
    B:block(1, 1, 3, 3):assign(B:block(2, 2, 3, 3))
    same(B, {{22, 23, 24, 14}, {32, 33, 34, 24}, {42, 43, 44, 34}, {41, 42, 43, 44}})
  end)
end)

describe("Mat arithmetic", function()
  local A = M{{1, 2}, {3, 4}}
  local B = M{{5, 6}, {7, 8}}

  it("+ and - elementwise, with numbers on either side", function()
    same(A + B, {{6, 8}, {10, 12}})
    same(A - B, {{-4, -4}, {-4, -4}})
    same(A + 1, {{2, 3}, {4, 5}})
    same(10 - A, {{9, 8}, {7, 6}})
    same(A - 1, {{0, 1}, {2, 3}})
    same(-A, {{-1, -2}, {-3, -4}})
  end)

  it("a 1x1 matrix broadcasts like a number in elementwise ops", function()
    same(A + M{{10}}, {{11, 12}, {13, 14}})
    same(M{{10}} - A, {{9, 8}, {7, 6}})
    same(A:emul(M{{2}}), {{2, 4}, {6, 8}})
  end)

  it("* is the matrix product (BLAS), scaling with a number", function()
    same(A * B, {{19, 22}, {43, 50}})
    same(B * A, {{23, 34}, {31, 46}})
    same(A * 2, {{2, 4}, {6, 8}})
    same(0.5 * A, {{0.5, 1}, {1.5, 2}})
    same(A * M{1, -1}, {{-1}, {-1}}) -- matrix-vector
    same(M{{1, 1}} * A, {{4, 6}})   -- row vector times matrix
    same(M{1, 2} * M{{3, 4}}, {{3, 4}, {6, 8}}) -- outer product
    local X = M{{1, 2, 3}, {4, 5, 6}}
    same(X * X:t(), {{14, 32}, {32, 77}})
    same(X:t() * X, {{17, 22, 27}, {22, 29, 36}, {27, 36, 45}})
    assert.are.same({2, 0}, {(M.zeros(2, 3) * M.zeros(3, 0)):shape()})
    same(M.zeros(2, 0) * M.zeros(0, 2), {{0, 0}, {0, 0}})
  end)

  it("multiplies non-contiguous views (with a leading dimension) correctly", function()
    local P = M.fromfunction(9, 8, function(i, j) return math.sin(i + 3 * j) end)
    local Q = M.fromfunction(7, 10, function(i, j) return math.cos(2 * i - j) end)
    for _, n in ipairs{1, 4} do
      local a = P:block(2, 3, 4, 5)  -- 4 x 5, ld 9
      local b = Q:block(2, 4, 5, n)  -- 5 x n, ld 7
      local ref = a:copy() * b:copy()
      assert.is_true((a * b):maxabsdiff(ref) < 1e-14)
      -- check one entry by hand
      local s = 0
      for k = 1, 5 do s = s + a:get(1, k) * b:get(k, 1) end
      assert.is_true(math.abs((a * b):get(1, 1) - s) < 1e-14)
    end
    local r = P:row(3)  -- 1 x 8, ld 9
    local c = P:col(2)  -- 9 x 1
    local s = 0
    for k = 1, 8 do s = s + r:get(k) * P:get(k, 5) end
    assert.is_true(math.abs((r * P:block(1, 5, 8, 1)):get(1) - s) < 1e-14)
    assert.is_true(math.abs((r * P:block(1, 1, 8, 8)):maxabsdiff(r:copy() * P:block(1, 1, 8, 8):copy())) < 1e-14)
    assert.are.same({1, 1}, {(c:t() * c):shape()})
  end)

  it("elementwise product, division, power", function()
    same(A:emul(B), {{5, 12}, {21, 32}})
    same(B:ediv(A), {{5, 3}, {7 / 3, 2}}, 1e-15)
    same(A:epow(M{{2, 0}, {1, 0.5}}), {{1, 1}, {3, 2}}, 1e-15)
    same(A ^ 2, {{1, 4}, {9, 16}})
    same(2 ^ A, {{2, 4}, {8, 16}})
    same(A:epow(3), {{1, 8}, {27, 64}})
    same(A / 2, {{0.5, 1}, {1.5, 2}})
    same(12 / A, {{12, 6}, {4, 3}})
    same(A:emul(2), {{2, 4}, {6, 8}})
    local z = A / 0
    assert.are.equal(math.huge, z:get(1, 1))
  end)

  it("refuses non-conforming shapes and odd operands, naming them", function()
    local C = M.zeros(3, 2)
    raises("nnft.Mat +: shapes do not conform (2 x 2 vs 3 x 2)", function() return A + C end)
    raises("nnft.Mat -: shapes do not conform (3 x 2 vs 2 x 2)", function() return C - A end)
    raises("nnft.Mat emul: shapes do not conform", A.emul, A, C)
    raises("nnft.Mat ediv: shapes do not conform", A.ediv, A, C)
    raises("nnft.Mat ^: shapes do not conform", function() return A ^ C end)
    raises("nnft.Mat *: inner dimensions differ (2 x 2 times 3 x 2)", function() return A * C end)
    raises("* is the matrix product, a:emul(b) the elementwise one", function() return A * C end)
    raises("matrix / matrix is ambiguous; use a:ediv(b)", function() return A / B end)
    raises("cannot combine nnft.Mat with string", function() return A + "1" end)
    raises("cannot combine table with nnft.Mat", function() return {} - A end)
    raises("cannot combine nnft.Mat with boolean", function() return A * true end)
  end)
end)

describe("Mat elementwise functions", function()
  local x = M{{-1.5, 0, 0.5, 2}}
  local function check(name, f)
    local y = x[name](x)
    for j = 1, 4 do
      local want, got = f(x:get(j)), y:get(j)
      if want ~= want then assert(got ~= got, name)
      else assert(math.abs(got - want) <= 1e-15 * (1 + math.abs(want)), name .. ": " .. got .. " vs " .. want) end
    end
    -- map(name) agrees with the method
    assert.are.equal(0, y:maxabsdiff(x:map(name)) or 0)
  end

  it("exist for every name and compute the right values", function()
    check("exp", math.exp)
    check("abs", math.abs)
    check("sin", math.sin)
    check("cos", math.cos)
    check("floor", math.floor)
    check("ceil", math.ceil)
    check("neg", function(v) return -v end)
    check("square", function(v) return v * v end)
    check("relu", function(v) return v > 0 and v or 0 end)
    check("sign", function(v) return v > 0 and 1 or (v < 0 and -1 or 0) end)
    check("tanh", function(v) return (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) end)
    check("sigmoid", function(v) return 1 / (1 + math.exp(-v)) end)
    check("expm1", function(v) return math.exp(v) - 1 end)
    local p = M{{0.25, 1, 4}}
    same(p:sqrt(), {{0.5, 1, 2}})
    same(p:log(), {{math.log(0.25), 0, math.log(4)}}, 1e-15)
    same(p:log1p(), {{math.log(1.25), math.log(2), math.log(5)}}, 1e-15)
    same(M{{0, 1, -1}}:erf(), {{0, 0.84270079294971487, -0.84270079294971487}}, 1e-15)
    -- outside the domain: NaN / -Inf, not an error
    assert.is_true(M{{-1}}:sqrt():get(1) ~= M{{-1}}:sqrt():get(1))
    assert.are.equal(-math.huge, M{{0}}:log():get(1))
  end)

  it("map takes a name or a Lua function", function()
    same(x:map(function(v) return 2 * v end), {{-3, 0, 1, 4}})
    same(x:map("abs"), {{1.5, 0, 0.5, 2}})
    raises("unknown function 'exq'", x.map, x, "exq")
    raises("function expected, got number", x.map, x, 3)
    raises("map: function returned string for entry (1, 2), expected a number", x.map, x,
      function(v) return v == 0 and "0" or v end)
  end)

  it("map stops cleanly if the function releases the matrix (or its parent)", function()
    local A = M.ones(3, 3)
    raises("map: the matrix was released by the function while being mapped", A.map, A,
      function(v) A:release(); return v end)
    local P = M.ones(3, 3)
    local v = P:col(2)
    raises("map: the matrix was released", v.map, v, function(x) P:release(); return x end)
  end)

  it("propagate NaN (sign and relu too)", function()
    local n = M{{nan}}
    for _, name in ipairs{"exp", "log", "sqrt", "abs", "erf", "tanh", "sin", "cos", "square",
                          "relu", "sign", "sigmoid", "log1p", "expm1", "floor", "ceil", "neg"} do
      local v = n[name](n):get(1)
      assert(v ~= v, name .. "(NaN) should be NaN")
    end
  end)

  it("work on views without touching the rest of the parent", function()
    local A = M{{1, 4}, {9, 16}}
    same(A:col(2):sqrt(), {{2}, {4}})
    same(A, {{1, 4}, {9, 16}})
  end)
end)

describe("Mat reductions", function()
  -- dim convention: nil = all elements (a number); 1 = down the rows, one value per column
  -- (a 1 x cols row); 2 = across the columns, one value per row (a rows x 1 column).
  local A = M{{1, 2, 3}, {4, 5, 9}}

  it("over all elements return numbers", function()
    assert.are.equal(24, A:sum())
    assert.are.equal(4, A:mean())
    assert.is_true(math.abs(A:var() - 8) < 1e-14)
    assert.are.equal(1, A:min())
    assert.are.equal(9, A:max())
  end)

  it("dim 1 gives one value per column, dim 2 one per row", function()
    same(A:sum(1), {{5, 7, 12}})
    same(A:mean(1), {{2.5, 3.5, 6}})
    same(A:var(1), {{4.5, 4.5, 18}}, 1e-14)
    same(A:min(1), {{1, 2, 3}})
    same(A:max(1), {{4, 5, 9}})
    same(A:sum(2), {{6}, {18}})
    same(A:mean(2), {{2}, {6}})
    same(A:var(2), {{1}, {7}}, 1e-14)
    same(A:min(2), {{1}, {4}})
    same(A:max(2), {{3}, {9}})
  end)

  it("work on non-contiguous views", function()
    local B = M.fromfunction(4, 5, function(i, j) return 10 * i + j end)
    B:set(1, 1, 1000)
    B:set(4, 5, -1000)
    local v = B:block(2, 2, 2, 3) -- {{22, 23, 24}, {32, 33, 34}}
    assert.are.equal(168, v:sum())
    assert.are.equal(28, v:mean())
    assert.is_true(math.abs(v:var() - 154 / 5) < 1e-12)
    assert.are.equal(22, v:min())
    assert.are.equal(34, v:max())
    same(v:sum(1), {{54, 56, 58}})
    same(v:max(2), {{24}, {34}})
    same(v:mean(2), {{23}, {33}})
    local r = B:row(3)
    assert.are.equal(165, r:sum())
    assert.are.equal(31, r:min())
    same(r:sum(2), {{165}})
  end)

  it("NaN: sum, mean, var propagate it; min and max return NaN if any value is NaN", function()
    local N = M{{1, nan}, {3, 4}}
    for _, f in ipairs{"sum", "mean", "var", "min", "max"} do
      local v = N[f](N)
      assert(v ~= v, f .. " should be NaN")
    end
    local cmin = N:min(1)
    assert.are.equal(1, cmin:get(1))
    assert(cmin:get(2) ~= cmin:get(2))
    local rmax = N:max(2)
    assert(rmax:get(1) ~= rmax:get(1))
    assert.are.equal(4, rmax:get(2))
    -- Inf is summed as IEEE does
    assert.are.equal(math.huge, M{math.huge, 1, 2}:sum())
  end)

  it("empty and too-small reductions are errors naming the need (sum of nothing is 0)", function()
    local E = M.zeros(0, 3)
    assert.are.equal(0, E:sum())
    same(E:sum(1), {{0, 0, 0}})
    raises("mean: needs at least 1 element per reduction (matrix is 0 x 3)", E.mean, E)
    raises("max: needs at least 1 element", E.max, E, 1)
    raises("var: needs at least 2 elements per reduction (matrix is 1 x 1)", M{{5}}.var, M{{5}})
    raises("var: needs at least 2 elements per reduction (matrix is 1 x 3)", A.var, A:row(1), 1)
    raises("dim must be 1", A.sum, A, 3)
    raises("dim must be 1", A.mean, A, -1)
    raises("number expected, got string", A.sum, A, "rows")
  end)

  it("ata and aat are the symmetric products", function()
    local X = M{{1, 2, 3}, {4, 5, 6}}
    same(X:ata(), {{17, 22, 27}, {22, 29, 36}, {27, 36, 45}})
    same(X:aat(), {{14, 32}, {32, 77}})
    local v = M.fromfunction(6, 7, function(i, j) return (i * 7 + j) % 5 - 2 end):block(2, 3, 4, 3)
    assert.are.equal(0, v:ata():maxabsdiff(v:t() * v))
    assert.are.equal(0, v:aat():maxabsdiff(v * v:t()))
    same(M.zeros(0, 2):ata(), {{0, 0}, {0, 0}})
  end)
end)

describe("Mat concatenation and comparison", function()
  local A, b, c = M{{1, 2}, {3, 4}}, M{5, 6}, M{{7, 8}}

  it("hcat and vcat take matrices or a list of them", function()
    same(M.hcat(A, b), {{1, 2, 5}, {3, 4, 6}})
    same(M.vcat(A, c), {{1, 2}, {3, 4}, {7, 8}})
    same(M.hcat{b, A, M.zeros(2, 0)}, {{5, 1, 2}, {6, 3, 4}})
    same(M.vcat{c}, {{7, 8}})
    same(M.hcat(A:col(2), A:col(1)), {{2, 1}, {4, 3}})
  end)

  it("refuse mismatched or missing parts", function()
    raises("nnft.mat.hcat: every part must have the same number of rows", M.hcat, A, c)
    raises("nnft.mat.vcat: every part must have the same number of columns", M.vcat, A, b)
    raises("nnft.mat.hcat: nothing to concatenate", M.hcat)
    raises("nnft.mat.vcat: nothing to concatenate", M.vcat, {})
    raises("nnft.Mat expected, got number", M.hcat, A, 3)
  end)

  it("maxabsdiff and allclose", function()
    local B = M{{1, 2.5}, {3, 3}}
    assert.are.equal(1, A:maxabsdiff(B))
    assert.are.equal(0, A:maxabsdiff{{1, 2}, {3, 4}})
    assert.is_true(A:allclose(A:copy()))
    assert.is_false(A:allclose(B))
    assert.is_true(A:allclose(B, 0, 1))
    assert.is_true(A:allclose(B, 0.34))
    assert.is_false(A:allclose(B, 0.33))
    assert.is_true(M{{1}}:allclose(1 + 1e-9))
    local N = M{{nan}}
    assert.is_false(N:allclose(N))
    local d = N:maxabsdiff(N)
    assert(d ~= d, "maxabsdiff with NaN is NaN")
    raises("maxabsdiff: shapes do not conform (2 x 2 vs 2 x 1)", A.maxabsdiff, A, b)
    raises("allclose: shapes do not conform (2 x 2 vs 1 x 2)", A.allclose, A, c)
    raises("allclose: rtol and atol must be >= 0", A.allclose, A, B, -1)
    raises("allclose: rtol and atol must be >= 0", A.allclose, A, B, 0, nan)
  end)

  it("isfinite", function()
    assert.is_true(A:isfinite())
    assert.is_false(M{1, nan}:isfinite())
    assert.is_false(M{1, -math.huge}:isfinite())
  end)
end)

describe("Mat printing and lifetime", function()
  it("__tostring is numpy-like with one common column width", function()
    assert.are.equal("Mat 2x3\n[[      1    2.5 -3e-05]\n [    100      0      1]]",
      tostring(M{{1, 2.5, -3e-5}, {100, 0, 1}}))
    assert.are.equal("Mat 1x1\n[[ 7]]", tostring(M{{7}}))
    assert.are.equal("Mat 0x3 []", tostring(M.zeros(0, 3)))
    local big = tostring(M.fromfunction(12, 12, function(i, j) return i * 100 + j end))
    local lines = {}
    for l in big:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("Mat 12x12", lines[1])
    assert.are.equal(10, #lines) -- header, 4 rows, "...", 4 rows
    assert.are.equal("[[  101  102  103  ...  110  111  112]", lines[2])
    assert.are.equal("  ...", lines[6])
    assert.are.equal(" [ 1201 1202 1203  ... 1210 1211 1212]]", lines[10])
    assert.truthy(tostring(M{{nan, math.huge}}):find("nan"))
  end)

  it("a release inside a __gc finalizer is deferred (it may run inside a binding's allocation)",
    function()
      -- In generational mode a minor collection runs pending finalizers at the end of the
      -- allocation that triggered it: here the only allocation in the loop is the result of
      -- A + 1, so the finalizer runs inside the binding, after A was checked.
      local add = getmetatable(M.ones(1, 1)).__add
      for _, as_view in ipairs{false, true} do
        local P = M.ones(50, 50)
        local A = as_view and P:block(2, 2, 40, 40) or P
        local ran = false
        setmetatable({}, {__gc = function() ran = true; P:release() end})
        local old = collectgarbage("generational")
        local k, bad = 0, nil
        while not ran and k < 1000000 do
          k = k + 1
          local B = add(A, 1)
          if B:get(1, 1) ~= 2 then bad = B:get(1, 1) break end
        end
        collectgarbage(old)
        assert.is_true(ran, "the finalizer never ran")
        assert.is_nil(bad, "A + 1 read a released matrix")
        assert.are.equal(2, (A + 1):get(1, 1)) -- deferred: still valid until collected
        P:release() -- outside a finalizer: immediate
        raises("released", A.get, A, 1, 1)
      end
    end)

  it("release and <close> are idempotent; a released matrix raises a clear error", function()
    local A = M.ones(2, 2)
    A:release()
    A:release()
    assert.are.equal("Mat (released)", tostring(A))
    raises("matrix has been released (closed)", A.sum, A)
    raises("matrix has been released (closed)", A.get, A, 1, 1)
    raises("matrix has been released (closed)", function() return A + 1 end)
    raises("matrix has been released (closed)", function() return 2 * A end)
    raises("matrix has been released (closed)", function() return A * A end)
    raises("matrix has been released (closed)", function() return -A end)
    raises("matrix has been released (closed)", M.hcat, A, A)
    raises("matrix has been released (closed)", M.ones(2, 2).assign, M.ones(2, 2), A)
    local B
    do
      local C <close> = M.ones(3, 3)
      B = C
    end
    raises("matrix has been released (closed)", B.rows, B)
    B = nil
    collectgarbage()
    collectgarbage() -- __gc after __close: nothing freed twice
  end)
end)
