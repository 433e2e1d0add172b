-- nnft --sandbox: a hostile recipe (tests/data/interp_hostile_recipe.lua) tries every escape it
-- knows; each must be refused with a clear error while legitimate writes into out= work.
-- Runs the interpreter named by NNFT_BIN (pending when unset).
local BIN = os.getenv("NNFT_BIN")
local nnft = require "nnft"

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

  describe("a recipe that plots (tests/data/interp_plot_recipe.lua)", function()
    local have_gnuplot = os.execute("command -v gnuplot >/dev/null 2>&1") == true
    local r, lines, outdir, tag

    -- Files a command injected anywhere would have created: pwned-<tag>-<n> in /tmp or out=.
    local function pwned()
      local p = io.popen("find /tmp " .. q(dir) .. " -name " .. q("pwned-" .. tag .. "-*")
        .. " 2>/dev/null")
      local found = p:read("a")
      p:close()
      return found
    end

    before_each(function()
      if not have_gnuplot then return end
      outdir = dir .. "/out"
      math.randomseed(os.time() + math.floor(os.clock() * 1e6))
      tag = ("%d%06d"):format(os.time(), math.random(0, 999999))
      r = run(("--sandbox %s out=%s tag=%s"):format(q(data_dir() .. "/interp_plot_recipe.lua"),
        q(outdir), tag))
      lines = {}
      for line in r.out:gmatch("[^\n]+") do
        local kind, name, msg = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
        if kind then lines[name] = { kind = kind, msg = msg } end
      end
    end)

    it("draws its figures inside out=", function()
      if not have_gnuplot then return pending("gnuplot is not installed") end
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:match("\nEND\n$"), r.out)
      for _, name in ipairs({ "lines", "hist", "lines in a run" }) do
        assert.are.equal("OK", lines[name] and lines[name].kind, name .. ": " .. r.out)
      end
      for _, ext in ipairs({ "png", "svg", "csv", "gp" }) do
        assert.truthy(slurp(outdir .. "/fig." .. ext), "fig." .. ext)
        assert.truthy(slurp(outdir .. "/sub/h." .. ext), "sub/h." .. ext)
      end
      assert.are.equal("\137PNG", slurp(outdir .. "/fig.png"):sub(1, 4))
      assert.matches("<svg", slurp(outdir .. "/sub/h.svg"), 1, true)
      local m = slurp(outdir .. "/run/manifest.json")
      for _, f in ipairs({ '"r.png"', '"r.csv"', '"r.gp"' }) do assert.matches(f, m, 1, true) end
      -- no temporary picture or script is left behind
      for _, name in ipairs(U.listdir(outdir)) do assert.is_nil(name:match("%.tmp%-"), name) end
    end)

    it("draws injected text literally and runs none of it", function()
      if not have_gnuplot then return pending("gnuplot is not installed") end
      assert.are.equal(0, r.code, r.err)
      for _, name in ipairs({ "title backquote", "title newline system", "title quote system",
        "label backquote", "file name with quote and backquote", "file name <command",
        "patched string.gsub and nnft._io.fmt", "finalizer rewrites the script" }) do
        assert.are.equal("OK", lines[name] and lines[name].kind,
          name .. ": " .. (lines[name] and lines[name].msg or r.out))
      end
      assert.matches("`touch /tmp/pwned-" .. tag .. "-1`", slurp(outdir .. "/t1.svg"), 1, true)
      assert.matches('system("touch /tmp/pwned-' .. tag .. '-2")', slurp(outdir .. "/t2.svg"), 1, true)
      assert.matches("x'; system('touch /tmp/pwned-" .. tag .. "-3'); '", slurp(outdir .. "/t3.svg"), 1, true)
      assert.matches("$(touch /tmp/pwned-" .. tag .. "-4)", slurp(outdir .. "/t4.svg"), 1, true)
      assert.matches("`touch /tmp/pwned-" .. tag .. "-5`", slurp(outdir .. "/t4.svg"), 1, true)
      assert.truthy(slurp(outdir .. "/<touch pwned-" .. tag .. "-8.svg"))
      assert.are.equal("", pwned())
    end)

    it("refuses what could run a command or write outside out=, saying why", function()
      if not have_gnuplot then return pending("gnuplot is not installed") end
      assert.are.equal(0, r.code, r.err)
      local expect = {
        ["key injection"] = "is not a key position word",
        ["key injection semicolon"] = "is not a key position word",
        ["color injection"] = "color= must be a colour",
        ["control character"] = "contains a control character",
        ["gnuplot= /bin/sh"] = "sandbox: gnuplot= is refused",
        ["gnuplot= relative"] = "sandbox: gnuplot= is refused",
        ["file outside out"] = "outside the out= directory",
        ["file absolute outside"] = "outside the out= directory",
        ["set_runner again"] = "the runner is already set",
        ["fresh nnft.plot"] = "sandbox: os.execute is disabled",
        ["runner in the module tables"] = "no runner in the module tables",
        ["sandbox install again"] = "already installed",
      }
      for name, msg in pairs(expect) do
        assert.are.equal("REFUSED", lines[name] and lines[name].kind, name .. ": " .. r.out)
        assert.matches(msg, lines[name].msg, 1, true)
      end
      assert.is_nil(slurp(dir .. "/pwned-" .. tag .. "-12.png"))
      assert.are.equal("", pwned())
    end)

    it("refuses to plot when the recipe has no out=", function()
      if not have_gnuplot then return pending("gnuplot is not installed") end
      local rec = dir .. "/r.lua"
      spit(rec, 'local ok, err = pcall(nnft.plot.lines, { file = "p.png", series = { { y = { 1, 2 } } } })\n'
        .. "print(ok, err)")
      local r2 = run("--sandbox " .. q(rec), { cwd = dir })
      assert.are.equal(0, r2.code, r2.err)
      assert.truthy(r2.out:match("^false\t.*no out= directory"), r2.out)
      assert.is_nil(slurp(dir .. "/p.png"))
    end)
  end)

  describe("the gnuplot script check", function()
    local check = require("nnft.sandbox")._check_script

    it("accepts the scripts nnft.plot writes", function()
      local plot = require "nnft.plot"
      nnft.io.mkdir(dir .. "/s")
      local scripts = {}
      local x = { 1, 2, 3 }
      -- gnuplot = "true": nothing is drawn (the call fails), but the script is written first
      pcall(plot.lines, { file = dir .. "/s/a.png", gnuplot = "true", title = "t'`x`\nl2",
        xlabel = "x", ylabel = "y", logx = true, logy = true, xrange = { 1, 3 }, yrange = { 0.5, 1e3 },
        key = "outside right top", size = { 900, 500 },
        series = { { x = x, y = x, yerr = x, style = "lines", label = "a'b", color = "#1f77b4", width = 0.7 },
                   { x = x, y = x, yerr = x, style = "linespoints" },
                   { x = x, y = x, style = "points", color = "dark-red" },
                   { x = x, y = x, yerr = x, label = "e" } } })
      pcall(plot.hist, { file = dir .. "/s/h.svg", gnuplot = "true", data = x, label = "h",
        color = "gray", key = false, density = true, formats = "svg" })
      pcall(plot.lines, { file = dir .. "/s/q'`x`$(y).png", gnuplot = "true", grid = false,
        series = { { y = x } } })
      for _, name in ipairs(U.listdir(dir .. "/s")) do
        if name:match("%.gp$") then scripts[#scripts + 1] = slurp(dir .. "/s/" .. name) end
      end
      assert.are.equal(3, #scripts)
      for _, text in ipairs(scripts) do
        local ok, why = check(text)
        assert.is_true(ok, (why or "") .. "\n" .. text)
      end
    end)

    it("refuses anything that could run a command or write a file", function()
      local good = "set title 'x'\n"
      assert.is_true(check(good))
      for _, bad in ipairs({
        "system('touch x')\n", "!touch x\n", "set title `touch x`\n", "set title \"`touch x`\"\n",
        "load 'x.gp'\n", "call 'x.gp'\n", "shell\n", "set print '|touch x'\n",
        "set output '|touch x'\n", "set output 'x.png'\n", "set table 'x'\n", "save 'x'\n",
        "plot '<touch x' using 1:2 with lines notitle\n",
        "plot './a.csv' skip 1 using 2:3 with lines notitle, '<touch x' skip 1 using 2:3 with lines notitle\n",
        "plot './a.csv' skip 1 using 2:3 with lines title system('x')\n",
        "plot './a.csv' skip 1 using 2:3 with lines linecolor rgb 'red' title 'a'.system('x')\n",
        "set title 'x'; system('touch x')\n", "set title 'x' \\\n; system('x')\n",
        "set title 'x\\\n'; system('x')\n", "set key top; system('x')\n", "set key at 1,2\n",
        "set title 'a\rb'\n", "# comment `touch x`\n", "set title @x\n",
        "if (!exists('png_out')) png_out = '|touch x'\n", "set xrange [system('x'):1]\n",
        "set title 'unterminated\n", "eval 'x'\n", "fit f(x) './a.csv' via a\n",
      }) do
        assert.is_nil((check(bad)), bad)
      end
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
