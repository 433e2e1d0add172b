-- The nnft interpreter (src/main.c) and nnft.help: command line, REPL through a pipe (and,
-- when tmux is installed, through a terminal), help(), completion candidates, Ctrl-C.
-- Runs the interpreter named by NNFT_BIN (pending when unset); nnft.help.complete is also
-- tested in-process.
local BIN = os.getenv("NNFT_BIN")

local U = require "spec_util"
local q, slurp, spit, tmpdir, rmdir = U.q, U.slurp, U.spit, U.tmpdir, U.rmdir
local DATA = U.data_dir()

-- Run nnft with the shell words `args` (see spec_util.run): {code, out, err}.
local function run(args, opts) return U.run(BIN, args, opts) end

-- Run a shell script (sh -c); returns its stdout.
local function sh(script)
  local p = assert(io.popen(script))
  local s = p:read("a")
  p:close()
  return s
end

local function has(s, plain) return s:find(plain, 1, true) ~= nil end

describe("nnft.help.complete", function()
  local help = require "nnft.help"
  local nnft = require "nnft"

  it("completes globals and keywords", function()
    local c = help.complete("pri")
    assert.are.same({ "print" }, c)
    assert.truthy(#help.complete("fun") >= 1)
    assert.are.equal("function", help.complete("functio")[1])
    assert.are.same({}, help.complete("no_such_global_xyz"))
  end)

  it("completes module names under nnft", function()
    local env = { nnft = nnft }
    assert.are.same({ "nnft.mat" }, help.complete("nnft.ma", env))
    assert.are.same({ "nnft.mat.zeros" }, help.complete("nnft.mat.zer", env))
    local all = help.complete("nnft.", env)
    assert.truthy(#all > 3)
    for _, c in ipairs(all) do assert.truthy(c:match("^nnft%.[%a][%w_]*$"), c) end
  end)

  it("offers nnft's lazily loaded modules (found through package.searchpath)", function()
    if package.searchpath("nnft.args", package.path) then
      assert.are.same({ "nnft.args" }, help.complete("nnft.arg", { nnft = nnft }))
    end
  end)

  it("walks field paths in a given environment and hides _private names until asked", function()
    local env = { foo = { bar = 1, baz = { deep = true }, _p = 3 } }
    assert.are.same({ "foo.bar", "foo.baz" }, help.complete("foo.b", env))
    assert.are.same({ "foo.baz.deep" }, help.complete("foo.baz.", env))
    assert.are.same({ "foo._p" }, help.complete("foo._", env))
    assert.are.same({}, help.complete("foo.nothing.x", env))
    assert.are.same({}, help.complete("foo[1].", env))
  end)

  it("completes methods through the metatable's __index table", function()
    local m = nnft.mat.zeros(2, 3)
    local c = help.complete("m:ro", { m = m })
    assert.truthy(#c >= 1)
    for _, s in ipairs(c) do assert.truthy(s:match("^m:ro"), s) end
    assert.truthy(has(table.concat(c, " "), "m:row"))
    local obj = setmetatable({ field = 1 }, { __index = { meth = function() end } })
    assert.are.same({ "t:meth" }, help.complete("t:", { t = obj }))
    assert.are.same({ "t.field", "t.meth" }, help.complete("t.", { t = obj }))
  end)

  it("survives an __index that raises", function()
    local bad = setmetatable({}, { __index = function() error("nope") end })
    assert.are.same({}, help.complete("bad.x.y", { bad = bad }))
  end)

  it("rejects a non-string", function()
    assert.has_error(function() help.complete(nil) end, "nnft.help.complete: text must be a string")
  end)
end)

if not BIN then
  describe("nnft interpreter", function()
    pending("NNFT_BIN is not set: run through ctest or set it to the nnft binary")
  end)
  return
end

describe("nnft interpreter", function()
  describe("command line", function()
    it("runs -e code with nnft preloaded", function()
      local r = run("-e " .. q("print(1 + 2, type(nnft), type(nnft.mat.zeros))"))
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("3\ttable\tfunction\n", r.out)
    end)

    it("passes key=value arguments to a script as arg and as ...", function()
      local script = DATA .. "/interp_args.lua"
      local r = run(q(script) .. " width=50 seed=3")
      assert.are.equal(0, r.code, r.err)
      assert.truthy(has(r.out, "arg0\t" .. script .. "\n"), r.out)
      assert.truthy(has(r.out, "argn\t2\t2\n"), r.out)
      assert.truthy(has(r.out, "arg\t1\twidth=50\twidth=50\n"), r.out)
      assert.truthy(has(r.out, "arg\t2\tseed=3\tseed=3\n"), r.out)
      assert.truthy(has(r.out, "nnft\ttable\ttable\n"), r.out)
    end)

    it("puts the interpreter and options at negative indices of arg", function()
      local r = run("-e " .. q("x = 1") .. " " .. q(DATA .. "/interp_args.lua"))
      assert.are.equal(0, r.code, r.err)
      local r2 = run("-e " .. q("print(arg[-3] == nil, arg[-2], arg[-1], arg[0])") .. " -")
      assert.are.equal(0, r2.code, r2.err)
      assert.are.equal("false\t-e\tprint(arg[-3] == nil, arg[-2], arg[-1], arg[0])\t-\n", r2.out)
    end)

    it("exits non-zero with a traceback on stderr when a script fails", function()
      local r = run(q(DATA .. "/interp_error.lua"))
      assert.are_not.equal(0, r.code)
      assert.truthy(has(r.err, "interp-fixture-boom"), r.err)
      assert.truthy(has(r.err, "stack traceback:"), r.err)
      assert.truthy(has(r.err, "interp_error.lua:2"), r.err)
      assert.truthy(has(r.err, "interp_error.lua:3"), r.err)
      assert.are.equal("", r.out)
    end)

    it("exits non-zero on a syntax error, a missing script and a failing -e", function()
      assert.are_not.equal(0, run("-e " .. q("x = = 1")).code)
      local r = run(q(DATA .. "/no_such_script.lua"))
      assert.are_not.equal(0, r.code)
      assert.truthy(has(r.err, "cannot open"), r.err)
      r = run("-e " .. q("error('from -e')"))
      assert.are_not.equal(0, r.code)
      assert.truthy(has(r.err, "from -e") and has(r.err, "stack traceback"), r.err)
    end)

    it("passes os.exit's status through", function()
      assert.are.equal(3, run("-e " .. q("os.exit(3)")).code)
    end)

    it("runs standard input with - (and its arguments)", function()
      local r = run("- a b", { stdin = 'print("from stdin", ...)\n' })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("from stdin\ta\tb\n", r.out)
    end)

    it("runs standard input when it is not a terminal and there are no arguments", function()
      local r = run("", { stdin = "print(6 * 7)\n" })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("42\n", r.out)
      r = run("", { stdin = "error('piped')\n" })
      assert.are_not.equal(0, r.code)
      assert.truthy(has(r.err, "piped"))
    end)

    it("prints nnft, git, Lua, BLAS and GSL versions with --version", function()
      for _, flag in ipairs({ "--version", "-v" }) do
        local r = run(flag)
        assert.are.equal(0, r.code, r.err)
        local info = require("nnft").sys.info()
        assert.truthy(has(r.out, "nnft " .. info.version .. " (git " .. info.git .. ")"), r.out)
        assert.truthy(has(r.out, info.lua), r.out)
        assert.truthy(has(r.out, "BLAS: " .. info.blas), r.out)
        assert.truthy(has(r.out, "GSL " .. info.gsl), r.out)
      end
    end)

    it("prints usage with --help and refuses unknown options", function()
      local r = run("--help")
      assert.are.equal(0, r.code)
      for _, s in ipairs({ "usage: nnft", "-e code", "-l mod", "-i", "--sandbox", "--reproduce",
        "--version" }) do
        assert.truthy(has(r.out, s), s)
      end
      r = run("--frobnicate")
      assert.are_not.equal(0, r.code)
      assert.truthy(has(r.err, "unrecognized option '--frobnicate'"), r.err)
      r = run("-e")
      assert.are_not.equal(0, r.code)
      assert.truthy(has(r.err, "needs an argument"), r.err)
    end)

    it("requires a module into a global with -l (and -l g=mod)", function()
      local env = "LUA_PATH=" .. q(DATA .. "/?.lua;;")
      local r = run("-l interp_mod -e " .. q("print(interp_mod.answer)"), { env = env })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("42\n", r.out)
      r = run("-l m=interp_mod -e " .. q("print(m.answer, interp_mod)"), { env = env })
      assert.are.equal("42\tnil\n", r.out)
      r = run("-l no_such_module_xyz")
      assert.are_not.equal(0, r.code)
      assert.truthy(has(r.err, "module 'no_such_module_xyz' not found"), r.err)
    end)

    it("reports --reproduce failures with a non-zero status", function()
      local r = run("--reproduce /nonexistent/manifest.json")
      assert.are_not.equal(0, r.code)
      assert.truthy(#r.err > 0)
    end)
  end)

  describe("REPL through a pipe (-i)", function()
    local function repl(input, env)
      return run("-i", { stdin = input, env = env })
    end

    it("prints the values of expressions, several results, and nothing for statements", function()
      local r = repl("1 + 1\nlocal x = 5\ny = 7\ny\nreturn 1, 'two', nil\nprint('p')\n")
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("2\n7\n1\ttwo\tnil\np\n", r.out)
    end)

    it("prints matrices through their __tostring", function()
      local expected = run("-e " .. q("print(nnft.mat.zeros(2, 2))")).out
      local r = repl("nnft.mat.zeros(2, 2)\n")
      assert.are.equal(0, r.code, r.err)
      assert.are.equal(expected, r.out)
    end)

    it("reads multi-line chunks until they are complete", function()
      local r = repl("function f(a)\n  return a * 2\nend\nf(21)\nt = {\n1,\n2 }\n#t\n")
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("42\n2\n", r.out)
    end)

    it("reports errors on stderr and carries on", function()
      local r = repl("error('oops')\nx = = 1\nprint('still here')\n")
      assert.are.equal(0, r.code)
      assert.truthy(has(r.err, "oops"), r.err)
      assert.truthy(has(r.err, "unexpected symbol"), r.err)
      assert.are.equal("still here\n", r.out)
    end)

    it("clears a pending interrupt before each line", function()
      local r = repl("nnft.sys.interrupt()\nnnft.sys.check_interrupt(); print('clean')\n")
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("clean\n", r.out)
      r = repl("nnft.sys.interrupt(); nnft.sys.check_interrupt()\nprint('next')\n")
      assert.truthy(has(r.err, "interrupted"), r.err)
      assert.are.equal("next\n", r.out)
    end)

    it("reports an unfinished chunk at end of input", function()
      local r = repl("function g()\n")
      assert.truthy(has(r.err, "<eof>"), r.err)
    end)

    describe("help()", function()
      local env = "NNFT_DOC_DIR=" .. q(DATA .. "/interp_docs")

      it("prints the section of a function", function()
        local r = repl("help(nnft.mat.zeros)\n", env)
        assert.are.equal(0, r.code, r.err)
        assert.truthy(has(r.out, "### nnft.mat.zeros(rows, cols)"), r.out)
        assert.truthy(has(r.out, "FIXTURE-ZEROS"), r.out)
        assert.truthy(has(r.out, "### not a heading: inside a code fence"), r.out)
        assert.falsy(has(r.out, "FIXTURE-ONES"), r.out)
      end)

      it("prints the section of a method, found through the metatable", function()
        local r = repl("m = nnft.mat.zeros(2, 2)\nhelp(m.row)\n", env)
        assert.truthy(has(r.out, "### Mat:row(i)"), r.out)
        assert.truthy(has(r.out, "FIXTURE-ROW-EXAMPLE"), r.out) -- a level-4 heading stays inside
        assert.falsy(has(r.out, "FIXTURE-SHAPE"), r.out)
      end)

      it("takes names as strings", function()
        local r = repl('help("nnft.mat.zeros")\nhelp("Mat:shape")\nhelp("mat.ones")\n', env)
        assert.truthy(has(r.out, "FIXTURE-ZEROS"), r.out)
        assert.truthy(has(r.out, "FIXTURE-SHAPE"), r.out)
        assert.truthy(has(r.out, "FIXTURE-ONES"), r.out)
      end)

      it("describes a module, an object and itself without arguments", function()
        local r = repl("help(nnft.mat)\n", env)
        assert.truthy(has(r.out, "fixture introduction line"), r.out)
        assert.truthy(has(r.out, "nnft.mat.ones(rows, cols)"), r.out)
        r = repl("help(nnft.mat.zeros(1, 1))\n", env)
        assert.truthy(has(r.out, "Mat:row(i)"), r.out)
        r = repl("help()\n", env)
        assert.truthy(has(r.out, "help(nnft.mat.zeros)"), r.out)
        assert.truthy(has(r.out, "Modules: "), r.out)
        assert.truthy(has(r.out, "nnft.mat"), r.out)
      end)

      it("says clearly when there is nothing", function()
        local r = repl('help("nnft.nope")\nhelp(print)\nhelp(42)\nhelp(function() end)\n', env)
        assert.are.equal(0, r.code, r.err)
        assert.truthy(has(r.out, "help: no documentation for 'nnft.nope'"), r.out)
        assert.truthy(has(r.out, "print is part of Lua's standard library"), r.out)
        assert.truthy(has(r.out, "got a number value"), r.out)
        assert.truthy(has(r.out, "not part of nnft"), r.out)
      end)

      it("returns the text from nnft.help.doc", function()
        local r = run("-e " .. q("local t = nnft.help.doc(nnft.mat.ones); io.write(#t > 0 and "
          .. "t:match('FIXTURE%-ONES') or 'missing')"), { env = env })
        assert.are.equal("FIXTURE-ONES", r.out, r.err)
      end)
    end)
  end)

  describe("Ctrl-C", function()
    it("stops a computation that polls the flag with 'interrupted'", function()
      local r = run("-e " .. q("nnft.sys.interrupt(); nnft.sys.check_interrupt(); print('not reached')"))
      assert.are_not.equal(0, r.code)
      assert.truthy(has(r.err, "interrupted"), r.err)
      assert.falsy(has(r.out, "not reached"))
    end)

    -- Start nnft in the background, wait until it has written `ready`, send SIGINT, wait for it
    -- (a watchdog kills it after 20 s so a broken handler fails the test instead of hanging).
    local function interrupt_script(cmd, dir)
      return sh(([[
cd %s
%s & pid=$!
i=0; while [ ! -e ready ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
sleep 0.1
kill -INT $pid
( sleep 20; kill -9 $pid ) >/dev/null 2>&1 & dog=$!
wait $pid; echo "status=$?"
kill $dog 2>/dev/null
]]):format(q(dir), cmd))
    end

    it("stops a script in an endless Lua loop with a non-zero status", function()
      local dir = tmpdir()
      spit(dir .. "/loop.lua", 'io.open("ready", "w"):close()\nlocal n = 0\nwhile true do n = n + 1 end\n')
      local res = interrupt_script(q(BIN) .. " loop.lua >out 2>err", dir)
      local err = slurp(dir .. "/err") or ""
      rmdir(dir)
      local status = tonumber(res:match("status=(%d+)"))
      assert.is_number(status, res)
      assert.are_not.equal(0, status)
      assert.are_not.equal(137, status) -- not the watchdog
      assert.truthy(has(err, "interrupted"), err)
      assert.truthy(has(err, "loop.lua:3"), err)
    end)

    it("cancels the REPL line only: the session continues", function()
      local dir = tmpdir()
      spit(dir .. "/input", 'io.open("ready", "w"):close() while true do end\nprint("after" .. "wards")\n')
      local res = interrupt_script(q(BIN) .. " -i <input >out 2>err", dir)
      local out, err = slurp(dir .. "/out") or "", slurp(dir .. "/err") or ""
      rmdir(dir)
      assert.are.equal("status=0", res:match("status=%d+"), res .. err)
      assert.truthy(has(err, "interrupted"), err)
      assert.are.equal("afterwards\n", out)
    end)
  end)

  local have_tmux = os.execute("command -v tmux >/dev/null 2>&1") == true
  local tmux_test = have_tmux and it or pending
  tmux_test("REPL in a terminal (tmux): readline, completion, Ctrl-C, history", function()
    local dir = tmpdir()
    local sock = dir .. "/tmux.sock"
    local function tmux(args) return os.execute("tmux -S " .. q(sock) .. " " .. args .. " >/dev/null 2>&1") end
    local function screen()
      return sh("tmux -S " .. q(sock) .. " capture-pane -p -t nnfttest -S -100 2>/dev/null")
    end
    local function wait_for(pattern)
      for _ = 1, 200 do
        local s = screen()
        if s:find(pattern) then return s end
        os.execute("sleep 0.05")
      end
      return nil
    end
    -- keys("text", "Enter", ...): strings in single quotes (q) are typed literally, others are
    -- tmux key names.
    local function keys(...)
      for _, k in ipairs({ ... }) do
        if k:sub(1, 1) == "'" then tmux("send-keys -t nnfttest -l " .. k)
        else tmux("send-keys -t nnfttest " .. k) end
      end
    end
    local cmd = ("env HOME=%s NNFT_DOC_DIR=%s %s; echo nnft-exited-$?; sleep 30")
      :format(q(dir), q(DATA .. "/interp_docs"), q(BIN))
    local ok, err = pcall(function()
      assert.truthy(tmux("new-session -d -s nnfttest -x 120 -y 40 " .. q(cmd)))
      assert.truthy(wait_for("nnft>"), screen())
      keys(q("40 + 2"), "Enter")
      assert.truthy(wait_for("\n42\n"), screen())
      -- completion of a module path and of a method
      keys(q("nnft.ma"), "Tab", q(".zer"), "Tab", q(" == nnft.mat.zeros"), "Enter")
      assert.truthy(wait_for("nnft%.mat%.zeros == nnft%.mat%.zeros\ntrue\n"), screen())
      keys(q("m = nnft.mat.zeros(2, 3)"), "Enter", q("m:shap"), "Tab", q("()"), "Enter")
      assert.truthy(wait_for("m:shape%(%)\n2%s+3\n"), screen())
      -- multi-line input
      keys(q("function g(x)"), "Enter", q("return x + 1"), "Enter", q("end"), "Enter", q("g(100)"), "Enter")
      assert.truthy(wait_for("\n101\n"), screen())
      -- Ctrl-C cancels a running loop; the session goes on
      keys(q("io.write('loop', 'ing\\n') io.stdout:flush() while true do end"), "Enter")
      assert.truthy(wait_for("\nlooping\n"), screen())
      keys("C-c")
      assert.truthy(wait_for("interrupted"), screen())
      keys(q("print('alive' .. 1)"), "Enter")
      assert.truthy(wait_for("\nalive1\n"), screen())
      -- Ctrl-C at the prompt abandons the line being typed
      keys(q("print('nev' .. 'er')"))
      keys("C-c")
      keys(q("print('fre' .. 'sh')"), "Enter")
      local s = wait_for("\nfresh\n")
      assert.truthy(s, screen())
      assert.falsy(s:find("\never\n"), s)
      -- help works in the terminal too
      keys(q("help(nnft.mat.zeros)"), "Enter")
      assert.truthy(wait_for("FIXTURE%-ZEROS"), screen())
      -- Ctrl-D leaves; history was written
      keys("C-d")
      assert.truthy(wait_for("nnft%-exited%-0"), screen())
      local hist = slurp(dir .. "/.nnft_history") or ""
      assert.truthy(has(hist, "40 + 2\n"), hist)
      assert.truthy(has(hist, "print('alive' .. 1)\n"), hist)
    end)
    tmux("kill-server")
    rmdir(dir)
    if not ok then error(err, 0) end
  end)
end)
