-- nnft.args: key=value parsing against typed defaults.
local nnft = require "nnft"

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

describe("nnft.args", function()
  local defaults
  before_each(function()
    defaults = { width = 50, lr = 0.1, act = "relu", verbose = false, widths = { 2, 3, 5 },
                 sigmas = { 0.5, 1.0 }, names = { "a", "b" }, tags = {}, out = "results/" }
  end)

  it("returns the defaults when no argument is given, as a new table", function()
    local a = nnft.args(defaults, {})
    assert.are.equal(50, a.width)
    assert.are.same({ 2, 3, 5 }, a.widths)
    assert.are_not.equal(defaults, a)
    assert.are_not.equal(defaults.widths, a.widths)
  end)

  it("parses each value by the type of its default", function()
    local a = nnft.args(defaults, { "width=64", "lr=1", "act=tanh", "verbose=yes", "out=/tmp/x/" })
    assert.are.equal(64, a.width)
    assert.are.equal("integer", math.type(a.width))
    assert.are.equal(1.0, a.lr)
    assert.are.equal("float", math.type(a.lr))
    assert.are.equal("tanh", a.act)
    assert.is_true(a.verbose)
    assert.are.equal("/tmp/x/", a.out)
    assert.are.equal(1000000, nnft.args(defaults, { "width=1e6" }).width)
    assert.are.equal("integer", math.type(nnft.args(defaults, { "width=1e6" }).width))
    assert.are.equal(-3, nnft.args(defaults, { "width=-3" }).width)
  end)

  it("accepts the boolean spellings true/false/1/0/yes/no", function()
    for text, want in pairs({ ["true"] = true, ["false"] = false, ["1"] = true, ["0"] = false,
                              yes = true, no = false, YES = true, False = false }) do
      assert.are.equal(want, nnft.args(defaults, { "verbose=" .. text }).verbose)
    end
    assert.has_error(function() nnft.args(defaults, { "verbose=maybe" }) end,
      nil)
    local ok, err = pcall(nnft.args, defaults, { "verbose=maybe" })
    assert.is_false(ok)
    assert.matches("verbose=maybe", err, 1, true)
    assert.matches("boolean", err)
  end)

  it("parses comma-separated lists of numbers and strings", function()
    local a = nnft.args(defaults, { "widths=8,16,32", "sigmas=0.5,2", "names=x,y,z", "tags=1,2" })
    assert.are.same({ 8, 16, 32 }, a.widths)
    assert.are.equal("integer", math.type(a.widths[1]))
    assert.are.same({ 0.5, 2.0 }, a.sigmas)
    assert.are.equal("float", math.type(a.sigmas[2]))
    assert.are.same({ "x", "y", "z" }, a.names)
    assert.are.same({ 1, 2 }, a.tags) -- empty default: numbers when every item is one
    assert.are.same({ "p", "2" }, nnft.args(defaults, { "tags=p,2" }).tags)
    assert.are.same({}, nnft.args(defaults, { "widths=" }).widths)
    assert.are.same({ 7 }, nnft.args(defaults, { "widths=7" }).widths)
  end)

  it("rejects a non-integer for an integer default, naming key and value", function()
    local ok, err = pcall(nnft.args, defaults, { "width=2.5" })
    assert.is_false(ok)
    assert.matches("width=2.5", err, 1, true)
    assert.matches("integer", err)
    ok, err = pcall(nnft.args, defaults, { "widths=2,x,5" })
    assert.is_false(ok)
    assert.matches("widths=2,x,5", err, 1, true)
    assert.matches("item 2", err)
    ok, err = pcall(nnft.args, defaults, { "lr=fast" })
    assert.is_false(ok)
    assert.matches("lr=fast", err, 1, true)
    assert.has_error(function() nnft.args(defaults, { "lr=inf" }) end)
    assert.has_error(function() nnft.args(defaults, { "lr=nan" }) end)
    assert.has_error(function() nnft.args(defaults, { "lr=" }) end)
  end)

  it("rejects unknown keys, listing the allowed ones", function()
    local ok, err = pcall(nnft.args, defaults, { "widht=3" })
    assert.is_false(ok)
    assert.matches("unknown argument 'widht'", err, 1, true)
    assert.matches("act, lr, names, out, sigmas, tags, verbose, width, widths", err, 1, true)
  end)

  it("rejects arguments that are not key=value, and repeated keys", function()
    local ok, err = pcall(nnft.args, defaults, { "width" })
    assert.is_false(ok)
    assert.matches("not of the form key=value", err)
    ok, err = pcall(nnft.args, defaults, { "width=1", "width=2" })
    assert.is_false(ok)
    assert.matches("given twice", err)
    assert.has_error(function() nnft.args(defaults, { 3 }) end)
  end)

  it("rejects bad defaults", function()
    assert.has_error(function() nnft.args("width=3") end)
    assert.has_error(function() nnft.args({ f = print }, {}) end)
    assert.has_error(function() nnft.args({ l = { 1, "a" } }, {}) end)
    assert.has_error(function() nnft.args({ l = { x = 1 } }, {}) end)
  end)

  it("leaves the defaults untouched", function()
    local before = { width = 50, widths = { 2, 3, 5 } }
    local a = nnft.args(before, { "width=7", "widths=1" })
    a.widths[1] = 99
    assert.are.same({ width = 50, widths = { 2, 3, 5 } }, before)
  end)

  it("remembers the last parse for manifests", function()
    nnft.args(defaults, { "width=12", "act=erf" })
    local a, argv = nnft.args.last()
    assert.are.equal(12, a.width)
    assert.are.equal("erf", a.act)
    assert.are.same({ "width=12", "act=erf" }, argv)
    a.width = 0 -- a copy
    assert.are.equal(12, (nnft.args.last()).width)
  end)

  it("reads the global arg when argv is omitted", function()
    local saved = rawget(_G, "arg")
    rawset(_G, "arg", { [0] = "recipe.lua", "width=9" })
    local ok, a = pcall(nnft.args, defaults)
    rawset(_G, "arg", saved)
    assert.is_true(ok, a)
    assert.are.equal(9, a.width)
  end)

  it("has a parse function and a usage text", function()
    assert.are.equal(3, nnft.args.parse({ n = 1 }, { "n=3" }).n)
    local u = nnft.args.usage(defaults)
    assert.matches("width=50", u, 1, true)
    assert.matches("widths=2,3,5", u, 1, true)
    assert.matches("comma%-separated list of integers", u)
  end)

  it("prints the defaults and exits 0 on help", function()
    local bin = os.getenv("NNFT_BIN")
    if not bin then
      pending("NNFT_BIN is not set")
      return
    end
    local dir = nnft._io.mkdtemp("nnft-args-spec-")
    local recipe = dir .. "/r.lua"
    local f = assert(io.open(recipe, "w"))
    f:write('local a = require("nnft").args{ width = 50, act = "relu" }\nprint("RAN")\n')
    f:close()
    for _, h in ipairs({ "help", "--help" }) do
      local p = io.popen(shq(bin) .. " " .. shq(recipe) .. " width=3 " .. h .. " 2>&1")
      local out = p:read("a")
      local ok, how, code = p:close()
      assert.is_true(ok, out)
      assert.are.equal(0, code)
      assert.matches("width=50", out, 1, true)
      assert.matches("act=relu", out, 1, true)
      assert.is_nil(out:find("RAN", 1, true))
    end
    os.remove(recipe)
    os.remove(dir)
  end)
end)
