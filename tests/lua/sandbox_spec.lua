-- nnft --sandbox: a hostile recipe (tests/data/interp_hostile_recipe.lua) tries every escape it
-- knows; each must be refused with a clear error while legitimate writes into out= work.
-- Runs the interpreter named by NNFT_BIN (pending when unset).
local BIN = os.getenv("NNFT_BIN")

local U = require "spec_util"
local q, slurp, spit, tmpdir, rmdir, data_dir = U.q, U.slurp, U.spit, U.tmpdir, U.rmdir, U.data_dir

-- Run nnft with the shell words `args` (see spec_util.run): {code, out, err}.
local function run(args, opts) return U.run(BIN, args, opts) end

if not BIN then
  describe("nnft --sandbox", function()
    pending("NNFT_BIN is not set: run through ctest or set it to the nnft binary")
  end)
  return
end

describe("nnft --sandbox", function()
  local dir

  before_each(function() dir = tmpdir() end)
  after_each(function() rmdir(dir) end)

  describe("the hostile recipe", function()
    local r, lines, outdir, victim

    before_each(function()
      outdir, victim = dir .. "/out", dir .. "/victim.txt"
      spit(victim, "the victim\n")
      os.execute("mkdir -p " .. q(outdir) .. " && ln -s " .. q(victim) .. " " .. q(outdir .. "/link"))
      r = run(("--sandbox %s out=%s victim=%s"):format(q(data_dir() .. "/interp_hostile_recipe.lua"),
        q(outdir), q(victim)))
      lines = {}
      for line in r.out:gmatch("[^\n]+") do
        local kind, name, msg = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
        if kind then lines[name] = { kind = kind, msg = msg } end
      end
    end)

    it("runs to the end", function()
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:match("\nEND\n$"), r.out)
    end)

    it("refuses every escape it tries", function()
      assert.falsy(r.out:match("ESCAPED"), r.out)
      local expected = {
        "os.execute", "io.popen", "io.open ../", "io.open absolute", "io.open r+",
        "io.open new dirs ..", "io.open symlink", "io.output", "os.remove",
        "os.rename from outside", "os.rename to outside", "os.tmpname", "io.tmpfile",
        "nnft._io.write_file", "nnft._io.mkdir_p", "nnft._io.mkdtemp", "reopen nnft.core",
        "package.loadlib",
        "require lfs", "require cjson.safe", "require lpeg via cpath", "string.dump",
        "string metatable dump", "load binary", "load binary mode b", "load binary reader",
        "loadfile binary", "dofile binary", "require binary", "debug.getinfo", "debug.sethook",
        "debug.getupvalue", "debug.getregistry", "require debug",
      }
      for _, name in ipairs(expected) do
        assert.is_table(lines[name], "no line for " .. name .. " in:\n" .. r.out)
        assert.are.equal("REFUSED", lines[name].kind, name)
      end
    end)

    it("says why, with errors that start with sandbox: or name the missing module", function()
      for name, l in pairs(lines) do
        if l.kind == "REFUSED" then
          if (name:match("^require") and name ~= "require debug") or name == "reopen nnft.core" then
            assert.truthy(l.msg:match("module '[%w.]+' not found"), name .. ": " .. l.msg)
          else
            assert.truthy(l.msg:match("sandbox: "), name .. ": " .. l.msg)
          end
        end
      end
      assert.truthy(lines["io.open ../"].msg:match("outside the out= directory"))
      assert.truthy(lines["os.execute"].msg:match("runs no processes"))
      assert.truthy(lines["load binary"].msg:match("binary chunk"))
    end)

    it("leaves everything outside out= untouched", function()
      assert.are.equal("the victim\n", slurp(victim))
      assert.is_nil(slurp(dir .. "/escaped.txt"))
      assert.is_nil(slurp(dir .. "/escaped-exec"))
      assert.are.equal(0, select(3, os.execute("test ! -e " .. q(dir .. "/escaped-dir"))))
    end)

    it("lets a recipe write, rename and remove inside out=, read and require Lua", function()
      for _, name in ipairs({ "write into out", "atomic write (temp + rename)", "nnft.io.write_text",
        "remove inside out", "read outside out", "require a Lua module beside the recipe",
        "require cjson (preloaded for nnft.io)", "load text", "debug.traceback", "nnft works" }) do
        assert.is_table(lines[name], "no line for " .. name)
        assert.are.equal("OK", lines[name].kind, name .. ": " .. (lines[name].msg or ""))
      end
      assert.are.equal("written by the recipe\n", slurp(outdir .. "/ok.txt"))
      assert.are.equal('{"x": 1}\n', slurp(outdir .. "/data.json"))
      assert.is_nil(slurp(outdir .. "/data.json.tmp"))
      assert.is_nil(slurp(outdir .. "/gone.txt"))
    end)
  end)

  it("runs a real nnft.io recipe (a Run with CSV, NPY and a manifest) inside out=", function()
    local recipe = data_dir() .. "/io_tiny_recipe.lua"
    if not slurp(recipe) then return end -- the io fixture is not there: nothing to check
    local r = run(("--sandbox %s out=%s"):format(q(recipe), q(dir .. "/o")))
    assert.are.equal(0, r.code, r.err)
    assert.truthy(slurp(dir .. "/o/manifest.json"), r.out)
  end)

  it("refuses all writes when no out= is given", function()
    local rec = dir .. "/r.lua"
    spit(rec, 'local ok, err = pcall(io.open, "x.txt", "w"); print(ok, err)')
    local r = run("--sandbox " .. q(rec), { cwd = dir })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:match("^false\t.*no out= directory"), r.out)
    assert.is_nil(slurp(dir .. "/x.txt"))
  end)

  it("creates the out= directory", function()
    local rec = dir .. "/r.lua"
    spit(rec, 'local f = assert(io.open(arg[1]:sub(5) .. "/a.txt", "w")); f:write("a"); f:close()')
    local r = run(("--sandbox %s out=%s"):format(q(rec), q(dir .. "/new/out")))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("a", slurp(dir .. "/new/out/a.txt"))
  end)

  it("refuses a precompiled (binary) recipe", function()
    local rec = dir .. "/bin.lua"
    spit(rec, string.dump(load("print('binary ran')")))
    local r = run("--sandbox " .. q(rec))
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:match("binary chunk"), r.err)
    assert.falsy(r.out:match("binary ran"))
  end)

  it("stops a recipe that errors with a non-zero status and a traceback", function()
    local rec = dir .. "/r.lua"
    spit(rec, 'os.execute("true")')
    local r = run("--sandbox " .. q(rec))
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:match("sandbox: os.execute is disabled"), r.err)
    assert.truthy(r.err:match("stack traceback"), r.err)
  end)

  it("refuses --reproduce, which would run a recipe unsandboxed", function()
    local r = run("--sandbox --reproduce " .. q(dir .. "/manifest.json"))
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:match("cannot be combined with %-%-sandbox"), r.err)
  end)

  it("marks the state as sandboxed for the Lua side", function()
    local r = run("--sandbox -e " .. q('print(package.loaded["nnft.interp"].sandbox)'))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("true\n", r.out)
  end)
end)
